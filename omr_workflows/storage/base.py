"""The storage interface: the handful of operations the registry needs, nothing more.

Keys are relative POSIX paths under the registry root (`tasks/t/models/m/...`, formatted by
`layout.py` only); a backend turns them into its own paths. Storage never hashes: hashing
lives in `hashing.py`, and the registry joins the two.

Staging (docs/DESIGN.md, "Staging and gc"): every upload attempt owns a token
(`layout.new_token`) and a lease object `layout.lease_key(model, version, token)` that a
daemon thread rewrites every ttl/3 seconds while the attempt lives. gc may remove an attempt
only when `lease_is_dead` says its heartbeat is older than its ttl; a stage whose lease or
area went away refuses to publish instead of publishing a part.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from abc import ABC, abstractmethod
from typing import BinaryIO, Iterator, Literal, NamedTuple

from ..errors import InvalidInputError, NotFoundError, OmrError, StorageError

ENV_LEASE_TTL = "OMR_LEASE_TTL"
DEFAULT_LEASE_TTL = 120.0

#: what `Storage.kind` answers: lstat-based on local filesystems ("symlink"/"other" name
#: planted links, FIFOs, sockets, devices); object stores know only "file" and "dir".
Kind = Literal["file", "dir", "symlink", "other"]


class FileInfo(NamedTuple):
    """One entry found by `Storage.walk`: `regular` is False for a symlink or special file,
    whose `size` is then the link's own size (0 for special files); omrw never reads it."""

    rel: str
    size: int
    regular: bool = True


# ---------------------------------------------------------------------- leases
def lease_ttl() -> float:
    """Seconds a lease stays alive without a heartbeat (`OMR_LEASE_TTL`, default 120).

    Raises InvalidInputError when the variable is not a finite number > 0.
    """
    raw = os.environ.get(ENV_LEASE_TTL, "").strip()
    if not raw:
        return DEFAULT_LEASE_TTL
    try:
        ttl = float(raw)
    except ValueError:
        ttl = math.nan
    if not math.isfinite(ttl) or ttl <= 0:
        raise InvalidInputError(f"invalid {ENV_LEASE_TTL} {raw!r}: use a number of seconds > 0", obj=ENV_LEASE_TTL)
    return ttl


def lease_bytes(token: str, version: str, ttl: float, heartbeat: float | None = None) -> bytes:
    """The JSON body of a lease: who holds the attempt and when it last proved alive."""
    import socket  # writers only

    body = {"token": token, "version": version, "host": socket.gethostname(), "pid": os.getpid(),
            "heartbeat": time.time() if heartbeat is None else heartbeat, "ttl": ttl}
    return (json.dumps(body, sort_keys=True) + "\n").encode()


def parse_lease(data: bytes | None) -> dict | None:
    """The lease fields if `data` is a well-formed lease, else None (never raises)."""
    if data is None or len(data) > 64 * 1024:
        return None
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(body, dict):
        return None
    for field in ("token", "version"):
        if not isinstance(body.get(field), str):
            return None
    for field in ("heartbeat", "ttl"):
        value = body.get(field)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
    if body["ttl"] <= 0:
        return None
    return body


def lease_is_dead(lease_bytes: bytes | None, now: float, older_than: float) -> bool:
    """True only when the lease provably belongs to a dead writer.

    Dead iff the bytes parse as a lease and `now - heartbeat > max(ttl, older_than)`. A
    missing (None) or unparsable lease is not provably dead: False, so gc keeps the area.
    """
    body = parse_lease(lease_bytes)
    if body is None:
        return False
    return now - float(body["heartbeat"]) > max(float(body["ttl"]), older_than)


class _Heartbeat:
    """Rewrites one lease every ttl/3 seconds on a daemon thread until stopped.

    The lease is ours only while it holds the bytes we last wrote: if it disappears or
    changes (gc judged us dead, someone replaced it) or cannot be rewritten, the stage is
    lost and must not publish.
    """

    def __init__(self, storage: "Storage", key: str, token: str, version: str, ttl: float):
        self._storage, self.key, self._token, self._version, self.ttl = storage, key, token, version, ttl
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.lost: str | None = None
        self._last = lease_bytes(token, version, ttl)
        self.beat_at = time.time()
        if not storage.write_if_absent(key, self._last):
            raise StorageError(f"lease {key} already exists; cannot start staging", obj=key)
        self._thread = threading.Thread(target=self._run, name=f"omr-lease-{token}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            self.beat()
            if self.lost:
                return

    def beat(self) -> None:
        """Check that the lease is still ours and rewrite it; on any failure mark the stage lost."""
        with self._lock:
            if self.lost or self._stop.is_set():
                return
            try:
                found = self._storage.read_bytes(self.key)
            except NotFoundError:
                self.lost = f"its lease {self.key} was removed"
                return
            except (OmrError, OSError) as e:
                self.lost = f"its lease {self.key} cannot be read ({e})"
                return
            if found != self._last:
                self.lost = f"its lease {self.key} was changed by someone else"
                return
            now = time.time()
            if now - self.beat_at > self.ttl:
                # Stalled longer than the ttl (suspended, overloaded): gc may already be removing us.
                self.lost = f"its lease {self.key} expired ({now - self.beat_at:.0f} s without a heartbeat)"
                return
            new = lease_bytes(self._token, self._version, self.ttl, now)
            try:
                self._storage.write_replace(self.key, new)
            except (OmrError, OSError) as e:
                self.lost = f"its lease {self.key} cannot be rewritten ({e})"
                return
            self._last, self.beat_at = new, now

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=max(5.0, self.ttl))

    def release(self) -> None:
        """Stop beating and remove the lease (best effort: gc removes a leftover dead lease)."""
        self.stop()
        try:
            self._storage.remove_tree(self.key)
        except (OmrError, OSError):
            pass


def lost_message(version: str) -> str:
    return (f"staging area of {version} was removed or replaced while registering (omrw gc?); "
            f"nothing was published")


# ---------------------------------------------------------------------- interface
class Stage(ABC):
    """An upload area for one version attempt, invisible to readers until `publish`.

    `token` names the attempt (`layout.TOKEN_RE`), `lease_key` is its heartbeat object,
    `area_key` the storage key of the upload area (`layout.staging_key` locally, the version's
    `.omr-data/<token>` on object stores) and `data_dir` is where the files will live relative
    to the version folder once published ("" on local filesystems, `.omr-data/<token>` on
    object stores).
    """

    token: str
    lease_key: str
    area_key: str
    data_dir: str = ""

    @abstractmethod
    def open_write(self, rel: str) -> BinaryIO:
        """Open `rel` for writing inside the stage (exclusive create; parents created
        inside the stage only). Raises StorageError if the stage was removed or lost."""

    @abstractmethod
    def publish(self, version_key: str, manifest_name: str, manifest: bytes) -> None:
        """Make the version visible at once. Raises ConflictError if it exists, StorageError
        if the stage's area or lease was removed or replaced (nothing is published then)."""

    @abstractmethod
    def abort(self) -> None:
        """Remove the staged files and the lease (best effort; gc catches what a crash leaves)."""

    @abstractmethod
    def release(self) -> None:
        """Drop the lease of a published attempt. The registry calls it once the version's event
        is in the log: until then the live lease tells others the attempt is still committing."""


class Storage(ABC):
    url: str
    is_local: bool = False

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """Whole object. NotFoundError if missing (or a folder); IntegrityError for a
        symlink or special file (local)."""

    @abstractmethod
    def open_read(self, key: str) -> BinaryIO:
        """A binary reader; raises like `read_bytes`."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether `key` exists (a symlink counts as existing; it is never followed)."""

    @abstractmethod
    def isdir(self, key: str) -> bool:
        """Whether `key` is a real folder (never True for a symlink)."""

    @abstractmethod
    def kind(self, key: str) -> Kind | None:
        """"file", "dir", "symlink", "other" (FIFO, socket, device) or None if missing."""

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
        """Sorted names directly under `key`; [] if it does not exist or is a symlink."""

    @abstractmethod
    def walk(self, key: str) -> Iterator[FileInfo]:
        """Every entry under `key` that is not a folder, recursively, sorted by `rel`.

        Symlinks are never followed; they and special files are reported with
        `regular=False` instead of being hidden.
        """

    @abstractmethod
    def stage(self, model_key: str, version: str) -> Stage:
        """Start an upload attempt for `version` of the model at `model_key` (lease first)."""

    @abstractmethod
    def remove_tree(self, key: str) -> None:
        """Remove `key` and everything under it; a symlink is unlinked, never followed;
        a missing key is a no-op."""

    @abstractmethod
    def local_path(self, key: str):
        """A `pathlib.Path` when the bytes are on a local/NFS filesystem, else None."""

    def read_small(self, key: str, limit: int) -> bytes:
        """A whole object that must be small (a signature, the policy, a hook log): reads at most
        `limit` + 1 bytes, so a huge file planted at such a key cannot exhaust memory."""
        from ..errors import IntegrityError

        with self.open_read(key) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise IntegrityError(f"{key}: more than {limit} bytes, too large for what it should be (planted?)",
                                 obj=key)
        return data

    def join(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in parts if p)
