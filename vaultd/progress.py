"""Progress bars for long work, shown only on a terminal (quiet for --json)."""

from __future__ import annotations

import sys
from typing import Any, TextIO


class BytesBar:
    """Bytes, MB/s and ETA on stderr; the ``ingest.Progress`` protocol."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        stream = stream if stream is not None else sys.stderr  # the stderr of now, not of import time
        # rich loads only when a bar is shown (a terminal), not for every command
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._label = label
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[current]}", style="dim"),
            console=Console(file=stream),
            transient=False,
        )
        self._task: Any = None

    def begin(self, total_files: int, total_bytes: int) -> None:
        self._bar.start()
        self._task = self._bar.add_task(f"{self._label} ({total_files})", total=total_bytes, current="")

    def file(self, display_path: str) -> None:
        if self._task is not None:
            self._bar.update(self._task, current=display_path[-40:])

    def advance(self, nbytes: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, nbytes)

    def end(self) -> None:
        if self._task is not None:
            self._bar.update(self._task, current="")
        self._bar.stop()


class CountBar:
    """Items done of a total, with rate and ETA, on stderr (``auditremote.Progress``)."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        stream = stream if stream is not None else sys.stderr  # the stderr of now, not of import time
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._label = label
        self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeRemainingColumn(), console=Console(file=stream), transient=False)
        self._task: Any = None

    def begin(self, total: int) -> None:
        self._bar.start()
        self._task = self._bar.add_task(self._label, total=total)

    def advance(self, n: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, n)

    def end(self) -> None:
        self._bar.stop()


def wanted(json_output: bool, stream: TextIO | None = None) -> bool:
    """A bar only on a terminal; ``stream`` defaults to the stderr of the call (never one bound at import)."""
    stream = stream if stream is not None else sys.stderr
    return not json_output and stream.isatty()
