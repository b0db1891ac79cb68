"""Shared pieces of the command line: the console, one-line errors, progress bars."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from npfm.events.errors import NpfmError

console = Console()
F = TypeVar("F", bound=Callable[..., Any])


def clean_errors(func: F) -> F:
    """Turn NpfmError into one line on stderr and exit status 2."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except NpfmError as err:
            print(f"npfm: error: {err}", file=sys.stderr)
            raise typer.Exit(2) from None
    return wrapper  # type: ignore[return-value]


def progress_bar(unit: str = "events", bytes_: bool = False) -> Progress:
    speed = TransferSpeedColumn() if bytes_ else TextColumn("")
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                    MofNCompleteColumn() if not bytes_ else speed, TimeRemainingColumn(),
                    console=console)
