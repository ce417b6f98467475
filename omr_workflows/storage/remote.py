"""Every non-local URL through fsspec, wrapped (not subclassed).

Object stores have no rename, so a version is uploaded to its own area
`versions/<v>/.omr-data/<token>/` and becomes visible when the commit object
`versions/<v>/omr_manifest.json` (which names that area) is created with a conditional
put-if-absent (`If-None-Match: *` on S3, passed through by s3fs). A loser's upload area is
never referenced, so its bytes can never mix with the winner's; gc removes it.

Each attempt holds a lease object (`layout.lease_key`) refreshed by a heartbeat; before the
commit a stage re-checks its lease and lists its area, so an area that gc removed (because
the writer stalled past its ttl) is never committed.

`memory://` (fsspec's MemoryFileSystem, for tests) checks-then-sets in `open(mode="xb")`,
which is not atomic under threads: write-if-absent is serialised by a process-wide lock for
that protocol only. Its readers also share one file object per path, so reads get a copy.
"""

from __future__ import annotations

import io
import threading
from typing import BinaryIO, Iterator

from .._faults import crash_point
from ..errors import ConflictError, NotFoundError, StorageError
from ..layout import lease_key, new_token, remote_data_dir
from .base import FileInfo, Kind, Stage, Storage, _Heartbeat, lease_ttl, lost_message

_MEMORY_LOCK = threading.Lock()


class _CountingWriter:
    """An fsspec write handle that records how many bytes went through it."""

    def __init__(self, f, rel: str, done):
        self._f, self._rel, self._done = f, rel, done
        self.size = 0

    def write(self, data) -> int:
        n = memoryview(data).nbytes
        self._f.write(data)
        self.size += n
        return n

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()
            self._done(self._rel, self.size)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()
        else:
            try:
                self._f.close()
            except Exception:
                pass


class RemoteStage(Stage):
    def __init__(self, storage: "RemoteStorage", model_key: str, version: str):
        self._storage = storage
        self.version = version
        self.token = new_token()
        self.lease_key = lease_key(model_key, version, self.token)
        self.data_dir = remote_data_dir(self.token)
        # `lease_key` above has checked `version` with the name rule.
        self._version_key = f"{model_key}/versions/{version}"
        self._prefix = self.area_key = f"{self._version_key}/{self.data_dir}"
        self._files: dict[str, int] = {}
        self._lease = _Heartbeat(storage, self.lease_key, self.token, version, lease_ttl())

    def _gone(self, why: str = "") -> StorageError:
        return StorageError(lost_message(self.version) + (f" ({why})" if why else ""), obj=self._prefix)

    def _written(self, rel: str, size: int) -> None:
        self._files[rel] = size

    def open_write(self, rel: str) -> BinaryIO:
        if self._lease.lost:
            raise self._gone(self._lease.lost)
        self._files[rel] = -1
        f = self._storage.fs.open(self._storage._p(f"{self._prefix}/{rel}"), "wb")
        return _CountingWriter(f, rel, self._written)  # type: ignore[return-value]

    def publish(self, version_key: str, manifest_name: str, manifest: bytes) -> None:
        # A fresh heartbeat first: gc may not judge us dead for a whole ttl from here, which
        # covers the listing and the commit below.
        self._lease.beat()
        if self._lease.lost:
            raise self._gone(self._lease.lost)
        self._storage.invalidate()
        found = {info.rel: info.size for info in self._storage.walk(self._prefix)}
        if found != self._files:
            missing = sorted(r for r in self._files if found.get(r) != self._files[r])
            raise self._gone(f"missing or changed {missing[:3]}" if missing else "unexpected objects in the area")
        crash_point("publish")
        if not self._storage.write_if_absent(f"{version_key}/{manifest_name}", manifest):
            raise ConflictError(f"version {version_key} already exists", obj=version_key)

    def release(self) -> None:
        self._lease.release()

    def abort(self) -> None:
        self._lease.stop()
        try:
            self._storage.remove_tree(self._prefix)
        except Exception:
            pass
        self._lease.release()


class RemoteStorage(Storage):
    is_local = False

    def __init__(self, url: str, fs=None):
        import fsspec

        self.url = url.rstrip("/")
        if fs is None:
            # No listings cache: the log is shared with other processes, and a cached listing would
            # show a head whose event "is missing" (or hide a new one) to a long-lived reader.
            try:
                fs, path = fsspec.core.url_to_fs(self.url, use_listings_cache=False)
            except TypeError:
                fs, path = fsspec.core.url_to_fs(self.url)
        else:
            path = fs._strip_protocol(self.url)
        self.fs = fs
        self.base = path.rstrip("/")
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        self._memory = protocol == "memory"

    def _p(self, key: str) -> str:
        return f"{self.base}/{key}" if key else self.base

    def local_path(self, key: str):
        return None

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.fs.cat_file(self._p(key))
        except FileNotFoundError:
            raise NotFoundError(f"{key} not found in registry {self.url}", obj=key) from None
        except IsADirectoryError:
            raise NotFoundError(f"{key} is a folder, not a file", obj=key) from None
        except OSError as e:
            raise StorageError(f"cannot read {key} from {self.url}: {e}", obj=key) from e

    def open_read(self, key: str) -> BinaryIO:
        if self._memory:
            return io.BytesIO(self.read_bytes(key))
        try:
            return self.fs.open(self._p(key), "rb")
        except FileNotFoundError:
            raise NotFoundError(f"{key} not found in registry {self.url}", obj=key) from None
        except IsADirectoryError:
            raise NotFoundError(f"{key} is a folder, not a file", obj=key) from None

    def exists(self, key: str) -> bool:
        return self.fs.exists(self._p(key))

    def isdir(self, key: str) -> bool:
        return self.fs.isdir(self._p(key))

    def kind(self, key: str) -> Kind | None:
        try:
            info = self.fs.info(self._p(key))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return "dir" if info.get("type") == "directory" else "file"

    def size(self, key: str) -> int:
        try:
            return int(self.fs.size(self._p(key)))
        except FileNotFoundError:
            raise NotFoundError(f"{key} not found in registry {self.url}", obj=key) from None

    def mtime(self, key: str) -> float:
        try:
            info = self.fs.info(self._p(key))
        except FileNotFoundError:
            raise NotFoundError(f"{key} not found in registry {self.url}", obj=key) from None
        stamp = info.get("LastModified") or info.get("mtime") or info.get("created")
        if hasattr(stamp, "timestamp"):
            return stamp.timestamp()
        return float(stamp or 0)

    def write_if_absent(self, key: str, data: bytes) -> bool:
        try:
            if self._memory:
                with _MEMORY_LOCK:
                    self.fs.pipe_file(self._p(key), data, mode="create")
            else:
                self.fs.pipe_file(self._p(key), data, mode="create")
            return True
        except FileExistsError:
            return False
        except OSError as e:
            if "PreconditionFailed" in str(e) or "412" in str(e):
                return False
            raise StorageError(f"cannot write {key} to {self.url}: {e}", obj=key) from e

    def write_replace(self, key: str, data: bytes) -> None:
        # A single PUT is atomic on object stores: readers see the old or the new object.
        try:
            if self._memory:
                with _MEMORY_LOCK:
                    self.fs.pipe_file(self._p(key), data)
            else:
                self.fs.pipe_file(self._p(key), data)
        except OSError as e:
            raise StorageError(f"cannot write {key} to {self.url}: {e}", obj=key) from e

    def append_line(self, key: str, line: str) -> None:
        try:
            old = self.fs.cat_file(self._p(key))
        except FileNotFoundError:
            old = b""
        self.write_replace(key, old + (line.rstrip("\n") + "\n").encode())

    def listdir(self, key: str) -> list[str]:
        try:
            entries = self.fs.ls(self._p(key), detail=False, refresh=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        base = self._p(key).rstrip("/") + "/"
        names = []
        for e in entries:
            e = e.rstrip("/")
            if e.startswith(base):
                names.append(e[len(base):])
            else:
                names.append(e.rsplit("/", 1)[-1])
        return sorted(n for n in names if n)

    def walk(self, key: str) -> Iterator[FileInfo]:
        base = self._p(key).rstrip("/") + "/"
        try:
            found = self.fs.find(self._p(key), detail=True)
        except FileNotFoundError:
            return
        for path, info in sorted(found.items()):
            if info.get("type") == "directory":
                continue
            rel = path[len(base):] if path.startswith(base) else path.rsplit("/", 1)[-1]
            yield FileInfo(rel, int(info.get("size") or 0), True)

    def stage(self, model_key: str, version: str) -> RemoteStage:
        return RemoteStage(self, model_key, version)

    def remove_tree(self, key: str) -> None:
        try:
            self.fs.rm(self._p(key), recursive=True)
        except FileNotFoundError:
            pass

    def invalidate(self) -> None:
        try:
            self.fs.invalidate_cache()
        except Exception:
            pass


def as_stream(data: bytes) -> BinaryIO:
    return io.BytesIO(data)
