"""The JSON schemas tools/list carries, kept small: every byte of it is read by the model in
every conversation. Input schemas come from the tools' signatures (args.py) with what the
server checks itself left out; an output schema names the top-level fields a result always
has (their types are the data's own: a field per property would double its size)."""

from typing import Any


def shape(*fields: str) -> dict[str, Any]:
    """An object schema: these fields always present."""
    return {"type": "object", "required": list(fields)}


# What the server checks itself (pydantic, from the same signature) and the model needs not
# read: a value outside the bounds gets the one-line reason back.
_CHECKED = frozenset({"title", "minLength", "maxLength", "pattern", "minimum", "maximum"})
# The one `format` argument every tool takes: what each value sends is said once, in the
# server's instructions (app.INSTRUCTIONS), not in every tool.
_FORMAT = {"default", "enum"}


def compact(schema: Any) -> Any:
    """pydantic's schema without what a client does not need: titles (the property name says
    it), bounds and patterns (the server checks them and says why), and `anyOf [X,
    null]` for an optional argument (its absence is the null)."""
    if isinstance(schema, list):
        return [compact(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in _CHECKED and not isinstance(value, dict):
            continue
        out[key] = value if key in ("default", "enum") else compact(value)
    if "format" in out.get("properties", {}):
        fmt = out["properties"]["format"]
        out["properties"]["format"] = {k: v for k, v in fmt.items() if k in _FORMAT}
    options = out.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options and len(options) == 2:
        (kept,) = [o for o in options if o != {"type": "null"}]
        del out["anyOf"]
        if out.get("default", 0) is None:
            del out["default"]
        out = {**kept, **out}
    return out
