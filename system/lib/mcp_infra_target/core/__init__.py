"""What both tiers share: the bootstrap with the target paths and the trust rule, the layout
of one run, refusals, audit records, strict JSON, stdin with a deadline, trace labels and the
one supervised runner."""
