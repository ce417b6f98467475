"""Governance at the point of use in Snakemake (acceptance): a registry under a signed policy
that protects `production` with two approvers. A request by A to move it to v2 leaves the alias
where it was (v1, put there before the policy, so not an approved promotion); a workflow with
`trust:` that reads `demo/toy@production` fails before any job that uses the model runs, through
the rule library and through the storage plugin. After B and C approve (the rule library's
omr_approve rule, in a Snakemake run), the same workflows succeed with v2. Without a trust root
they behave as before. Real `snakemake`, real `omrw`.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.chain_rewrite import rewrite_chain

from .conftest import RULES, govern, omrw_cli, run_snakemake, set_policy, toy_files

pytestmark = pytest.mark.snakemake
LIBRARY = RULES / "omr.smk"

CONSUMER = f"""
configfile: "config.yaml"
include: "{LIBRARY}"

rule all:
    default_target: True
    input: "use/model.txt"

rule use_model:
    input: omr_model_dir("toy")
    output: "use/model.txt"
    shell: "cp {{input}}/model.json {{output}}"
"""

STORAGE = """
configfile: "config.yaml"

storage omr:
    provider="omr",
    registry=config["registry"],
    trust=config.get("trust"),

rule all:
    input: "use/model.txt"

rule use_model:
    input: storage.omr("omr://demo/toy@production#model.json")
    output: "use/model.txt"
    shell: "cp {input} {output}"
"""

APPROVER = f"""
configfile: "config.yaml"
include: "{LIBRARY}"

rule all:
    default_target: True
    input: rules.omr_all.input
"""


@pytest.fixture
def governed(tmp_path):
    """demo/toy v1 put in production by A (signed, before the policy protected the alias), then
    the policy, then v2 registered with A's key and A's signed request to move production to v2."""
    url = str(tmp_path / "registry")
    gov = govern(url, tmp_path / "gov", apply=False)
    for version, seed, aliases in (("v1", "one", ["--alias", "production"]), ("v2", "two", [])):
        art = tmp_path / f"art-{version}"
        art.mkdir()
        for rel, data in toy_files(seed).items():
            (art / rel).write_bytes(data)
        omrw_cli("register", "demo/toy", "--version", version, "--artifacts", str(art), "--no-provenance",
                 *aliases, "--key", str(gov.keys["a"]), "--json", registry=url)
        if version == "v1":
            set_policy(gov)
    req = json.loads(omrw_cli("promote", "demo/toy@v2", "--to", "production", "--key", str(gov.keys["a"]),
                              "--json", registry=url).stdout)
    assert (req["moved"], req["approvals"], req["required"]) == (False, 0, 2), req
    return gov


def workflow(root: Path, name: str, snakefile: str, config: dict) -> Path:
    work = root / name
    work.mkdir(parents=True, exist_ok=True)
    (work / "Snakefile").write_text(textwrap.dedent(snakefile))
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    return work


def clean_env(tmp_path) -> dict:
    """No trust root from the environment or the user's config: only what the workflow says."""
    return {"OMR_TRUST": "", "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "OMR_SIGNING_KEY": ""}


def library_config(gov, trust: bool) -> dict:
    cfg = {"registry": gov.url, "models": {"toy": "demo/toy@production"}, "targets": ["fetch"]}
    if trust:
        cfg["trust"] = str(gov.trust)
    return cfg


def storage_config(gov, trust: bool) -> dict:
    return {"registry": gov.url, **({"trust": str(gov.trust)} if trust else {})}


def assert_refused(work: Path, proc, *, library: bool) -> None:
    """The run failed, nothing that uses the model ran, and the error names the alias."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert not (work / "use/model.txt").exists()
    out = proc.stdout + proc.stderr
    if library:
        assert not (work / "omr/models/toy").exists()
        assert "omr_resolve: omrw resolve exited 1" in out, out[-4000:]
        log = (work / "omr/logs/resolve/toy.log").read_text()
        assert "--trust" in log.splitlines()[0]
        assert "production" in log.split("\n", 1)[1], log
    else:
        assert "omr trust check failed for omr://demo/toy@production#model.json" in out, out[-4000:]
        assert "Traceback" not in out
    # No job that uses the model started (Snakemake prints `rule NAME:` when it starts one).
    assert "rule use_model:" not in out and "rule omr_fetch:" not in out, out[-4000:]


def test_trust_refuses_an_unapproved_alias_until_two_approvals_move_it(tmp_path, governed):
    gov, env = governed, clean_env(tmp_path)

    # Without a trust root nothing changed: production is v1, and both ways read it.
    plain = workflow(tmp_path, "plain-library", CONSUMER, library_config(gov, trust=False))
    run_snakemake(plain, "--cores", "1", env=env)
    assert (plain / "use/model.txt").read_bytes() == toy_files("one")["model.json"]
    plain_storage = workflow(tmp_path, "plain-storage", STORAGE, storage_config(gov, trust=False))
    run_snakemake(plain_storage, "--cores", "1", env=env)
    assert (plain_storage / "use/model.txt").read_bytes() == toy_files("one")["model.json"]

    # With the trust root, production's current event is not an approved promotion.
    lib = workflow(tmp_path, "trusted-library", CONSUMER, library_config(gov, trust=True))
    proc = run_snakemake(lib, "--cores", "1", env=env, check=False)
    assert_refused(lib, proc, library=True)
    store = workflow(tmp_path, "trusted-storage", STORAGE, storage_config(gov, trust=True))
    proc = run_snakemake(store, "--cores", "1", env=env, check=False)
    assert_refused(store, proc, library=False)

    # B and C approve through the rule library's omr_approve rule (signed with their keys).
    approve = workflow(tmp_path, "approve", APPROVER, {
        "registry": gov.url, "trust": str(gov.trust), "targets": ["approve"],
        "approve": {
            "toy-b": {"ref": "demo/toy@v2", "to": "production", "key": str(gov.keys["b"]), "reason": "reviewed"},
            "toy-c": {"ref": "demo/toy@v2", "to": "production", "key": str(gov.keys["c"]), "reason": "reviewed"},
        }})
    run_snakemake(approve, "--cores", "1", env=env)
    outcomes = [json.loads((approve / f"omr/approved/toy-{n}.json").read_text()) for n in ("b", "c")]
    assert sorted(o["moved"] for o in outcomes) == [False, True], outcomes
    assert (approve / "omr/provenance/records/approve-toy-b").is_dir()

    # Now the same workflows succeed, with v2.
    run_snakemake(lib, "--cores", "1", env=env)
    assert (lib / "use/model.txt").read_bytes() == toy_files("two")["model.json"]
    assert json.loads((lib / "omr/resolved/toy.json").read_text())["version"] == "v2"
    run_snakemake(store, "--cores", "1", env=env)
    assert (store / "use/model.txt").read_bytes() == toy_files("two")["model.json"]

    # And the workflow without trust reruns for the moved alias, as it always did.
    run_snakemake(plain, "--cores", "1", env=env)
    assert (plain / "use/model.txt").read_bytes() == toy_files("two")["model.json"]


def test_requester_approving_is_refused_and_fails_the_job(tmp_path, governed):
    gov, env = governed, clean_env(tmp_path)
    work = workflow(tmp_path, "self", APPROVER, {
        "registry": gov.url, "trust": str(gov.trust), "targets": ["approve"],
        "approve": {"toy": {"ref": "demo/toy@v2", "to": "production", "key": str(gov.keys["a"])}}})
    proc = run_snakemake(work, "--cores", "1", env=env, check=False)
    assert proc.returncode != 0
    assert "omr_approve: omrw approve exited 4" in proc.stdout + proc.stderr
    assert not (work / "omr/approved/toy.json").exists()


def test_storage_trust_setting_none_and_env_fallback(tmp_path, governed):
    """`trust` unset falls back to $OMR_TRUST (find_trust), and `none` turns the checks off."""
    gov, env = governed, clean_env(tmp_path)
    store = workflow(tmp_path, "env", STORAGE, storage_config(gov, trust=False))
    proc = run_snakemake(store, "--cores", "1", env={**env, "OMR_TRUST": str(gov.trust)}, check=False)
    assert_refused(store, proc, library=False)
    off = workflow(tmp_path, "off", STORAGE, {"registry": gov.url, "trust": "none"})
    run_snakemake(off, "--cores", "1", env={**env, "OMR_TRUST": str(gov.trust)})
    assert (off / "use/model.txt").read_bytes() == toy_files("one")["model.json"]


def test_wrapper_refuses_a_missing_trust_file(tmp_path, governed):
    work = tmp_path / "w"
    work.mkdir()
    (work / "Snakefile").write_text(
        "rule r:\n"
        "    output: 'toy.json'\n"
        "    log: 'logs/r.log'\n"
        f"    params: ref='demo/toy@production', registry={gov_url(governed)!r}, trust='no-such-trust.json'\n"
        f"    wrapper: 'file:{RULES}/wrappers/omr/resolve'\n")
    proc = run_snakemake(work, "--cores", "1", env=clean_env(tmp_path), check=False)
    assert proc.returncode != 0
    assert "params.trust='no-such-trust.json' is not an existing file" in (work / "logs/r.log").read_text()


def gov_url(gov) -> str:
    return gov.url


def test_storage_plugin_declares_the_trust_setting():
    from dataclasses import fields

    from snakemake_storage_plugin_omr import StorageProviderSettings

    (trust,) = [f for f in fields(StorageProviderSettings) if f.name == "trust"]
    assert trust.default is None and "Trust root" in trust.metadata["help"]
    assert trust.metadata["env_var"] is False and trust.metadata["required"] is False


def test_storage_plugin_refuses_a_consistently_rewritten_chain(tmp_path, governed):
    """After the approvals, a group member rewrites the chain so production is v1 again (every
    hash, head and pointer recomputed, signatures dropped): the plugin refuses at DAG time."""
    gov, env = governed, clean_env(tmp_path)
    for who in ("b", "c"):
        omrw_cli("approve", "demo/toy@v2", "--to", "production", "--key", str(gov.keys[who]), registry=gov.url)
    store = workflow(tmp_path, "trusted-storage", STORAGE, storage_config(gov, trust=True))
    run_snakemake(store, "--cores", "1", env=env)
    assert (store / "use/model.txt").read_bytes() == toy_files("two")["model.json"]

    def back_to_v1(ev):
        if "production" in ev["aliases"]:
            ev["aliases"]["production"]["version"] = "v1"
            ev["digests"]["v1"] = ev["digests"].get("v1") or next(
                e for e in events if e["kind"] == "register" and e["version"] == "v1")["digest"]

    mdir = Path(gov.url) / "tasks" / "demo" / "models" / "toy"
    events = [json.loads(p.read_bytes()) for p in sorted((mdir / "audit" / "events").glob("*.json"))]
    rewrite_chain(mdir, back_to_v1, strip_signatures=True)
    plain = workflow(tmp_path, "plain-storage", STORAGE, storage_config(gov, trust=False))
    run_snakemake(plain, "--cores", "1", env=env)  # without a trust root the rewrite is invisible
    assert (plain / "use/model.txt").read_bytes() == toy_files("one")["model.json"]
    (store / "use/model.txt").unlink()
    proc = run_snakemake(store, "--cores", "1", env=env, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "omr trust check failed" in out and "audit event" in out, out[-3000:]
    assert not (store / "use/model.txt").exists()
