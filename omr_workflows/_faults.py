"""Failure injection for the crash and fault tests (mocks are for failure injection only).

`OMR_FAULT_CRASH_AT=<step>` SIGKILLs the process at that step (register: `copy`, `sidecars`,
`publish`; every append: `after-event`, `after-head`; alias sync: `after-pointer`; gc:
`gc-remove`). `OMR_FAULT_FAIL_AT=<step>` raises ENOSPC there instead (`event`: the audit
append of any operation). Reading one environment variable per step costs nothing measurable.
"""

from __future__ import annotations

import errno
import os
import signal


def crash_point(name: str) -> None:
    if os.environ.get("OMR_FAULT_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def fail_point(name: str) -> None:
    if os.environ.get("OMR_FAULT_FAIL_AT") == name:
        from .errors import StorageError

        raise StorageError(f"cannot write: {os.strerror(errno.ENOSPC)} (injected at {name})")
