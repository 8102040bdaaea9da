"""The MCP tools, one module per domain. A tool is a function of a module in MODULES made a
tool by `toolcall.tool`; the server lists them in this order, each module's tools in the
order they are written."""

from collections.abc import Callable
from types import ModuleType
from typing import Any

from mcp_linux_infra.server.tools import (
    actions,
    catalog,
    commands,
    containers,
    files,
    health,
    hosts,
    logs,
    network,
    packages,
    processes,
    services,
)

MODULES: tuple[ModuleType, ...] = (hosts, health, services, logs, processes, network,
                                   containers, packages, files, commands, catalog, actions)


def tools_of(module: ModuleType) -> list[Callable[..., Any]]:
    """The tools a module defines, in the order it defines them."""
    return [value for value in vars(module).values()
            if hasattr(value, "tool_annotations") and value.__module__ == module.__name__]
