"""Failure injection for the crash-safety tests: SIGKILL ourselves at a named step.

Set OMR_FAULT_CRASH_AT to one of `copy`, `sidecars`, `publish` to kill a register at that
point. Reading one environment variable per step costs nothing measurable.
"""

from __future__ import annotations

import os
import signal


def crash_point(name: str) -> None:
    if os.environ.get("OMR_FAULT_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
