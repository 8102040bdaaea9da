"""Human-approved actions: the proposal store, the operator's signature, the execution.

The target decides (system/README.md, "The action protocol"); this package only keeps
track of what was proposed, what a human signed and what the target answered.
"""
