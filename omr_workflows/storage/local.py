"""Local and NFS paths through the standard library only (no fsspec import: start-up time).

Atomicity comes from POSIX: a version is staged in `<model>/.omr-tmp/<version>.<token>`
and published with one `rename` of the directory (which fails if the target exists and is
not empty); single objects are written to a temp file, fsynced, then either `link`ed
(create-if-absent: fails with EEXIST, atomic on NFS too) or `os.replace`d (overwrite).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Iterator

from .._faults import crash_point
from ..constants import STAGING_DIR
from ..errors import ConflictError, NotFoundError, StorageError
from .base import Stage, Storage, new_token


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _tmp_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.{new_token()}.tmp")


def _write_tmp(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_beside(path)
    with open(tmp, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_all(paths: list[Path]) -> None:
    """fsync many files at once: concurrent fsyncs share journal commits, so a package of many
    small files costs about one commit instead of one each, and only our files are flushed
    (unlike syncfs, which would flush every writer on a shared filesystem)."""
    if len(paths) <= 1:
        for p in paths:
            _fsync_path(p)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(16, len(paths))) as pool:
        list(pool.map(_fsync_path, paths))


class _SyncedFile:
    """A write handle for a staged file; `LocalStage._durable` fsyncs all of them before publish."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "xb", buffering=0)  # unbuffered: BufferedWriter copies large writes
        self.write = self._f.write
        self.path = path

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LocalStage(Stage):
    def __init__(self, storage: "LocalStorage", model_key: str, version: str):
        self._storage = storage
        self.dir = storage._p(model_key) / STAGING_DIR / f"{version}.{new_token()}"
        self.dir.mkdir(parents=True)

    def open_write(self, rel: str) -> BinaryIO:
        return _SyncedFile(self.dir / rel)  # type: ignore[return-value]

    def _durable(self) -> None:
        """Every staged byte and directory entry on disk before the rename makes it visible."""
        files, dirs = [], []
        for sub, _dirs, names in os.walk(self.dir):
            dirs.append(Path(sub))
            files += [Path(sub) / n for n in names]
        _fsync_all(files)
        for d in dirs:
            _fsync_dir(d)

    def publish(self, version_key: str, manifest_name: str, manifest: bytes) -> None:
        with _SyncedFile(self.dir / manifest_name) as f:
            f.write(manifest)
        self._durable()
        target = self._storage._p(version_key)
        target.parent.mkdir(parents=True, exist_ok=True)
        crash_point("publish")
        try:
            # rename(2) of a directory replaces only an empty target: a published
            # version (never empty) cannot be overwritten, whoever renames second loses.
            os.rename(self.dir, target)
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise ConflictError(f"version {version_key} already exists", obj=version_key) from None
            raise StorageError(f"cannot publish {version_key}: {e.strerror}") from e
        _fsync_dir(target.parent)

    def abort(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class LocalStorage(Storage):
    is_local = True

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)

    def _p(self, key: str) -> Path:
        return self.root / key if key else self.root

    def local_path(self, key: str) -> Path:
        return self._p(key)

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._p(key).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"{key} not found in registry {self.url}", obj=key) from None
        except IsADirectoryError:
            raise NotFoundError(f"{key} is a folder, not a file", obj=key) from None
        except OSError as e:
            raise StorageError(f"cannot read {key}: {e.strerror}") from e

    def open_read(self, key: str) -> BinaryIO:
        try:
            return open(self._p(key), "rb")
        except FileNotFoundError:
            raise NotFoundError(f"{key} not found in registry {self.url}", obj=key) from None

    def exists(self, key: str) -> bool:
        return self._p(key).exists()

    def isdir(self, key: str) -> bool:
        return self._p(key).is_dir()

    def size(self, key: str) -> int:
        return self._p(key).stat().st_size

    def mtime(self, key: str) -> float:
        return self._p(key).stat().st_mtime

    def write_if_absent(self, key: str, data: bytes) -> bool:
        path = self._p(key)
        tmp = _write_tmp(path, data)
        try:
            os.link(tmp, path)
            _fsync_dir(path.parent)
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    def write_replace(self, key: str, data: bytes) -> None:
        path = self._p(key)
        tmp = _write_tmp(path, data)
        os.replace(tmp, path)
        _fsync_dir(path.parent)

    def append_line(self, key: str, line: str) -> None:
        path = self._p(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # One write(2) with O_APPEND: concurrent appenders never interleave short lines.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line.rstrip("\n") + "\n").encode())
        finally:
            os.close(fd)

    def listdir(self, key: str) -> list[str]:
        try:
            return sorted(os.listdir(self._p(key)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def walk(self, key: str) -> Iterator[tuple[str, int]]:
        base = self._p(key)
        for sub, dirs, files in os.walk(base):
            dirs.sort()
            for name in sorted(files):
                full = Path(sub) / name
                yield full.relative_to(base).as_posix(), full.lstat().st_size

    def stage(self, model_key: str, version: str) -> LocalStage:
        return LocalStage(self, model_key, version)

    def remove_tree(self, key: str) -> None:
        path = self._p(key)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
