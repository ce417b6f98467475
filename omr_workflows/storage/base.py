"""The storage interface: the handful of operations the registry needs, nothing more.

Keys are relative POSIX paths under the registry root (`tasks/t/models/m/...`); a backend
turns them into its own paths. Storage never hashes: hashing lives in `hashing.py`, and
the registry joins the two.
"""

from __future__ import annotations

import secrets
import time
from abc import ABC, abstractmethod
from typing import BinaryIO, Iterator


def new_token() -> str:
    """A unique staging token that also records when staging began (for gc)."""
    return f"{int(time.time())}-{secrets.token_hex(6)}"


def token_age(name: str, now: float | None = None) -> float | None:
    """Seconds since a staging token (as the suffix of `name`) was made; None if not one."""
    tail = name.rsplit(".", 1)[-1]
    stamp = tail.split("-", 1)[0]
    if not stamp.isdigit():
        return None
    return (now or time.time()) - int(stamp)


class Stage(ABC):
    """An upload area for one version attempt, invisible to readers until `publish`."""

    #: where the files will live relative to the version folder once published
    data_dir: str = ""

    @abstractmethod
    def open_write(self, rel: str) -> BinaryIO:
        """Open `rel` for writing inside the stage (parents created)."""

    @abstractmethod
    def publish(self, version_key: str, manifest_name: str, manifest: bytes) -> None:
        """Make the version visible at once, or raise ConflictError if it exists."""

    @abstractmethod
    def abort(self) -> None:
        """Remove the staged files (best effort; gc catches what a crash leaves)."""


class Storage(ABC):
    url: str
    is_local: bool = False

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """Whole object; NotFoundError if missing."""

    @abstractmethod
    def open_read(self, key: str) -> BinaryIO: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def isdir(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int: ...

    @abstractmethod
    def mtime(self, key: str) -> float: ...

    @abstractmethod
    def write_if_absent(self, key: str, data: bytes) -> bool:
        """Create `key` with `data` atomically unless it exists; False if it existed."""

    @abstractmethod
    def write_replace(self, key: str, data: bytes) -> None:
        """Atomically replace `key` (readers see old or new bytes, never a mix)."""

    @abstractmethod
    def append_line(self, key: str, line: str) -> None:
        """Append one line (compat logs); object stores rewrite the object."""

    @abstractmethod
    def listdir(self, key: str) -> list[str]:
        """Names directly under `key`; [] if it does not exist."""

    @abstractmethod
    def walk(self, key: str) -> Iterator[tuple[str, int]]:
        """(relative path, size) of every file under `key`, recursively."""

    @abstractmethod
    def stage(self, model_key: str, version: str) -> Stage: ...

    @abstractmethod
    def remove_tree(self, key: str) -> None: ...

    @abstractmethod
    def local_path(self, key: str):
        """A `pathlib.Path` when the bytes are on a local/NFS filesystem, else None."""

    def join(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in parts if p)
