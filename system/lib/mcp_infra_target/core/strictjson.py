"""One strict JSON reader for every document a target trusts: the read-only policy, the
action catalog, approval envelopes and signed documents.

`json.loads` keeps the last of two equal keys and accepts NaN and Infinity; here a
duplicated key (at any depth) and those constants are errors, so a policy cannot say one
thing to a reviewer and another to the loader.
"""

import json


def _pairs(pairs):
    out = dict(pairs)
    if len(out) != len(pairs):  # the loop only when there is a duplicate to name
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return out


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


def loads(text: str) -> object:
    """json.loads without duplicate keys, NaN or Infinity (ValueError names the fault)."""
    return json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constants)
