"""Filter `mcp_infra_target_paths`: the one list of target paths, read from the literal
`TARGET_PATHS = {...}` in the target's bootstrap (system/lib/mcp_infra_target/core/bootstrap.py)
without running it, so the role, the executables and the library name every path once."""

import ast

from ansible.errors import AnsibleFilterError


def mcp_infra_target_paths(source):
    """The TARGET_PATHS dict of the bootstrap's source text."""
    for node in ast.parse(source).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "TARGET_PATHS"):
            paths = ast.literal_eval(node.value)
            if isinstance(paths, dict) and all(
                    isinstance(k, str) and isinstance(v, str) and v.startswith("/")
                    for k, v in paths.items()):
                return paths
    raise AnsibleFilterError("no TARGET_PATHS literal of absolute paths in the bootstrap")


class FilterModule:
    def filters(self):
        return {"mcp_infra_target_paths": mcp_infra_target_paths}
