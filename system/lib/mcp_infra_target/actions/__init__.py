"""The action tier of the PRA (plan de reprise d'activité: the disaster-recovery plan the
actions belong to): pra-runner's forced command `pra-exec` and root's `pra-run`, which runs
a catalog action only with an operator's SSH signature that this host verifies itself."""
