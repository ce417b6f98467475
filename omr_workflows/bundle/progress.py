"""A byte progress bar for long transfers, on a terminal only (rich, on stderr; never with --json)."""

from __future__ import annotations

import sys
import threading


class Transfer:
    def __init__(self, label: str):
        self.label = label
        self._bar = None
        self._task = None
        self._lock = threading.Lock()

    @staticmethod
    def wanted(json_output: bool) -> bool:
        return not json_output and sys.stderr.isatty()

    def start(self, total: int) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn, TimeRemainingColumn

        if self._bar is None:
            self._bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TimeRemainingColumn(), transient=True,
                                 console=_console())
            self._bar.start()
        self._task = self._bar.add_task(self.label, total=total)

    def advance(self, n: int) -> None:
        if self._bar is not None:
            with self._lock:
                self._bar.advance(self._task, n)

    def wrap(self, write):
        def counted(buf):
            out = write(buf)
            self.advance(len(buf))
            return out
        return counted

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _console():
    from rich.console import Console

    return Console(stderr=True)
