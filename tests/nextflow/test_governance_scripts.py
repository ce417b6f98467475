"""Governance in the Nextflow modules, by running their script blocks (harness.py) against a real
registry under a signed policy that protects `production` with two approvers: with `ext.trust`
set, OMR_RESOLVE (and OMR_FETCH, OMR_LOCK, OMR_VERIFY) fail while production's current event is
not an approved promotion; OMR_APPROVE run with B's and then C's key moves it, and the same tasks
then succeed with the approved version. Without `ext.trust` the modules behave as before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import MODEL, TOY_MODEL, read_json
from .harness import NFCORE_SHELL, TaskFailed


def omrw(*args: str, registry: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("OMR_TRUST", "OMR_SIGNING_KEY")}
    cmd = [sys.executable, "-m", "omr_workflows.cli.main", *args, *(["--registry", registry] if registry else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"$ omrw {' '.join(args)}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def governed(tmp_path):
    """celltype/pbmc v1 put in production by A (signed, before the policy protected the alias);
    then the policy (production needs 2 approvals of a, b, c); v2 registered by A and A's
    request to move production to v2. Returns (registry, keys, trust file)."""
    url = str(tmp_path / "registry")
    keydir = tmp_path / "keys"
    keydir.mkdir()
    keys, signers = {}, []
    for name in ("root", "a", "b", "c"):
        out = omrw("keygen", "-o", str(keydir / name), "--id", name, "--name", name, "--email", f"{name}@example.org",
                   "--json")
        keys[name] = keydir / f"{name}.key"
        if name != "root":
            signers.append(json.loads(out.stdout)["signer"])
    trust = tmp_path / "trust.json"
    omrw("trust", str(keydir / "root.pub"), "-o", str(trust), "--json")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"serial": 1, "signers": signers, "rules": [
        {"match": "*", "protected_aliases": ["production"], "approvals_required": 2}]}))
    v2 = tmp_path / "v2"
    v2.mkdir()
    for f in TOY_MODEL.iterdir():
        (v2 / f.name).write_bytes(f.read_bytes())
    (v2 / "metrics.json").write_text('{"auc": 0.99}\n')
    omrw("register", MODEL, "--version", "v1", "--artifacts", str(TOY_MODEL), "--alias", "production",
         "--no-provenance", "--key", str(keys["a"]), "--json", registry=url)
    omrw("policy", "set", str(policy), "--key", str(keys["root"]), "--trust", str(trust), "--json", registry=url)
    omrw("register", MODEL, "--version", "v2", "--artifacts", str(v2), "--no-provenance", "--key", str(keys["a"]),
         "--json", registry=url)
    req = json.loads(omrw("promote", f"{MODEL}@v2", "--to", "production", "--key", str(keys["a"]), "--json",
                          registry=url).stdout)
    assert req["moved"] is False and req["required"] == 2, req
    return url, keys, trust


def clean(tmp_path) -> dict:
    return {"OMR_TRUST": "", "OMR_SIGNING_KEY": "", "XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def resolve(run_task, url, tmp_path, trust=None, **kw):
    ext = {"trust": str(trust)} if trust else {}
    return run_task("resolve", {"meta": {"id": "pbmc"}, "ref": f"{MODEL}@production"}, url, ext=ext,
                    env=clean(tmp_path), **kw)


def approve(run_task, url, tmp_path, key, trust, **kw):
    return run_task("approve", {"meta": {"id": "pbmc"}, "ref": f"{MODEL}@v2", "alias": "production", "key": str(key)},
                    url, ext={"trust": str(trust), "args": "--reason 'reviewed in nextflow'"}, env=clean(tmp_path),
                    **kw)


def test_resolve_with_trust_fails_until_two_approvals(run_task, governed, tmp_path):
    url, keys, trust = governed

    # Without ext.trust nothing changed: production is still v1.
    assert read_json(resolve(run_task, url, tmp_path).outputs["json"][1])["version"] == "v1"

    with pytest.raises(TaskFailed, match="exited 1") as e:
        resolve(run_task, url, tmp_path, trust=trust, shell=NFCORE_SHELL)
    assert f"--trust '{trust}'" in e.value.result.script
    assert "production" in e.value.result.stderr, e.value.result.stderr

    first = approve(run_task, url, tmp_path, keys["b"], trust)
    out = read_json(first.outputs["json"][1])
    assert (out["moved"], out["approvals"], out["required"]) == (False, 1, 2), out
    assert (first.workdir / "omr_signing.key").is_symlink()          # staged like Nextflow stages a path
    assert first.outputs["versions_omrw"][0] == "OMR_APPROVE"
    with pytest.raises(TaskFailed, match="exited 1"):                 # one approval is not enough
        resolve(run_task, url, tmp_path, trust=trust)

    second = approve(run_task, url, tmp_path, keys["c"], trust, shell=NFCORE_SHELL)
    assert read_json(second.outputs["json"][1])["moved"] is True
    assert second.topics["omr_provenance"]

    final = resolve(run_task, url, tmp_path, trust=trust)
    assert read_json(final.outputs["json"][1])["version"] == "v2"

    # The approval records go on the omr_provenance topic: OMR_PROVENANCECOLLECT takes them.
    records = [*first.topics["omr_provenance"], *second.topics["omr_provenance"], final.outputs["provenance"]]
    report = run_task("provenancecollect", {"meta": {"id": "omr_provenance"}, "records": records}, url,
                      env=clean(tmp_path))
    assert "v2" in json.dumps(read_json(report.outputs["json"][1]))


@pytest.mark.parametrize("module, inputs", [
    ("fetch", {"meta": {"id": "pbmc"}, "ref": f"{MODEL}@production"}),
    ("lock", {"meta": {"id": "pins"}, "refs": [f"{MODEL}@production"]}),
    ("verify", {"meta": {"id": "all"}, "refs": [f"{MODEL}@production"], "mode": "fast", "shard": "1/1"}),
])
def test_other_consumers_pass_trust(run_task, governed, tmp_path, module, inputs):
    url, keys, trust = governed
    run_task(module, inputs, url, env=clean(tmp_path))               # without trust: as before
    with pytest.raises(TaskFailed, match="exited 1") as e:
        run_task(module, inputs, url, ext={"trust": str(trust)}, env=clean(tmp_path))
    assert f"--trust '{trust}'" in e.value.result.script


def test_requester_and_repeated_approvals_are_refused(run_task, governed, tmp_path):
    url, keys, trust = governed
    with pytest.raises(TaskFailed, match="exited 4") as e:
        approve(run_task, url, tmp_path, keys["a"], trust)
    assert "cannot approve" in e.value.result.stderr
    approve(run_task, url, tmp_path, keys["b"], trust)
    with pytest.raises(TaskFailed, match="exited 4"):
        approve(run_task, url, tmp_path, keys["b"], trust)


def test_approve_stub(run_task, tmp_path):
    r = run_task("approve", {"meta": {"id": "pbmc"}, "ref": f"{MODEL}@v2", "alias": "production",
                             "key": str(TOY_MODEL / "label_map.json")}, stub=True)
    assert read_json(r.outputs["json"][1])["stub"] is True
    assert r.outputs["provenance"]
