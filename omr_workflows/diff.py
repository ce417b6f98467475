"""What changed between two versions: files, metadata, params, provenance, metrics.

`diff_versions` is a pure function of two file listings and two metas (and metrics, when
both versions ship `metrics.json`); `load_side` does the reading at the edge. File
listings compare the artifact files only: `model_meta.json` and `sha256sums.txt` always
differ between versions (time, creator) and are compared field by field instead.
Nested metadata is flattened to dotted keys (`provenance.git.commit`); lists compare as
whole values.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from .constants import META_NAME, SHA256SUMS_NAME

METRICS_NAME = "metrics.json"


class FileInfo(BaseModel):
    size: int | None = Field(default=None, description="None for omnibioai-written versions (not recorded)")
    sha256: str


class Side(BaseModel):
    """One version as diff sees it."""

    ref: str
    uri: str
    version: str
    digest: str
    files: dict[str, FileInfo]
    meta: dict[str, Any] = Field(default_factory=dict)
    metrics: Any = None


class FileChange(BaseModel):
    path: str
    change: str = Field(description="added | removed | changed")
    size_a: int | None = None
    size_b: int | None = None


class FieldChange(BaseModel):
    key: str
    change: str = Field(description="added | removed | changed")
    a: Any = None
    b: Any = None
    delta: float | None = Field(default=None, description="b - a for numbers (metrics)")


class Diff(BaseModel):
    a: str
    b: str
    digest_a: str
    digest_b: str
    same_content: bool
    files: list[FileChange]
    unchanged_files: int
    metadata: list[FieldChange]
    params: list[FieldChange]
    provenance: list[FieldChange]
    metrics: list[FieldChange] | None = Field(default=None, description="None unless both have metrics.json")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts to {dotted.key: leaf}; lists and scalars are leaves; {} is a leaf."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k in sorted(value, key=str):
            out.update(flatten(value[k], f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value} if prefix else {}


def compare(a: dict[str, Any], b: dict[str, Any], numeric_delta: bool = False) -> list[FieldChange]:
    fa, fb = flatten(a or {}), flatten(b or {})
    out = []
    for key in sorted(set(fa) | set(fb)):
        if key not in fb:
            out.append(FieldChange(key=key, change="removed", a=fa[key]))
        elif key not in fa:
            out.append(FieldChange(key=key, change="added", b=fb[key]))
        elif fa[key] != fb[key] or type(fa[key]) is not type(fb[key]):
            delta = None
            if numeric_delta and _number(fa[key]) and _number(fb[key]):
                delta = fb[key] - fa[key]
            out.append(FieldChange(key=key, change="changed", a=fa[key], b=fb[key], delta=delta))
    return out


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def diff_versions(a: Side, b: Side) -> Diff:
    """The differences between two versions (pure)."""
    files: list[FileChange] = []
    unchanged = 0
    for path in sorted(set(a.files) | set(b.files)):
        fa, fb = a.files.get(path), b.files.get(path)
        if fb is None:
            files.append(FileChange(path=path, change="removed", size_a=fa.size))
        elif fa is None:
            files.append(FileChange(path=path, change="added", size_b=fb.size))
        elif fa.sha256 != fb.sha256 or fa.size != fb.size:
            files.append(FileChange(path=path, change="changed", size_a=fa.size, size_b=fb.size))
        else:
            unchanged += 1
    meta_a = {k: v for k, v in a.meta.items() if k not in ("params", "provenance")}
    meta_b = {k: v for k, v in b.meta.items() if k not in ("params", "provenance")}
    metrics = None
    if a.metrics is not None and b.metrics is not None:
        ma = a.metrics if isinstance(a.metrics, dict) else {"value": a.metrics}
        mb = b.metrics if isinstance(b.metrics, dict) else {"value": b.metrics}
        metrics = compare(ma, mb, numeric_delta=True)
    return Diff(
        a=a.uri, b=b.uri, digest_a=a.digest, digest_b=b.digest, same_content=a.digest == b.digest,
        files=files, unchanged_files=unchanged, metadata=compare(meta_a, meta_b),
        params=compare(a.meta.get("params") or {}, b.meta.get("params") or {}),
        provenance=compare(a.meta.get("provenance") or {}, b.meta.get("provenance") or {}),
        metrics=metrics,
    )


def load_side(reg, ref: str) -> Side:
    """Read one version's listing, meta and metrics (the I/O edge). Raises what resolve raises."""
    from .errors import NotFoundError
    res = reg.resolve(ref, verify="none", materialize=False)
    v = reg.version(res.task, res.model, res.version, require_anchor=False)
    base = v.data_key
    if v.manifest is not None:
        files = {e.path: FileInfo(size=e.size, sha256=e.sha256) for e in v.manifest.content.files}
    else:
        files = {p: FileInfo(sha256=h) for p, h in (v.legacy_sums or {}).items() if p not in (META_NAME, SHA256SUMS_NAME)}

    def read_json(name: str) -> Any:
        from .bounds import MAX_META_BYTES, load_json_bounded
        from .errors import OmrError

        try:
            return load_json_bounded(reg.storage.read_bytes(f"{base}/{name}"), name, max_bytes=MAX_META_BYTES)
        except NotFoundError:
            return None
        except OmrError:
            return {"<unreadable>": f"{name} is not valid JSON (or not a regular file)"}

    meta = read_json(META_NAME) if (v.manifest is None or v.manifest.entry(META_NAME)) else None
    metrics = read_json(METRICS_NAME) if METRICS_NAME in files else None
    return Side(ref=res.ref, uri=res.uri, version=res.version, digest=res.digest, files=files,
                meta=meta if isinstance(meta, dict) else {}, metrics=metrics)


def _fmt(v: Any) -> str:
    text = json.dumps(v, sort_keys=True, default=str) if not isinstance(v, str) else v
    return text if len(text) <= 80 else text[:77] + "..."


def _size(n: int | None) -> str:
    return "?" if n is None else f"{n} B"


def render(d: Diff) -> str:
    """Human text for `omrw diff`."""
    lines = [f"--- {d.a}  {d.digest_a}", f"+++ {d.b}  {d.digest_b}"]
    if d.same_content:
        lines.append("content: identical package digest")
    counts = {c: sum(f.change == c for f in d.files) for c in ("added", "removed", "changed")}
    lines.append(f"files: {counts['added']} added, {counts['removed']} removed, {counts['changed']} changed, "
                 f"{d.unchanged_files} unchanged")
    mark = {"added": "+", "removed": "-", "changed": "~"}
    for f in d.files:
        if f.change == "added":
            lines.append(f"  + {f.path} ({_size(f.size_b)})")
        elif f.change == "removed":
            lines.append(f"  - {f.path} ({_size(f.size_a)})")
        else:
            lines.append(f"  ~ {f.path} ({_size(f.size_a)} -> {_size(f.size_b)})")
    sections = [("metadata", d.metadata), ("params", d.params), ("provenance", d.provenance)]
    if d.metrics is not None:
        sections.append(("metrics", d.metrics))
    for title, changes in sections:
        lines.append(f"{title}: {len(changes)} change(s)" if changes else f"{title}: no changes")
        for c in changes:
            if c.change == "added":
                lines.append(f"  + {c.key}: {_fmt(c.b)}")
            elif c.change == "removed":
                lines.append(f"  - {c.key}: {_fmt(c.a)}")
            else:
                delta = f" ({c.delta:+g})" if c.delta is not None else ""
                lines.append(f"  {mark['changed']} {c.key}: {_fmt(c.a)} -> {_fmt(c.b)}{delta}")
    if d.metrics is None:
        lines.append("metrics: not compared (metrics.json missing in one or both versions)")
    return "\n".join(lines)
