"""Shared pieces of the Snakemake engine tests: a small real registry and a `python -m snakemake`
runner that prints every log when a run fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "snakemake_rules"
WRAPPERS = RULES / "wrappers"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake_env(registry: str | None = None, extra: dict | None = None) -> dict:
    """The environment of a Snakemake subprocess.

    The repository root goes first on PYTHONPATH because Snakemake finds storage plugins
    only through sys.path entries (pkgutil.iter_modules); a setuptools editable install in
    its default mode hides `snakemake_storage_plugin_omr` from that scan. The discovery test
    in test_storage_plugin.py checks the real install without this.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    if registry:
        env["OMR_REGISTRY"] = registry
    env.update(extra or {})
    return env


def dump_logs(workdir: Path) -> str:
    parts = []
    for pattern in ("logs/**/*", "**/logs/**/*.log", ".snakemake/log/*.log"):
        for p in sorted(workdir.glob(pattern)):
            if p.is_file():
                parts.append(f"----- {p.relative_to(workdir)}\n{p.read_text(errors='replace')[-4000:]}")
    return "\n".join(dict.fromkeys(parts))


def run_snakemake(workdir: Path, *args: str, registry: str | None = None, env: dict | None = None,
                  check: bool = True, timeout: float = 300, snakefile: str | None = None) -> subprocess.CompletedProcess:
    """`python -m snakemake ARGS` in `workdir`; on an unexpected exit code print stdout, stderr and logs."""
    cmd = [*SNAKEMAKE, *(["-s", snakefile] if snakefile else []), *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=snakemake_env(registry, env),
                          timeout=timeout)
    if check and proc.returncode != 0:
        print("$", " ".join(cmd))
        print("----- stdout\n", proc.stdout[-6000:])
        print("----- stderr\n", proc.stderr[-10000:])
        print(dump_logs(Path(workdir)))
        raise AssertionError(f"snakemake exited {proc.returncode} in {workdir}")
    return proc


def dry_run_jobs(workdir: Path, *args: str, registry: str | None = None, env: dict | None = None,
                 snakefile: str | None = None) -> dict[str, int]:
    """{rule: count} of the jobs a dry run would execute ({} when nothing is to be done)."""
    proc = run_snakemake(workdir, "-n", "--cores", "1", *args, registry=registry, env=env, snakefile=snakefile)
    jobs: dict[str, int] = {}
    lines = proc.stdout.splitlines() + proc.stderr.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Job stats:"):
            for row in lines[i + 3:]:
                cells = row.split()
                if len(cells) != 2 or cells[0] == "total":
                    break
                jobs[cells[0]] = int(cells[1])
            break
    return jobs


@dataclass
class ToyRegistry:
    url: str
    v1_digest: str
    v2_digest: str


def toy_files(seed: str) -> dict[str, bytes]:
    model = {"kind": "nearest-centroid", "centroids": {"a": [0.0, float(len(seed))], "b": [1.0, 0.0]}, "seed": seed}
    return {"model.json": (json.dumps(model, sort_keys=True) + "\n").encode(), "labels.txt": b"a\nb\n"}


def register_toy(registry: str, tmp: Path, version: str, seed: str, aliases=(), latest: bool = True) -> str:
    from omr_workflows.registry import Registry

    art = tmp / f"art-{version}"
    art.mkdir(parents=True, exist_ok=True)
    for rel, data in toy_files(seed).items():
        (art / rel).write_bytes(data)
    res = Registry(registry).register("demo", "toy", version, str(art), aliases=list(aliases), set_latest=latest,
                                      reason="test fixture")
    return res.digest


@pytest.fixture
def toy_registry(tmp_path) -> ToyRegistry:
    """demo/toy: v1 is `production` and `latest`; v2 is registered but not promoted."""
    url = str(tmp_path / "registry")
    d1 = register_toy(url, tmp_path, "v1", "one", aliases=["production"])
    d2 = register_toy(url, tmp_path, "v2", "two", latest=False)
    return ToyRegistry(url, d1, d2)


# ---------------------------------------------------------------------- governance (signed policy)
@dataclass
class Governed:
    """A registry under a signed policy: `keys[name]` are private keys (root signs the policy,
    the others are its signers), `trust` the consumers' trust root (`omrw trust root.pub`)."""

    url: str
    keys: dict
    trust: Path
    policy: Path


def omrw_cli(*args: str, registry: str | None = None, check: bool = True, cwd=None,
             env: dict | None = None) -> subprocess.CompletedProcess:
    """The real `omrw` (the interpreter's module), without any trust root picked up by accident."""
    full = dict(os.environ)
    full.pop("OMR_TRUST", None)
    full.pop("OMR_SIGNING_KEY", None)
    full.update(env or {})
    cmd = [sys.executable, "-m", "omr_workflows.cli.main", *args]
    if registry:
        cmd += ["--registry", registry]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=full, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"$ omrw {' '.join(args)}\nexit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def govern(registry: str, tmp: Path, signers=("a", "b", "c"), approvals: int = 2,
           protected=("production",), apply: bool = True) -> Governed:
    """Keys for a root and each signer, a trust root, and a policy protecting `protected`
    (`approvals` signed approvals needed), signed by the root and stored in the registry
    (with `apply=False` only written; `set_policy(gov)` stores it)."""
    keydir = tmp / "keys"
    keydir.mkdir(parents=True, exist_ok=True)
    keys, entries = {}, []
    for name in ("root", *signers):
        out = omrw_cli("keygen", "-o", str(keydir / name), "--id", name, "--name", name,
                       "--email", f"{name}@example.org", "--json")
        keys[name] = keydir / f"{name}.key"
        if name != "root":
            entries.append(json.loads(out.stdout)["signer"])
    trust = tmp / "trust.json"
    omrw_cli("trust", str(keydir / "root.pub"), "-o", str(trust), "--json")
    policy = tmp / "policy.json"
    policy.write_text(json.dumps({"serial": 1, "signers": entries, "rules": [
        {"match": "*", "protected_aliases": list(protected), "approvals_required": approvals}]}))
    gov = Governed(registry, keys, trust, policy)
    if apply:
        set_policy(gov)
    return gov


def set_policy(gov: Governed) -> None:
    omrw_cli("policy", "set", str(gov.policy), "--key", str(gov.keys["root"]), "--trust", str(gov.trust), "--json",
             registry=gov.url)
