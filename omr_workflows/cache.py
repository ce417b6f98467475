"""The local cache of remote versions: one read-only, checked copy per package digest.

Layout under `constants.cache_dir()` (`$OMR_CACHE`, else `$XDG_CACHE_HOME/omr-workflows`)::

    by-digest/<hex64>/<tag>/            # one complete copy: the version's files + omr_manifest.json
    by-digest/<hex64>/.<tag>.tmp.<tok>  # a copy being built (unique per attempt)
    by-digest/<hex64>/.<tag>.damaged.<tok>  # a damaged copy moved aside, then removed

`<hex64>` is the package digest. The package digest covers the artifact files only, not the
sidecars (`model_meta.json`, `sha256sums.txt`), so two versions with the same artifacts but
different metadata share `<hex64>` and differ in `<tag>`: the first 32 hex digits of the
sha256 of the manifest written into the copy (the version's manifest with `data_dir` set to
"", since the copy holds the files at its top). A version mirrored to another registry
therefore shares its copy; a version never gets another version's `model_meta.json`.

Rules (docs/DESIGN.md, "The cache of remote registries"):

* A copy is built in a unique temp folder beside its final name; every file is checked
  while it downloads with `verify.filecheck` in strict mode (sha256, whatever `verify`
  asks for: the download is the one moment the bytes are read anyway), fsynced and made
  read-only (files 0o444, folders 0o555), then published with one `os.rename` of the
  folder. No flock: it is unreliable on Lustre, GPFS and NFS, while a rename of a folder
  inside one parent is atomic on all of them. Losing the rename to a complete copy that
  passes the requested check is success.
* An existing copy is served only after checking it with the requested mode: `none` checks
  that the file set and sizes match the manifest (cheap; catches deletions and truncations;
  a file someone made writable is checked with `fast` too), `fast` adds xxh3-128, `strict`
  sha256. A file that is not in the manifest, a symlink or a special file is a problem.
* A damaged copy is never served: it is renamed aside (atomically) and removed, and the
  version is materialised again from the registry (`MaterializeResult.rematerialised`).
* Nothing escapes the cache root: the digest must be 64 hex digits and manifest paths are
  checked by the Manifest model; nothing is followed through a symlink.

Versions written by omnibioai-model-registry (no manifest) exist only on local registries,
which are read in place; materialising one is refused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .constants import MANIFEST_NAME, cache_dir
from .errors import IntegrityError, InvalidInputError, OmrError, StorageError
from .layout import HEX64_RE, new_token
from .verify.filecheck import Problem, check_file, check_mode, check_stream, open_regular

BY_DIGEST = "by-digest"
TAG_LEN = 32
#: attempts when a freshly published copy is damaged again before we could check it
ATTEMPTS = 3


@dataclass(frozen=True)
class MaterializeResult:
    """Where the version's files are, and what happened to get them there."""

    path: Path
    rematerialised: bool = False    # a damaged cached copy was moved aside and fetched again
    downloaded: bool = False        # this call read the files from the registry
    verified: str = "none"          # how the served copy was checked: none (set + sizes), fast, strict
    problems: tuple[Problem, ...] = field(default=())  # what was wrong with the damaged copy

    def __fspath__(self) -> str:
        return str(self.path)


def cache_manifest_bytes(version) -> bytes:
    """The manifest stored in a copy: the version's, with its files at the top of the folder."""
    return version.manifest.model_copy(update={"data_dir": ""}).to_bytes()


def copy_path(version, cache_root: Path | None = None) -> Path:
    """The folder a version's copy lives in (whether or not it exists yet)."""
    if version.manifest is None:
        raise InvalidInputError(
            f"{version.uri} was written by omnibioai-model-registry (no {MANIFEST_NAME}); such versions "
            f"are served in place from local registries only, not materialised from remote storage",
            obj=version.uri)
    digest = version.digest or ""
    hexd = digest[len("sha256:"):] if digest.startswith("sha256:") else ""
    if not HEX64_RE.fullmatch(hexd):
        raise InvalidInputError(f"{version.uri}: invalid package digest {digest!r}", obj=version.uri)
    if version.manifest.digest != digest:
        raise IntegrityError(f"{version.uri}: manifest gives digest {version.manifest.digest}, not {digest}",
                             obj=version.uri)
    tag = hashlib.sha256(cache_manifest_bytes(version)).hexdigest()[:TAG_LEN]
    root = Path(cache_root) if cache_root is not None else cache_dir()
    return root / BY_DIGEST / hexd / tag


def materialize(storage, version, verify: str = "none", cache_root: Path | None = None) -> MaterializeResult:
    """A checked, read-only local copy of `version` (a `versions.Version` with a manifest).

    Reads each file from `storage.open_read(f"{version.data_key}/{entry.path}")`. Safe to
    call from many processes on many nodes sharing one cache folder at once.
    Raises InvalidInputError (legacy version, bad digest or mode), IntegrityError (the
    registry's bytes do not match the manifest), NotFoundError (a file is missing in the
    registry), StorageError (the cache cannot be written).
    Returns a MaterializeResult (`.path`; it is also os.PathLike).
    """
    check_mode(verify)
    target = copy_path(version, cache_root)
    expected = _expected(version)
    chunk_size = version.manifest.content.chunk_size
    rematerialised, found = False, ()
    for _ in range(ATTEMPTS):
        problems = _check_copy(target, expected, verify, chunk_size)
        if problems is None:
            pass  # no copy yet
        elif not problems:
            return MaterializeResult(target, rematerialised, False, verify, found)
        else:
            rematerialised, found = True, tuple(problems)
            _move_aside(target)
        try:
            _build(storage, version, target)
        except _LostRace:
            continue  # another process published first: check its copy like any other
        return MaterializeResult(target, rematerialised, True, "strict", found)
    raise StorageError(f"{version.uri}: the cached copy at {target} was damaged again each time it was "
                       f"rebuilt ({ATTEMPTS} attempts); check the cache filesystem", obj=str(target))


# ---------------------------------------------------------------------- checking a copy
def _expected(version) -> dict:
    files = {e.path: e for e in version.manifest.all_files()}
    files[MANIFEST_NAME] = cache_manifest_bytes(version)
    return files


def _walk(top: Path) -> tuple[dict[str, os.stat_result], list[str]]:
    """(regular files -> lstat, paths that are neither files nor folders), following no symlink."""
    files: dict[str, os.stat_result] = {}
    odd: list[str] = []
    stack = [("", top)]
    while stack:
        rel, folder = stack.pop()
        with os.scandir(folder) as it:
            for e in it:
                name = f"{rel}{e.name}"
                st = e.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append((name + "/", Path(e.path)))
                elif stat.S_ISREG(st.st_mode):
                    files[name] = st
                else:
                    odd.append(name)
    return files, odd


def _check_copy(target: Path, expected: dict, mode: str, chunk_size: int) -> list[Problem] | None:
    """None when there is no copy; else every problem of the copy ([] when it may be served)."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return [Problem(str(target), "error", "not a folder")]
    try:
        files, odd = _walk(target)
    except FileNotFoundError:
        return None  # moved aside while we looked: there is no copy
    except OSError as e:
        return [Problem(str(target), "error", f"cannot be listed: {e.strerror}")]
    problems = [Problem(p, "extra", "not a regular file") for p in sorted(odd)]
    problems += [Problem(p, "extra", "unexpected file not in the manifest") for p in sorted(set(files) - set(expected))]
    problems += [Problem(p, "missing", "missing (deleted)") for p in sorted(set(expected) - set(files))]
    for rel in sorted(set(files) & set(expected)):
        want = expected[rel]
        if isinstance(want, bytes):
            problems += _check_manifest(target / rel, rel, want, mode)
            continue
        # A file someone made writable was probably opened for writing: read it even under
        # `none`, whose size check alone cannot see an edit in place.
        how = "fast" if mode == "none" and files[rel].st_mode & 0o222 else mode
        problems += check_file(target / rel, want, how, chunk_size)
    return problems


def _check_manifest(path: Path, rel: str, want: bytes, mode: str) -> list[Problem]:
    try:
        fd, st = open_regular(path)
    except OSError:
        return [Problem(rel, "missing", "missing or not a regular file")]
    with os.fdopen(fd, "rb") as f:
        if st.st_size != len(want):
            return [Problem(rel, "size", f"size {st.st_size} != expected {len(want)}")]
        if mode != "none" and f.read(len(want) + 1) != want:
            return [Problem(rel, "manifest", "differs from the version's manifest (edited)")]
    return []


# ---------------------------------------------------------------------- building a copy
class _LostRace(Exception):
    pass


def _build(storage, version, target: Path) -> None:
    """Download into a temp folder beside `target`, check, seal, publish with one rename."""
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(f"cannot create cache folder {parent}: {e.strerror}", obj=str(parent)) from e
    tmp = parent / f".{target.name}.tmp.{new_token()}"
    chunk_size = version.manifest.content.chunk_size
    try:
        tmp.mkdir()
        folders = {tmp}
        for entry in version.manifest.all_files():
            out = tmp / entry.path
            for up in reversed(out.relative_to(tmp).parents[:-1]):
                (tmp / up).mkdir(exist_ok=True)
                folders.add(tmp / up)
            key = f"{version.data_key}/{entry.path}"
            # Exclusive, no-follow create: nothing in the temp folder is ours unless we made it.
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
            with os.fdopen(fd, "wb") as fout, storage.open_read(key) as src:
                problems = check_stream(src, entry, "strict", chunk_size, sink=fout.write)
                if problems:
                    detail = "; ".join(str(p) for p in problems)
                    raise IntegrityError(
                        f"{version.uri}: the registry's bytes do not match the manifest: {detail}; "
                        f"run `omrw verify {version.uri} --mode strict`", obj=entry.path, problems=problems)
                fout.flush()
                os.fsync(fout.fileno())
            os.chmod(out, 0o444)
        manifest = tmp / MANIFEST_NAME
        with open(manifest, "xb") as f:
            f.write(cache_manifest_bytes(version))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(manifest, 0o444)
        for d in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            _fsync_dir(d)
            os.chmod(d, 0o555)
        try:
            os.rename(tmp, target)
        except OSError as e:
            if os.path.lexists(target):
                raise _LostRace() from e
            raise
        _fsync_dir(parent)
    except (OmrError, _LostRace):
        raise
    except OSError as e:
        raise StorageError(f"cannot materialise {version.uri} into {parent}: {e}", obj=str(parent)) from e
    finally:
        if tmp.exists():
            _remove(tmp)


def _move_aside(target: Path) -> None:
    """Rename a damaged copy out of the way atomically, then remove it (best effort).

    Another process may already have moved it and published a fresh copy under the same
    name; if what we moved is not the copy we checked, it is put back when the name is
    still free (a fresh copy is never thrown away for another process's finding).
    """
    try:
        checked = os.lstat(target)
    except FileNotFoundError:
        return
    aside = target.parent / f".{target.name}.damaged.{new_token()}"
    try:
        os.rename(target, aside)
    except FileNotFoundError:
        return
    except OSError as e:
        raise StorageError(f"cannot move the damaged cached copy {target} aside: {e.strerror}",
                           obj=str(target)) from e
    moved = os.lstat(aside)
    if (moved.st_ino, moved.st_dev) != (checked.st_ino, checked.st_dev):
        try:
            os.rename(aside, target)
            return
        except OSError:
            pass
    _remove(aside)


def _remove(path: Path) -> None:
    """Remove a folder tree we made read-only (folders need their write bit back first)."""
    for sub, dirs, _files in os.walk(path, followlinks=False):
        for d in [sub, *(os.path.join(sub, x) for x in dirs)]:
            try:
                if not os.path.islink(d):
                    os.chmod(d, 0o755)
            except OSError:
                pass
    shutil.rmtree(path, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; the rename is still atomic
    finally:
        os.close(fd)


__all__ = ["MaterializeResult", "cache_manifest_bytes", "copy_path", "materialize"]
