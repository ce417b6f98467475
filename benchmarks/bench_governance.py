"""Governance benchmarks (issue 10): what signatures cost where users feel it.

Run by hand: `python benchmarks/bench_governance.py [--size-mb 1024] [--runs 15]`. Prints a table.
Targets: checking signatures and approvals adds at most 10 ms to `omrw resolve` of a signed,
approved alias from a fresh process; `register --sign` of a 1 GiB version costs no second pass
over the bytes (its extra time is a small constant, not proportional to the size).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OMRW = [sys.executable, "-m", "omr_workflows.cli.main"]


def omrw(*args: str, registry: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMR_REGISTRY=registry)
    proc = subprocess.run([*OMRW, *args], capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"omrw {' '.join(args)} failed: {proc.stderr}")
    return proc


def median_ms(args: list[str], registry: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        omrw(*args, registry=registry)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def paired_ms(a: list[str], b: list[str], registry: str, runs: int) -> tuple[float, float]:
    """Medians of a and b, run alternately so that drift of the machine hits both."""
    ta, tb = [], []
    for _ in range(runs):
        for args, out in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            omrw(*args, registry=registry)
            out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(ta), statistics.median(tb)


def make_package(root: Path, size_mb: int) -> Path:
    root.mkdir(parents=True)
    chunk = os.urandom(1 << 20)
    n_files = max(1, size_mb // 64)
    per_file = size_mb // n_files
    for i in range(n_files):
        with open(root / f"shard-{i:03d}.bin", "wb") as f:
            for _ in range(per_file):
                f.write(chunk)
    (root / "config.json").write_text('{"layers": 4}')
    return root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=15)
    opts = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        reg = str(tmp / "registry")
        keys = {}
        entries = []
        for name in ("root", "alice", "bob", "carol"):
            out = json.loads(omrw("keygen", "-o", str(tmp / name), "--json", registry=reg).stdout)
            keys[name] = str(tmp / f"{name}.key")
            if name != "root":
                entries.append(out["signer"])
        omrw("trust", str(tmp / "root.pub"), "-o", str(tmp / "trust.json"), registry=reg)
        policy = {"serial": 1, "signers": entries, "rules": [{"match": "t/m", "protected_aliases": ["production"],
                                                               "approvals_required": 2,
                                                               "require_signed_versions": True},
                                                              {"match": "*"}]}
        (tmp / "policy.json").write_text(json.dumps(policy))
        omrw("policy", "set", str(tmp / "policy.json"), "--key", keys["root"], registry=reg)
        small = tmp / "small"
        small.mkdir()
        (small / "model.bin").write_bytes(os.urandom(1 << 16))
        omrw("register", "t/m", "--version", "v1", "--artifacts", str(small), "--no-provenance", "--sign",
             keys["alice"], registry=reg)
        omrw("promote", "t/m@v1", "--to", "production", "--key", keys["alice"], registry=reg)
        omrw("approve", "t/m@v1", "--to", "production", "--key", keys["bob"], registry=reg)
        omrw("approve", "t/m@v1", "--to", "production", "--key", keys["carol"], registry=reg)
        plain, trusted = paired_ms(["resolve", "t/m@production", "--trust", "none"],
                                   ["resolve", "t/m@production", "--trust", str(tmp / "trust.json")], reg, opts.runs)
        delta = trusted - plain
        rows.append(("resolve @production, fresh process, no trust root", f"{plain:.1f} ms", "", ""))
        rows.append(("  with trust root (policy, 6 event + 1 model signature checks)", f"{trusted:.1f} ms",
                     f"+{delta:.1f} ms", "met" if delta <= 10 else "not met (target +10 ms)"))

        pkg = make_package(tmp / "big", opts.size_mb)
        t0 = time.perf_counter()
        omrw("register", "t/big", "--version", "plain", "--artifacts", str(pkg), "--no-provenance", "--key",
             keys["alice"], registry=reg)
        t_plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        omrw("register", "t/big", "--version", "signed", "--artifacts", str(pkg), "--no-provenance", "--sign",
             keys["alice"], registry=reg)
        t_signed = time.perf_counter() - t0
        rows.append((f"register {opts.size_mb} MiB, events signed", f"{t_plain:.2f} s", "", ""))
        extra = t_signed - t_plain
        rows.append((f"register {opts.size_mb} MiB --sign (version signed too)", f"{t_signed:.2f} s",
                     f"{extra:+.2f} s", "met" if extra < 0.1 * t_plain + 0.2 else "not met (second pass?)"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  {'time':>10}  {'delta':>10}  target")
    for r in rows:
        print(f"{r[0]:<{width}}  {r[1]:>10}  {r[2]:>10}  {r[3]}")


if __name__ == "__main__":
    main()
