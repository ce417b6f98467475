"""The derived catalog index that `omrw search`, `omrw compare` and `omrw catalog` read.

Where: `<cache>/catalog/<sha256(registry)[:32]>/catalog-v1.json`, `<cache>` being `$OMR_CACHE`,
else `$XDG_CACHE_HOME/omr-workflows` (constants.cache_dir). It lives in the reader's cache, not
in the registry, so a reader never writes the registry (and needs no write access to it).

What: one entry per model, keyed by the model's `audit/head.json` (`seq`, `sha256`). Each run
lists the registry's tasks and models, reads every head and probes event `seq + 1` (a lagging
head): a model whose head and probe agree with its entry is not re-read; any other model (new,
changed head, lagging head, no head, or an entry that recorded an error) is re-read through
`Registry` (the log's tail, versions, manifests, model_meta.json, metrics.json, model_card.md)
and its entry replaced. Models no longer listed are dropped. The index is therefore never
trusted over the log: it is only a memo of what the log said at a given head. What it cannot
see without reading everything: bytes of a version removed by hand behind the log's back
(`omrw audit` names those). The file is written atomically (temp + os.replace) and only when
an entry changed; a damaged or foreign index is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .. import audit, layout, transitions
from ..bounds import MAX_INPUT_BYTES, MAX_META_BYTES, load_json_bounded
from ..constants import META_NAME, cache_dir
from ..errors import InvalidInputError, NotFoundError, OmrError

FORMAT = "omr-catalog-index/1"
INDEX_NAME = "catalog-v1.json"
CARD_NAME = "model_card.md"
METRICS_NAME = "metrics.json"
MAX_CARD_BYTES = 256 * 1024
MAX_TEXT_CHARS = 64 * 1024
ALIAS_KINDS = ("register", "adopt", "promote", "stage", "request", "approve", "reject", "sign")


def index_path(url: str) -> Path:
    ident = url
    if "://" not in url:
        ident = os.path.realpath(url)
    h = hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return cache_dir() / "catalog" / h / INDEX_NAME


def _head_key(storage, mkey: str) -> list | None:
    """[seq, sha256] of the head when the head names the tail (no event after it), else None."""
    try:
        head = audit.read_head(storage, mkey)
    except OmrError:
        return None
    if head is None:
        return None
    try:
        if storage.exists(layout.event_key(mkey, head.seq + 1)):
            return None
    except (OmrError, ValueError):
        return None
    return [head.seq, head.sha256]


def _flat(obj: Any, prefix: str = "", out: dict | None = None, depth: int = 0) -> dict:
    out = {} if out is None else out
    if isinstance(obj, dict) and depth < 8:
        for k, v in obj.items():
            _flat(v, f"{prefix}.{k}" if prefix else str(k), out, depth + 1)
    elif prefix:
        out[prefix] = obj
    return out


def _scalars(obj: dict) -> dict:
    return {k: v for k, v in _flat(obj).items() if v is None or isinstance(v, (str, int, float, bool))}


def _values_text(obj: Any, out: list, budget: list) -> None:
    if budget[0] <= 0:
        return
    if isinstance(obj, dict):
        for v in obj.values():
            _values_text(v, out, budget)
    elif isinstance(obj, list):
        for v in obj:
            _values_text(v, out, budget)
    elif obj is not None:
        s = str(obj)
        budget[0] -= len(s)
        out.append(s)


def _read_small(reg, key: str, size: int | None, limit: int) -> bytes | None:
    if size is not None and size > limit:
        return None
    try:
        data = reg.storage.read_bytes(key)
    except (NotFoundError, OmrError):
        return None
    return data if len(data) <= limit else None


def version_record(reg, task: str, model: str, v, last) -> dict:
    """Everything search, compare and the catalog show of one version (a `versions.Version`)."""
    entries = {e.path: e for e in v.manifest.all_files()} if v.manifest is not None else {}
    meta_raw = _read_small(reg, layout.meta_key(v.data_key), entries[META_NAME].size if META_NAME in entries else None,
                           MAX_META_BYTES)
    raw: Any = None
    if meta_raw is not None:
        try:
            raw = load_json_bounded(meta_raw, f"{v.ref}/{META_NAME}", max_bytes=MAX_META_BYTES)
        except InvalidInputError:
            raw = None
    raw = raw if isinstance(raw, dict) else {}
    meta = {k: val for k, val in raw.items() if k not in ("params", "provenance")}
    nested = raw.get("metadata")
    if isinstance(nested, dict):
        for k, val in nested.items():
            meta.setdefault(k, val)
    params = raw.get("params") if isinstance(raw.get("params"), dict) else {}
    metrics: dict = {}
    for src in (raw.get("metrics"), nested.get("metrics") if isinstance(nested, dict) else None):
        if isinstance(src, dict):
            for k, val in _scalars(src).items():
                metrics.setdefault(k, val)
    names = set(entries) if entries else set((v.legacy_sums or {}))
    if METRICS_NAME in names:
        data = _read_small(reg, f"{v.data_key}/{METRICS_NAME}",
                           entries[METRICS_NAME].size if METRICS_NAME in entries else None, MAX_INPUT_BYTES)
        if data is not None:
            try:
                shipped = load_json_bounded(data, f"{v.ref}/{METRICS_NAME}")
            except InvalidInputError:
                shipped = None
            if isinstance(shipped, dict):
                for k, val in _scalars(shipped).items():
                    metrics.setdefault(k, val)
    card = None
    if CARD_NAME in names:
        data = _read_small(reg, f"{v.data_key}/{CARD_NAME}", entries[CARD_NAME].size if CARD_NAME in entries else None,
                           MAX_CARD_BYTES)
        if data is not None:
            card = data.decode("utf-8", "replace")
    files = [e for e in (v.manifest.content.files if v.manifest is not None else [])]
    size = sum(e.size for e in files) if v.manifest is not None else None
    first_file = files[0].path if files else next(iter(sorted(names - {"sha256sums.txt", META_NAME})), None)
    if v.manifest is not None:  # the snippet's #FILE: the largest file that is not documentation
        weights = [e for e in files if e.path not in (CARD_NAME, METRICS_NAME)
                   and not e.path.lower().endswith((".md", ".txt", ".json", ".yaml", ".yml"))] or files
        big = max(weights, key=lambda e: e.size, default=None)
        first_file = big.path if big else first_file
    desc = meta.get("description") if isinstance(meta.get("description"), str) else None
    aliases = sorted(a for a, s in (last.aliases.items() if last else []) if s.version == v.version)
    stage = last.stages.get(v.version, "development") if last else "development"
    rec = {
        "task": task, "model": model, "version": v.version, "seq": v.anchor.seq if v.anchor else 0,
        "digest": v.digest, "size": size, "files": len(names), "first_file": first_file,
        "created_at": (v.manifest.created_at if v.manifest is not None else meta.get("created_at")),
        "created_by": raw.get("created_by") if isinstance(raw.get("created_by"), str) else None,
        "stage": stage, "aliases": aliases, "description": desc, "legacy": v.legacy,
        "meta": meta, "params": params, "metrics": metrics, "card": card,
        "signed_by": [], "approved_by": [],
    }
    return rec


def _text(rec: dict) -> str:
    parts = [f"{rec['task']}/{rec['model']}", rec["version"], rec.get("stage") or "", " ".join(rec.get("aliases", []))]
    budget = [MAX_TEXT_CHARS]
    _values_text(rec.get("meta"), parts, budget)
    _values_text(rec.get("params"), parts, budget)
    if rec.get("card"):
        parts.append(rec["card"][:MAX_TEXT_CHARS])
    return "\n".join(parts).lower()


def _timeline(events: list[dict]) -> list[dict]:
    out = []
    for e in events:
        out.append({
            "seq": e.get("seq"), "kind": e.get("kind"), "version": e.get("version"), "alias": e.get("alias"),
            "from_version": e.get("from_version"), "actor": e.get("actor"), "reason": e.get("reason"),
            "ts_utc": e.get("ts_utc"), "stage_moves": e.get("stage_moves") or {}, "rollback": e.get("rollback", False),
            "signed_by": e.get("signed_by"),
            "request": (e.get("request") or {}).get("seq") if isinstance(e.get("request"), dict) else None,
            "approvals": [a.get("seq") for a in (e.get("approvals") or []) if isinstance(a, dict)],
        })
    return out


def model_entry(reg, task: str, model: str, key: list | None) -> dict:
    """Read one model through the Registry (the log is the truth)."""
    entry: dict = {"task": task, "model": model, "key": key, "versions": [], "aliases": {}, "stages": {},
                   "timeline": [], "error": None}
    try:
        events, tail_seq = reg.log(task, model)
        last = events[-1][0] if events else None
        if last is not None and last.seq != tail_seq:
            last = reg.state(task, model)
        anchors = transitions.anchors_of(events)
        history = [ev.model_dump(exclude={"aliases", "stages", "digests", "requests"}) | {"sha256": h}
                   for ev, h in events]
        if any(e.get("signature") for e in history) and hasattr(reg, "_label_signers"):
            reg._label_signers(layout.model_key(task, model), history)  # `signed_by`, as `omrw history` shows it
        recs = []
        for name in reg.versions(task, model):
            try:
                v = reg.version(task, model, name, require_anchor=False, tail_seq=tail_seq, anchors=anchors)
            except OmrError:
                continue
            recs.append(version_record(reg, task, model, v, last))
        recs.sort(key=lambda r: (r["seq"] or 10**12, r["version"]))
        by_version = {r["version"]: r for r in recs}
        for e in history:
            r = by_version.get(e.get("version"))
            if r is None:
                continue
            if e.get("signed_by") and e["signed_by"] not in r["signed_by"]:
                r["signed_by"].append(e["signed_by"])
            if e.get("kind") == "approve" and e.get("actor") and e["actor"] not in r["approved_by"]:
                r["approved_by"].append(e["actor"])
        for r in recs:
            r["text"] = _text(r)
        entry["versions"] = recs
        entry["aliases"] = {a: s.version for a, s in (last.aliases.items() if last else [])}
        entry["stages"] = dict(last.stages) if last else {}
        entry["timeline"] = _timeline(history)
    except OmrError as e:
        entry["error"] = str(e).replace("\n", " ")
        entry["key"] = None
    return entry


def _load(path: Path, url: str) -> dict:
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("registry") != url:
        return {}
    models = data.get("models")
    return models if isinstance(models, dict) else {}


def _save(path: Path, url: str, models: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"format": FORMAT, "registry": url, "models": models}, f, ensure_ascii=False,
                      separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_models(reg, task: str | None = None, stats: dict | None = None) -> list[dict]:
    """Every model entry of the registry (sorted by TASK/MODEL), from the index, refreshed."""
    path = index_path(reg.url)
    cached = _load(path, reg.url)
    fresh: dict = {}
    changed = False
    reread = 0
    for t in sorted(reg.tasks()):
        if task is not None and t != task:
            continue
        for m in sorted(reg.models(t)):
            name = f"{t}/{m}"
            key = _head_key(reg.storage, layout.model_key(t, m))
            old = cached.get(name)
            if (key is not None and isinstance(old, dict) and old.get("key") == key and not old.get("error")
                    and old.get("task") == t and old.get("model") == m):
                fresh[name] = old
                continue
            fresh[name] = model_entry(reg, t, m, key)
            reread += 1
            changed = True
    if task is not None:
        merged = {k: v for k, v in cached.items() if not k.startswith(f"{task}/")}
        merged.update(fresh)
        changed = changed or any(k.startswith(f"{task}/") and k not in fresh for k in cached)
        to_save = merged
    else:
        changed = changed or set(cached) != set(fresh)
        to_save = fresh
    if changed:
        try:
            _save(path, reg.url, to_save)
        except OSError:
            pass  # a read-only cache: work from memory
    if stats is not None:
        stats.update(models=len(fresh), reread=reread, index=str(path), saved=changed)
    return [fresh[k] for k in sorted(fresh)]


def version_rows(models: list[dict]) -> list[dict]:
    """One row per version, models in name order, versions in registration order."""
    return [r for m in models for r in m["versions"]]
