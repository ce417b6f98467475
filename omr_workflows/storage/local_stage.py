"""Local staging: a leased folder under `.omr-tmp/`, written through its own fd, published by one rename.

The stage never recreates its folder (every file is created relative to the folder's fd), and
publish checks that the folder is still the same one holding exactly what was written before
the rename (docs/DESIGN.md, "Staging and gc").
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING, BinaryIO

from .._faults import crash_point
from ..errors import ConflictError, NotFoundError, StorageError
from ..layout import lease_key, new_token, staging_key
from .base import Stage, _Heartbeat, lease_ttl, lost_message
from .fdops import _CREATE_FLAGS, _READ_FLAGS, _descend, _fsync_fd, _lstat_at, _open_dir_at, _parts, _SyncedFile

if TYPE_CHECKING:
    from .local import LocalStorage


class LocalStage(Stage):
    """`<model>/.omr-tmp/<version>.<token>`, reached only through the fd opened when it was made.

    The lease is created first (so gc never finds a folder without one), then the folder;
    every staged file and subfolder is created relative to that fd, never by path, so a
    folder removed by gc cannot be silently recreated: writes into it fail with ENOENT.
    """

    def __init__(self, storage: "LocalStorage", model_key: str, version: str):
        self._storage = storage
        self.version = version
        self.token = new_token()
        self.lease_key = lease_key(model_key, version, self.token)
        self.key = self.area_key = staging_key(model_key, version, self.token)
        self.data_dir = ""
        self.dir = storage.local_path(self.key)
        self._files: dict[str, int] = {}
        self._fd: int | None = None
        self._lease = _Heartbeat(storage, self.lease_key, self.token, version, lease_ttl())
        try:
            pfd, name = storage._parent(self.key, create=True)
            try:
                os.mkdir(name, dir_fd=pfd)
                self._fd = _open_dir_at(name, pfd, self.key, self.key)
            finally:
                os.close(pfd)
        except BaseException:
            self._lease.release()
            raise
        st = os.fstat(self._fd)
        self._id = (st.st_dev, st.st_ino)

    def _gone(self, why: str = "") -> StorageError:
        return StorageError(lost_message(self.version) + (f" ({why})" if why else ""), obj=self.key)

    def _opened(self, rel: str, size: int) -> None:
        self._files[rel] = size

    def open_write(self, rel: str) -> BinaryIO:
        if self._fd is None:
            raise StorageError(f"staging area of {self.version} is closed", obj=self.key)
        if self._lease.lost:
            raise self._gone(self._lease.lost)
        parts = _parts(rel)
        if rel in self._files:
            raise StorageError(f"{rel} was already staged for {self.version}", obj=self.key)
        try:
            pfd = _descend(os.dup(self._fd), parts[:-1], self.key, create=True, prefix=self.key)
        except (FileNotFoundError, NotADirectoryError) as e:
            raise self._gone(f"{e.filename or rel}: {e.strerror}") from None
        try:
            fd = os.open(parts[-1], _CREATE_FLAGS, 0o666, dir_fd=pfd)
        except FileNotFoundError:
            raise self._gone() from None
        except OSError as e:
            raise StorageError(f"cannot stage {rel} for {self.version}: {e.strerror}", obj=self.key) from e
        finally:
            os.close(pfd)
        self._files[rel] = -1  # open: not yet complete
        return _SyncedFile(fd, rel, self._opened)  # type: ignore[return-value]

    def _found(self) -> tuple[dict[str, int], list[str]]:
        """(regular file -> size, folders) actually in the staging folder now; IntegrityError
        for anything that is not a regular file or folder."""
        files: dict[str, int] = {}
        dirs: list[str] = [""]

        def scan(fd: int, prefix: str) -> None:
            with os.scandir(fd) as it:
                entries = list(it)
            for e in entries:
                rel = f"{prefix}{e.name}"
                st = e.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    dirs.append(rel)
                    sub = _open_dir_at(e.name, fd, rel, self.key)
                    try:
                        scan(sub, rel + "/")
                    finally:
                        os.close(sub)
                elif stat.S_ISREG(st.st_mode):
                    files[rel] = st.st_size
                else:
                    raise self._gone(f"{rel} is not a regular file")

        scan(self._fd, "")
        return files, dirs

    def _sync(self, files: list[str], dirs: list[str]) -> None:
        """Every staged byte and directory entry on disk before the rename makes it visible.

        Concurrent fsyncs share journal commits, so a package of many small files costs about
        one commit instead of one each, and only our files are flushed (unlike syncfs, which
        would flush every writer on a shared filesystem)."""

        def sync_one(rel: str, is_dir: bool) -> None:
            parts = rel.split("/") if rel else []
            if is_dir:
                fd = _descend(os.dup(self._fd), parts, self.key, create=False, prefix=self.key)
            else:
                pfd = _descend(os.dup(self._fd), parts[:-1], self.key, create=False, prefix=self.key)
                try:
                    fd = os.open(parts[-1], _READ_FLAGS, dir_fd=pfd)
                finally:
                    os.close(pfd)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        jobs = [(f, False) for f in files] + [(d, True) for d in dirs]
        if len(jobs) <= 2:
            for job in jobs:
                sync_one(*job)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(16, len(jobs))) as pool:
            list(pool.map(lambda job: sync_one(*job), jobs))

    def publish(self, version_key: str, manifest_name: str, manifest: bytes) -> None:
        with self.open_write(manifest_name) as f:
            f.write(manifest)
        self._lease.beat()
        if self._lease.lost:
            raise self._gone(self._lease.lost)
        try:
            found, dirs = self._found()
        except FileNotFoundError as e:
            raise self._gone(str(e)) from None
        if found != self._files:
            missing = sorted(set(self._files) - set(found))
            changed = sorted(r for r in self._files if r in found and found[r] != self._files[r])
            extra = sorted(set(found) - set(self._files))
            what = (f"missing {missing[:3]}" if missing else f"size changed {changed[:3]}" if changed
                    else f"unexpected {extra[:3]}")
            raise self._gone(what)
        try:
            self._sync(sorted(found), dirs)
        except OSError as e:
            raise self._gone(f"{getattr(e, 'filename', '') or ''} {e.strerror}".strip()) from None
        storage = self._storage
        try:
            pfd, name = storage._parent(self.key)
        except (FileNotFoundError, NotADirectoryError, NotFoundError):
            raise self._gone() from None
        try:
            st = _lstat_at(name, pfd)
            if st is None or not stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) != self._id:
                raise self._gone()
            vpfd, vname = storage._parent(version_key, create=True)
            try:
                crash_point("publish")
                try:
                    # rename(2) of a directory replaces only an empty target: a published
                    # version (never empty) cannot be overwritten, whoever renames second loses.
                    os.rename(name, vname, src_dir_fd=pfd, dst_dir_fd=vpfd)
                except OSError as e:
                    if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                        raise ConflictError(f"version {version_key} already exists", obj=version_key) from None
                    raise StorageError(f"cannot publish {version_key}: {e.strerror}", obj=version_key) from e
                _fsync_fd(vpfd)
            finally:
                os.close(vpfd)
        finally:
            os.close(pfd)
        self._close()

    def release(self) -> None:
        self._lease.release()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def abort(self) -> None:
        self._lease.stop()
        self._close()
        try:
            self._storage.remove_tree(self.key)
        except Exception:
            pass
        self._lease.release()
