"""diagnose_system in TOON, by check instead of by host.

A report per host nests its findings, problems and results, so TOON can print it only as
an indented block per host (more bytes than the JSON). By check, the same data is a few
tables with a host column: load on 20 hosts is 20 rows, not 20 blocks. `restore` is the
exact inverse, so a TOON reader gets everything the JSON has."""


def _row(value: object) -> bool:
    """A flat result (load, memory) that fits in a table row after its host."""
    return isinstance(value, dict) and bool(value) and "host" not in value and not any(
        isinstance(v, (dict, list)) for v in value.values())


def _without_host(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "host"}


def by_check(result: dict) -> dict:
    """`reports` becomes `hosts` (status, and the error when one is unreachable),
    `findings` and `problems` (tables with a host column) and `results`: per check, a
    table when every host has a flat result with the same fields, else host -> result."""
    reports = result["reports"]
    unreachable = any("error" in r for r in reports)
    results: dict = {}
    for report in reports:
        for name, value in report.get("checks", {}).items():
            results.setdefault(name, {})[report["host"]] = value
    for name, by_host in results.items():
        first = next(iter(by_host.values()))
        if all(_row(v) and v.keys() == first.keys() for v in by_host.values()):
            results[name] = [{"host": h, **v} for h, v in by_host.items()]
    return {**{k: v for k, v in result.items() if k != "reports"},
            "hosts": [{"host": r["host"], "status": r["status"],
                       **({"error": r.get("error")} if unreachable else {})} for r in reports],
            "findings": [{"host": r["host"], **f} for r in reports for f in r.get("findings", [])],
            "problems": [{"host": r["host"], "check": c, "problem": p}
                         for r in reports for c, p in r.get("problems", {}).items()],
            "results": results}


def restore(view: dict) -> dict:
    """The diagnose_system result `by_check` made `view` from. It relies on what
    diagnose_system guarantees: host names are unique, and a report has either an error
    (unreachable) or findings, problems and checks."""
    results = {name: {row["host"]: _without_host(row) for row in v} if isinstance(v, list) else v
               for name, v in view["results"].items()}
    reports = []
    for row in view["hosts"]:
        host = row["host"]
        if row.get("error") is not None:
            reports.append({"host": host, "status": row["status"], "error": row["error"]})
            continue
        reports.append({
            "host": host, "status": row["status"],
            "findings": [_without_host(f) for f in view["findings"] if f["host"] == host],
            "problems": {p["check"]: p["problem"] for p in view["problems"] if p["host"] == host},
            "checks": {name: by_host[host] for name, by_host in results.items()
                       if host in by_host}})
    rest = {k: v for k, v in view.items() if k not in ("hosts", "findings", "problems", "results")}
    return {**rest, "reports": reports}
