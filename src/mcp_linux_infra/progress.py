"""Progress on long work (a lab build, booting targets, a fan-out over hosts): a spinner with
the current step and a bar of items done, on stderr, only for a person at a terminal. Not a
terminal, or output for a script (--json): nothing extra is printed, ever."""

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
)

from mcp_linux_infra import display


class Work:
    """What a long command reports: the step it is at, and items done of a total."""

    def __init__(self, progress: Progress, task: TaskID):
        self._progress, self._task = progress, task

    def step(self, message: str) -> None:
        self._progress.update(self._task, description=display.visible(message))

    def count(self, done: int, total: int, item: str) -> None:
        """`done` items of `total` so far, the last one `item`."""
        self._progress.update(self._task, completed=done, total=total,
                              description=display.visible(item))

    def advance(self, item: str) -> None:
        """One more item done (safe from worker threads: rich updates under its lock)."""
        self._progress.update(self._task, advance=1, description=display.visible(item))


def shown(json: bool = False) -> bool:
    """Whether progress is drawn: stderr is a terminal (a real one, whatever FORCE_COLOR
    says; not a dumb one) and the output is not --json."""
    console = display.console(stderr=True)
    return (not json and sys.stderr.isatty() and console.is_terminal
            and not console.is_dumb_terminal)


@contextmanager
def work(label: str, total: int | None = None, *, enabled: bool = True) -> Iterator[Work]:
    """A transient progress line `label [bar] done/total item` while the block runs; drawn
    only when `enabled` and `shown()` (labels are ours; items pass through `display`)."""
    console = display.console(stderr=True)
    columns = (SpinnerColumn(), TextColumn(label, markup=False), BarColumn(),
               MofNCompleteColumn(), TextColumn("{task.description}", markup=False))
    with Progress(*columns, console=console, transient=True,
                  disable=not (enabled and shown())) as progress:
        yield Work(progress, progress.add_task("", total=total))
