"""The derived catalog index that `omrw search`, `omrw compare` and `omrw catalog` read.

Where: `<cache>/catalog/<sha256(registry)[:32]>/catalog-v1/<xx>.json`, 256 shards by the first
two hex digits of sha256(TASK/MODEL), `<cache>` being `$OMR_CACHE`, else
`$XDG_CACHE_HOME/omr-workflows` (constants.cache_dir). It lives in the reader's cache, not
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
an entry changed, shard by shard (one new version rewrites one shard); a damaged or foreign
shard is ignored and rebuilt. Local registries are scanned from each task's folder fd with
O_NOFOLLOW at every step (`_fast_heads`); anything unusual there means "re-read this model".
"""

from __future__ import annotations

import hashlib
import json
import gc
import os
import re
import stat
from pathlib import Path
from typing import Any

from .. import audit, layout
from ..bounds import MAX_INPUT_BYTES, MAX_META_BYTES, load_json_bounded
from ..constants import META_NAME, cache_dir
from ..errors import InvalidInputError, NotFoundError, OmrError
from ..events import STATE_FIELDS

FORMAT = "omr-catalog-index/2"
INDEX_NAME = "catalog-v1"
CARD_NAME = "model_card.md"
METRICS_NAME = "metrics.json"
MAX_CARD_BYTES = 256 * 1024
MAX_TEXT_CHARS = 64 * 1024
ALIAS_KINDS = ("register", "adopt", "import", "promote", "stage", "request", "approve", "reject", "sign")


def index_path(url: str) -> Path:
    ident = url
    if "://" not in url:
        ident = os.path.realpath(url)
    h = hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return cache_dir() / "catalog" / h / INDEX_NAME


_HEX64 = re.compile(r"[0-9a-f]{64}")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


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


def _parse_head(data: bytes) -> list | None:
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or set(obj) != {"seq", "sha256"}:
        return None
    seq, sha = obj["seq"], obj["sha256"]
    if type(seq) is not int or not 1 <= seq < 10**10 or not isinstance(sha, str) or not _HEX64.fullmatch(sha):
        return None
    return [seq, sha]


def _at(name: str, dir_fd: int, flags: int) -> int | None:
    try:
        return os.open(name, flags | _NOFOLLOW, dir_fd=dir_fd)
    except OSError:
        return None


def _fast_heads(storage, task: str, models: list[str]) -> dict[str, list | None]:
    """Local registries: every model's head key of one task, walking from the task's `models`
    folder fd with O_NOFOLLOW at each step (a symlink or anything odd gives None: re-read
    through the Registry, which reports it). Other storages: `_head_key` per model."""
    out: dict[str, list | None] = {}
    open_dir = getattr(storage, "_open_dir", None)
    base = open_dir(layout.models_key(task)) if (storage.is_local and open_dir) else None
    if base is None:
        return {m: _head_key(storage, layout.model_key(task, m)) for m in models}
    dflags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        for m in models:
            out[m] = None
            mfd = _at(m, base, dflags)
            if mfd is None:
                continue
            try:
                afd = _at("audit", mfd, dflags)
            finally:
                os.close(mfd)
            if afd is None:
                continue
            try:
                hfd = _at("head.json", afd, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
                if hfd is None:
                    continue
                try:
                    st = os.fstat(hfd)
                    if not stat.S_ISREG(st.st_mode) or st.st_size > 4096:
                        continue
                    key = _parse_head(os.read(hfd, 4097))
                finally:
                    os.close(hfd)
                if key is None:
                    continue
                efd = _at("events", afd, dflags)
                if efd is None:
                    continue
                try:
                    try:
                        os.lstat(f"{key[0] + 1:010d}.json", dir_fd=efd)
                        continue  # an event after the head: lagging head, re-read
                    except FileNotFoundError:
                        pass
                    except OSError:
                        continue
                finally:
                    os.close(efd)
                out[m] = key
            finally:
                os.close(afd)
    finally:
        os.close(base)
    return out


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
    # omrw's own keys are row fields already (search maps meta.task etc. to them): not stored twice
    meta = {k: val for k, val in raw.items() if k not in ("params", "provenance") + OWN_META}
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


KEEP = ("task", "model", "version", "seq", "digest", "stage")
OWN_META = ("task", "model_name", "version", "created_at", "created_by")


def _compact(d: dict) -> dict:
    """Drop empty values (None, False, [], {}, ""): readers default them; the index stays small."""
    return {k: v for k, v in d.items() if k in KEEP or (v is not None and v is not False and v != [] and v != {}
                                                         and v != "")}


def _text(rec: dict) -> str:
    parts = [f"{rec['task']}/{rec['model']}", rec["version"], rec.get("stage") or "", " ".join(rec.get("aliases", [])),
             rec.get("created_by") or ""]
    budget = [MAX_TEXT_CHARS]
    _values_text(rec.get("meta"), parts, budget)
    _values_text(rec.get("params"), parts, budget)
    if rec.get("card"):
        parts.append(rec["card"][:MAX_TEXT_CHARS])
    return "\n".join(parts).lower()


def _timeline(events: list[dict]) -> list[dict]:
    out = []
    for e in events:
        out.append(_compact({
            "seq": e.get("seq"), "kind": e.get("kind"), "version": e.get("version"), "alias": e.get("alias"),
            "from_version": e.get("from_version"), "actor": e.get("actor"), "reason": e.get("reason"),
            "ts_utc": e.get("ts_utc"), "stage_moves": e.get("stage_moves") or {}, "rollback": e.get("rollback", False),
            "signed_by": e.get("signed_by"),
            "request": (e.get("request") or {}).get("seq") if isinstance(e.get("request"), dict) else None,
            "approvals": [a.get("seq") for a in (e.get("approvals") or []) if isinstance(a, dict)],
        }))
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
        view = audit.log_view(events, tail_seq)
        history = [ev.model_dump(exclude=STATE_FIELDS) | {"sha256": h}
                   for ev, h in events]
        if any(e.get("signature") for e in history):
            reg.label_signers(layout.model_key(task, model), history)  # `signed_by`, as `omrw history` shows it
        recs = []
        for name in reg.versions(task, model):
            try:
                v = reg.version(task, model, name, require_anchor=False, log=view)
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
        entry["versions"] = [_compact(r) for r in recs]
        entry["aliases"] = {a: s.version for a, s in (last.aliases.items() if last else [])}
        entry["stages"] = dict(last.stages) if last else {}
        entry["timeline"] = _timeline(history)
    except OmrError as e:
        entry["error"] = str(e).replace("\n", " ")
        entry["key"] = None
    return entry


SHARDS = 256


def _shard(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:2]


def _load(folder: Path, url: str, only: set[str] | None = None) -> dict[str, dict]:
    """{shard: {TASK/MODEL: entry}} (only the shards in `only`, when given); a damaged, foreign or
    missing shard is empty (rebuilt)."""
    out: dict[str, dict] = {}
    try:
        names = os.listdir(folder)
    except OSError:
        return out
    for n in names:
        if not re.fullmatch(r"[0-9a-f]{2}\.json", n) or (only is not None and n[:2] not in only):
            continue
        try:
            with open(folder / n, "rb") as f:
                data = json.load(f)
        except (OSError, ValueError, RecursionError):
            continue
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("registry") != url:
            continue
        models = data.get("models")
        if isinstance(models, dict):
            out[n[:2]] = models
    return out


def _save(path: Path, url: str, models: dict) -> None:
    from ..lockfile import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps({"format": FORMAT, "registry": url, "models": models}, ensure_ascii=False,
                      separators=(",", ":")).encode()
    write_atomic(path, data, fsync=False)


def scan(reg, task: str | None = None) -> list[tuple[str, str, str, list | None]]:
    """(TASK/MODEL, task, model, head key or None) of every model, in name order: one head read
    and one probe per model, nothing else."""
    out = []
    for t in sorted(reg.tasks()):
        if task is not None and t != task:
            continue
        models = sorted(reg.models(t))
        keys = _fast_heads(reg.storage, t, models)
        out.extend((f"{t}/{m}", t, m, keys.get(m)) for m in models)
    return out


def load_models(reg, task: str | None = None, stats: dict | None = None, names: set[str] | None = None,
                scanned: list | None = None) -> list[dict]:
    """Model entries (sorted by TASK/MODEL) from the index, refreshed: every model, or only those in
    `names` (then only their shards are read). `scanned`: a `scan()` result to reuse."""
    enabled = gc.isenabled()
    gc.disable()  # millions of small objects: the collector would run hundreds of times for nothing
    try:
        return _load_models(reg, task, stats, names, scanned)
    finally:
        if enabled:
            gc.enable()


def _load_models(reg, task, stats, names, scanned) -> list[dict]:
    folder = index_path(reg.url)
    scanned = scan(reg, task) if scanned is None else scanned
    present = {name for name, *_ in scanned}
    wanted = [item for item in scanned if names is None or item[0] in names]
    shards = _load(folder, reg.url, None if names is None else {_shard(n) for n, *_ in wanted})
    cached = {k: v for sh in shards.values() for k, v in sh.items()}
    fresh: dict = {}
    dirty: set[str] = set()
    stale: list[tuple] = []
    for name, t, m, key in wanted:
        old = cached.get(name)
        if (key is not None and isinstance(old, dict) and old.get("key") == key and not old.get("error")
                and old.get("task") == t and old.get("model") == m):
            fresh[name] = old
            continue
        stale.append((name, t, m, key))
    # Serial on purpose: threads were 2x slower here (the work is Python, not waiting on I/O).
    for name, t, m, key in stale:
        fresh[name] = model_entry(reg, t, m, key)
        dirty.add(_shard(name))
    gone = {k for k in cached if k not in present and (task is None or k.startswith(f"{task}/"))}
    dirty.update(_shard(k) for k in gone)
    saved = 0
    for sh in sorted(dirty):
        content = {k: v for k, v in shards.get(sh, {}).items() if k not in gone}
        content.update({k: v for k, v in fresh.items() if _shard(k) == sh})
        try:
            _save(folder / f"{sh}.json", reg.url, content)
            saved += 1
        except OSError:
            pass  # a read-only cache: work from memory
    if stats is not None:
        stats.update(models=len(fresh), reread=len(stale), index=str(folder), saved=saved)
    return [fresh[k] for k in sorted(fresh)]


def version_rows(models: list[dict]) -> list[dict]:
    """One row per version, models in name order, versions in registration order."""
    return [r for m in models for r in m["versions"]]
