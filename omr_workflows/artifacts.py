"""The artifacts folder a user registers: scanning it and building its metadata.

Everything here is untrusted input from the user's side of `omrw register`: the folder walk
refuses what could escape it, a shipped `model_meta.json` / `sha256sums.txt` is parsed with
bounds, and the merged metadata is validated against `meta.ModelMeta`.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import audit
from .constants import MANIFEST_NAME, META_NAME, SHA256SUMS_NAME
from .errors import IntegrityError, InvalidInputError
from .manifest import FileEntry, parse_sha256sums
from .meta import ModelMeta
from .names import check_relpath


@dataclass
class Source:
    rel: str
    path: Path
    size: int


def scan_artifacts(root: Path) -> tuple[list[Source], dict | None, str | None]:
    """Every regular file under `root`, refusing anything that could escape it.

    Returns (files to copy, parsed model_meta.json if shipped, sha256sums.txt text if
    shipped). Symlinks are followed only when they stay inside `root`.
    """
    if not root.exists():
        raise InvalidInputError(f"artifacts folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise InvalidInputError(f"artifacts {str(root)!r} is not a folder")
    real_root = root.resolve()
    out: list[Source] = []
    shipped_meta = shipped_sums = None
    for sub, dirs, files in os.walk(root, followlinks=False):
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
                target = full.resolve()
                if not target.is_relative_to(real_root) or not target.is_file():
                    raise InvalidInputError(f"artifact {rel!r} is a symlink pointing outside the artifacts folder "
                                            f"({os.readlink(full)})")
                st = target.stat()
            elif not stat.S_ISREG(st.st_mode):
                raise InvalidInputError(f"artifact {rel!r} is not a regular file")
            if rel == MANIFEST_NAME:
                raise InvalidInputError(f"artifact {rel!r} is a reserved name (omrw writes it)")
            if rel == META_NAME:
                try:
                    shipped_meta = json.loads(full.read_text())
                except (ValueError, UnicodeDecodeError) as e:
                    raise InvalidInputError(f"artifact {META_NAME} is not valid JSON: {e}") from None
                if not isinstance(shipped_meta, dict):
                    raise InvalidInputError(f"artifact {META_NAME} must hold a JSON object")
                continue
            if rel == SHA256SUMS_NAME:
                shipped_sums = full.read_text(errors="replace")
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
    data: dict[str, Any] = {}
    if shipped:
        data.update(shipped)
    if metadata:
        if not isinstance(metadata, dict):
            raise InvalidInputError("metadata must be a JSON object")
        data.update(metadata)
    merged_params = dict(data.get("params") or {})
    merged_params.update(params or {})
    data.update(task=task, model_name=model, version=version, created_at=audit.now_utc_iso(),
                created_by=actor, params=merged_params)
    if provenance is not None:
        data["provenance"] = provenance
    try:
        return ModelMeta.model_validate(data)
    except Exception as e:
        raise InvalidInputError(f"invalid metadata: {str(e).splitlines()[0]}") from None
