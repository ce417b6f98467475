"""The artifacts folder a user registers: scanning it and building its metadata.

Everything here is untrusted input from the user's side of `omrw register`: the folder walk
refuses what could escape it, a shipped `model_meta.json` / `sha256sums.txt` is parsed with
bounds, and the merged metadata is validated against `meta.ModelMeta`.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .events import now_utc_iso
from .constants import MANIFEST_NAME, META_NAME, SHA256SUMS_NAME
from .bounds import MAX_DEPTH, MAX_META_BYTES, check_json_value, load_json_bounded
from .errors import IntegrityError, InvalidInputError, validation_detail
from .manifest import FileEntry, parse_sha256sums
from .meta import ModelMeta, check_fields
from .names import check_relpath


MAX_SUMS_BYTES = 64 << 20
"""Largest shipped sha256sums.txt read (64 MiB: some 600,000 files)."""


@dataclass
class Source:
    rel: str
    path: Path
    size: int


def _link_target(full: Path, rel: str, real_root: Path) -> os.stat_result:
    """The stat of what the symlink `full` points to, if that is a regular file inside the folder.

    Loops (`a -> a`, `a -> b -> a`) and dangling links are refused naming the artifact: a bad
    folder is bad input (exit 2), never an OSError from deep inside the copy.
    """
    try:
        target = Path(os.path.realpath(full, strict=True))
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InvalidInputError(f"artifact {rel!r} is a symlink loop ({os.readlink(full)})", obj=rel) from None
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise InvalidInputError(f"artifact {rel!r} is a dangling symlink (its target {os.readlink(full)!r} "
                                    f"does not exist)", obj=rel) from None
        raise InvalidInputError(f"artifact {rel!r} cannot be followed: {e.strerror}", obj=rel) from None
    except RuntimeError:  # pathlib-style loop report on some Pythons
        raise InvalidInputError(f"artifact {rel!r} is a symlink loop", obj=rel) from None
    if not target.is_relative_to(real_root):
        raise InvalidInputError(f"artifact {rel!r} is a symlink pointing outside the artifacts folder "
                                f"({os.readlink(full)})", obj=rel)
    st = target.stat()
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInputError(f"artifact {rel!r} is a symlink to something that is not a regular file", obj=rel)
    return st


def _read_small(full: Path, rel: str, max_bytes: int) -> bytes:
    """A shipped sidecar (already known to be a regular file), refusing more than `max_bytes`."""
    try:
        with open(full, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise InvalidInputError(f"artifact {rel!r} cannot be read: {e.strerror}", obj=rel) from None
    if len(data) > max_bytes:
        raise InvalidInputError(f"artifact {rel!r}: larger than the {max_bytes}-byte limit", obj=rel)
    return data


def scan_artifacts(root: Path) -> tuple[list[Source], dict | None, str | None]:
    """Every regular file under `root`, refusing anything that could escape it.

    Returns (files to copy, parsed model_meta.json if shipped, sha256sums.txt text if
    shipped). Symlinks are followed only when they stay inside `root` and end at a regular
    file. A shipped model_meta.json is parsed with `bounds.load_json_bounded` and its known
    fields type-checked (`meta.check_fields`). Raises InvalidInputError naming the artifact.
    """
    if not root.exists():
        raise InvalidInputError(f"artifacts folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise InvalidInputError(f"artifacts {str(root)!r} is not a folder")
    real_root = root.resolve()
    out: list[Source] = []
    shipped_meta = shipped_sums = None

    def walk_error(e: OSError) -> None:
        where = Path(e.filename).relative_to(root).as_posix() if e.filename else str(root)
        raise InvalidInputError(f"artifact folder {where!r} cannot be read: {e.strerror}", obj=where)

    for sub, dirs, files in os.walk(root, followlinks=False, onerror=walk_error):
        subp = Path(sub)
        for d in list(dirs):
            if (subp / d).is_symlink():
                raise InvalidInputError(f"artifact {(subp / d).relative_to(root).as_posix()!r} is a symlinked "
                                        f"folder; copy it in instead")
        dirs.sort()
        for name in sorted(files):
            full = subp / name
            rel = full.relative_to(root).as_posix()
            check_relpath(rel, "artifact path")
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                st = _link_target(full, rel, real_root)
            elif not stat.S_ISREG(st.st_mode):
                raise InvalidInputError(f"artifact {rel!r} is not a regular file")
            if rel == MANIFEST_NAME:
                raise InvalidInputError(f"artifact {rel!r} is a reserved name (omrw writes it)")
            if rel == META_NAME:
                what = f"artifact {META_NAME}"
                shipped_meta = load_json_bounded(_read_small(full, rel, MAX_META_BYTES), what,
                                                 max_bytes=MAX_META_BYTES)
                if not isinstance(shipped_meta, dict):
                    raise InvalidInputError(f"{what} must hold a JSON object")
                check_fields(shipped_meta, what)
                continue
            if rel == SHA256SUMS_NAME:
                shipped_sums = _read_small(full, rel, MAX_SUMS_BYTES).decode("utf-8", errors="replace")
                parse_sha256sums(shipped_sums, f"artifacts/{SHA256SUMS_NAME}")
                continue
            out.append(Source(rel, full, st.st_size))
    return out, shipped_meta, shipped_sums


def check_shipped_sums(text: str, entries: list[FileEntry]) -> None:
    """A sha256sums.txt shipped with the artifacts must match them (caught before publish)."""
    sums = parse_sha256sums(text, f"artifacts/{SHA256SUMS_NAME}")
    have = {e.path: e.sha256 for e in entries}
    bad = [p for p, h in sums.items() if p != META_NAME and p in have and have[p] != h]
    missing = [p for p in sums if p not in have and p not in (META_NAME, SHA256SUMS_NAME)]
    if bad or missing:
        detail = "; ".join([f"{p}: sha256 mismatch" for p in bad] + [f"{p}: listed but missing" for p in missing])
        raise IntegrityError(f"artifacts do not match their {SHA256SUMS_NAME}: {detail}")


def build_meta(task, model, version, shipped, metadata, params, actor, provenance) -> ModelMeta:
    """The model_meta.json of a new version: shipped file < --metadata < omrw's own fields.

    Raises InvalidInputError naming the input whose field has the wrong type, or when the
    result would exceed the bounds every reader applies (bounds.MAX_DEPTH, MAX_META_BYTES).
    """
    data: dict[str, Any] = {}
    if shipped:
        data.update(shipped)
    if metadata:
        if not isinstance(metadata, dict):
            raise InvalidInputError("metadata must be a JSON object")
        check_fields(metadata, "--metadata")
        data.update(metadata)
    merged_params = dict(data.get("params") or {})
    merged_params.update(params or {})
    data.update(task=task, model_name=model, version=version, created_at=now_utc_iso(),
                created_by=actor, params=merged_params)
    if provenance is not None:
        data["provenance"] = provenance
    check_json_value(data, META_NAME, max_depth=MAX_DEPTH, max_bytes=MAX_META_BYTES)
    try:
        return ModelMeta.model_validate(data)
    except ValueError as e:
        raise InvalidInputError(f"invalid metadata: {validation_detail(e)}") from None
