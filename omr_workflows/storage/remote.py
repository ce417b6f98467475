"""Every non-local URL through fsspec, wrapped (not subclassed).

Object stores have no rename, so a version is uploaded to its own area
`versions/<v>/.omr-data/<token>/` and becomes visible when the commit object
`versions/<v>/omr_manifest.json` (which names that area) is created with a conditional
put-if-absent (`If-None-Match: *` on S3, passed through by s3fs). A loser's upload area is
never referenced, so its bytes can never mix with the winner's; gc removes it.
"""

from __future__ import annotations

import io
from typing import BinaryIO, Iterator

from .._faults import crash_point
from ..constants import REMOTE_DATA_DIR
from ..errors import ConflictError, NotFoundError, StorageError
from .base import Stage, Storage, new_token


class RemoteStage(Stage):
    def __init__(self, storage: "RemoteStorage", model_key: str, version: str):
        self._storage = storage
        self.data_dir = f"{REMOTE_DATA_DIR}/{new_token()}"
        self._version_key = f"{model_key}/versions/{version}"
        self._prefix = f"{self._version_key}/{self.data_dir}"

    def open_write(self, rel: str) -> BinaryIO:
        return self._storage.fs.open(self._storage._p(f"{self._prefix}/{rel}"), "wb")

    def publish(self, version_key: str, manifest_name: str, manifest: bytes) -> None:
        crash_point("publish")
        if not self._storage.write_if_absent(f"{version_key}/{manifest_name}", manifest):
            raise ConflictError(f"version {version_key} already exists", obj=version_key)

    def abort(self) -> None:
        try:
            self._storage.remove_tree(self._prefix)
        except Exception:
            pass


class RemoteStorage(Storage):
    is_local = False

    def __init__(self, url: str, fs=None):
        import fsspec

        self.url = url.rstrip("/")
        if fs is None:
            fs, path = fsspec.core.url_to_fs(self.url)
        else:
            path = fs._strip_protocol(self.url)
        self.fs = fs
        self.base = path.rstrip("/")

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
            raise StorageError(f"cannot read {key} from {self.url}: {e}") from e

    def open_read(self, key: str) -> BinaryIO:
        try:
            return self.fs.open(self._p(key), "rb")
        except FileNotFoundError:
            raise NotFoundError(f"{key} not found in registry {self.url}", obj=key) from None

    def exists(self, key: str) -> bool:
        return self.fs.exists(self._p(key))

    def isdir(self, key: str) -> bool:
        return self.fs.isdir(self._p(key))

    def size(self, key: str) -> int:
        return int(self.fs.size(self._p(key)))

    def mtime(self, key: str) -> float:
        info = self.fs.info(self._p(key))
        stamp = info.get("LastModified") or info.get("mtime") or info.get("created")
        if hasattr(stamp, "timestamp"):
            return stamp.timestamp()
        return float(stamp or 0)

    def write_if_absent(self, key: str, data: bytes) -> bool:
        try:
            self.fs.pipe_file(self._p(key), data, mode="create")
            return True
        except FileExistsError:
            return False
        except OSError as e:
            if "PreconditionFailed" in str(e) or "412" in str(e):
                return False
            raise StorageError(f"cannot write {key} to {self.url}: {e}") from e

    def write_replace(self, key: str, data: bytes) -> None:
        # A single PUT is atomic on object stores: readers see the old or the new object.
        self.fs.pipe_file(self._p(key), data)

    def append_line(self, key: str, line: str) -> None:
        try:
            old = self.fs.cat_file(self._p(key))
        except FileNotFoundError:
            old = b""
        self.fs.pipe_file(self._p(key), old + (line.rstrip("\n") + "\n").encode())

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

    def walk(self, key: str) -> Iterator[tuple[str, int]]:
        base = self._p(key).rstrip("/") + "/"
        try:
            found = self.fs.find(self._p(key), detail=True)
        except FileNotFoundError:
            return
        for path, info in sorted(found.items()):
            if info.get("type") == "directory":
                continue
            rel = path[len(base):] if path.startswith(base) else path.rsplit("/", 1)[-1]
            yield rel, int(info.get("size") or 0)

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
