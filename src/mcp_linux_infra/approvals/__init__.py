"""The client of a host's action tier: the PRA actions (*plan de reprise d'activité*, the
disaster-recovery plan a host's remediation actions belong to), each run only with an
operator's signature. Here: the host's catalog and the action protocol (`action_tier`), the
proposal store, the preview, the operator's signature and decisions, and executing an
approval once (`executor`).

The target decides (system/README.md, "The action protocol"); this package only keeps
track of what was proposed, what a human signed and what the target answered.
"""
