"""Search and catalog at scale: 10,000 models x 10 versions (target: each under 5 s, warm index).

Run by hand: `python benchmarks/bench_catalog.py [--models 10000] [--versions 10] [--dir DIR]`.
The registry is written directly (events, head, anchors, manifests, model_meta.json,
metrics.json) with the project's own pydantic models and layout functions, which is what
`omrw register` writes minus the copying and hashing of artifacts. Prints a table:

* cold index: first read of every model through `Registry` (done once per model and head);
* warm search / catalog: the same command on an unchanged registry (each model's head is read
  and checked, nothing else), then after one new register (one model re-read);
* `omrw search` / `omrw catalog` as new processes, as a user runs them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omr_workflows import layout, transitions
from omr_workflows.events import Event, Head
from omr_workflows.manifest import Content, FileEntry, Manifest

TARGET_S = 5.0


def _write(root: Path, key: str, data: bytes) -> None:
    p = root / key
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)


def _entry(path: str, data: bytes) -> FileEntry:
    return FileEntry(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest(), xxh3="0" * 32)


def build(root: Path, n_models: int, n_versions: int) -> None:
    frameworks = ("pytorch", "sklearn", "tensorflow", "jax")
    n_tasks = max(1, n_models // 100)
    for i in range(n_models):
        task, model = f"task{i % n_tasks:03d}", f"model{i:05d}"
        mkey = layout.model_key(task, model)
        last, last_sha = None, ""
        for j in range(1, n_versions + 1):
            version = f"v{j}"
            vkey = layout.version_key(task, model, version)
            weights = f"{model}-{version}".encode() * 4
            metrics = json.dumps({"auc": round(0.5 + (i * 7 + j * 13) % 50 / 100, 3), "f1": j / 20}).encode()
            meta = json.dumps({"task": task, "model_name": model, "version": version,
                               "created_at": f"2026-01-{1 + j % 28:02d}T00:00:00+00:00", "created_by": "bench@host",
                               "framework": frameworks[i % 4], "tags": ["bench", f"group{i % 10}"],
                               "description": f"synthetic model {i} version {j}",
                               "params": {"lr": 0.001 * j, "epochs": 10 * j}}, indent=1).encode()
            content = Content(files=[_entry("model.pt", weights), _entry("metrics.json", metrics)])
            man = Manifest(task=task, model=model, version=version, created_at=f"2026-01-{1 + j % 28:02d}T00:00:00+00:00",
                           content=content, sidecars=[_entry("model_meta.json", meta)])
            man_bytes = man.to_bytes()
            _write(root, f"{vkey}/model.pt", weights)
            _write(root, f"{vkey}/metrics.json", metrics)
            _write(root, f"{vkey}/model_meta.json", meta)
            _write(root, layout.manifest_key(vkey), man_bytes)
            fields = transitions.register_fields(
                last, task=task, model=model, version=version, digest=man.digest,
                meta_sha256=hashlib.sha256(meta).hexdigest(), manifest_sha256=hashlib.sha256(man_bytes).hexdigest(),
                set_latest=True, actor="bench@host", reason="bench", ts=f"2026-01-{1 + j % 28:02d}T00:00:00+00:00")
            ev = Event(seq=(last.seq + 1) if last else 1, prev=last_sha, **fields)
            data = ev.to_bytes()
            _write(root, layout.event_key(mkey, ev.seq), data)
            last, last_sha = ev, hashlib.sha256(data).hexdigest()
        _write(root, layout.head_key(mkey), Head(seq=last.seq, sha256=last_sha).model_dump_json().encode())


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=int, default=10000)
    ap.add_argument("--versions", type=int, default=10)
    ap.add_argument("--dir", help="work folder (default: a temp folder, removed afterwards)")
    args = ap.parse_args()
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="omr-bench-catalog-"))
    root, cache, site = work / "registry", work / "cache", work / "site"
    os.environ["OMR_CACHE"] = str(cache)
    from omr_workflows.catalog import build_catalog, load_models, version_rows
    from omr_workflows.registry import Registry
    from omr_workflows.search import parse_where, search_rows

    rows_out = []
    try:
        if not (root / "tasks").exists():
            t, _ = _timed(lambda: build(root, args.models, args.versions))
            print(f"built {args.models} x {args.versions} synthetic registry in {t:.1f} s", file=sys.stderr)
        reg = Registry(str(root))
        where = [parse_where("metrics.auc>=0.9"), parse_where("framework=pytorch")]

        def search():
            return search_rows(version_rows(load_models(reg)), query="synthetic", where=where, sort="metrics.auc",
                               desc=True, limit=20)

        def catalog():
            return build_catalog(reg, site)

        st0: dict = {}
        t, _ = _timed(lambda: load_models(reg, stats=st0))
        rows_out.append((f"index: {st0['reread']} models read through the log, {st0['models'] - st0['reread']} "
                         f"head checks", t, None))
        t, found = _timed(search)
        rows_out.append((f"search, warm index ({len(found)} rows shown)", t, TARGET_S))
        t, res = _timed(catalog)
        rows_out.append((f"catalog, first build ({res['rendered']} rendered, {len(res['written'])} written)", t, None))
        t, res = _timed(catalog)
        rows_out.append((f"catalog, unchanged rebuild ({len(res['written'])} written)", t, TARGET_S))
        env = dict(os.environ, OMR_REGISTRY=str(root))
        t, p = _timed(lambda: subprocess.run([sys.executable, "-m", "omr_workflows.cli.main", "search", "--where",
                                              "metrics.auc>=0.95", "--limit", "5", "--json"], env=env,
                                             capture_output=True, check=True))
        rows_out.append(("`omrw search --where ... --limit 5` (new process)", t, TARGET_S))
        # one new version: its model is re-read, every other model is a head check
        art = work / "art"
        art.mkdir(exist_ok=True)
        (art / "model.pt").write_bytes(b"new" * 100)
        subprocess.run([sys.executable, "-m", "omr_workflows.cli.main", "register", "task000/model00000", "--version",
                        f"vnew{int(time.time())}", "--artifacts", str(art), "--no-provenance"], env=env, capture_output=True, check=True)
        stats: dict = {}
        t, _ = _timed(lambda: load_models(reg, stats=stats))
        rows_out.append((f"index refresh after one register ({stats['reread']} model re-read)", t, TARGET_S))
        t, p = _timed(lambda: subprocess.run([sys.executable, "-m", "omr_workflows.cli.main", "catalog", "-o",
                                              str(site), "--json"], env=env, capture_output=True, check=True))
        written = len(json.loads(p.stdout)["written"])
        rows_out.append((f"`omrw catalog -o DIR` (new process, {written} pages written)", t, TARGET_S))
        size = sum(p.stat().st_size for p in cache.glob("catalog/*/catalog-v1/*.json"))
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.models} models x {args.versions} versions; index {size / 1e6:.1f} MB\n")
    print(f"{'operation':<70} {'seconds':>8} {'target':>8}  ok")
    for name, t, target in rows_out:
        ok = "" if target is None else ("yes" if t < target else "NO")
        print(f"{name:<70} {t:>8.2f} {('< %.0f' % target) if target else '':>8}  {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
