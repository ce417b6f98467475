"""The rule library snakemake_rules/omr.smk through `include:` and through `module` +
`use rule *`: default targets, config validation, reruns when an alias moves (and not with
a lock), scattered verification, training-workflow register/promote, and the report.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from .conftest import RULES, dry_run_jobs, run_snakemake

pytestmark = pytest.mark.snakemake
LIBRARY = RULES / "omr.smk"

INCLUDE = f"""
configfile: "config.yaml"
include: "{LIBRARY}"

rule all:
    default_target: True
    input: "use/model.txt", rules.omr_all.input

rule use_model:
    input: omr_model_dir("toy")
    output: "use/model.txt"
    shell: "cp {{input}}/model.json {{output}}"
"""

MODULE = f"""
configfile: "config.yaml"

module omr:
    snakefile: "{LIBRARY}"
    config: config["omr"]

use rule * from omr

rule all:
    default_target: True
    input: "use/model.txt", rules.omr_all.input

rule use_model:
    input: expand(rules.omr_fetch.output.model, name="toy")
    output: "use/model.txt"
    shell: "cp {{input}}/model.json {{output}}"
"""

STYLES = {"include": INCLUDE, "module": MODULE}


def workflow(tmp_path: Path, style: str, omr: dict, snakefile: str | None = None) -> Path:
    work = tmp_path / f"wf-{style}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "Snakefile").write_text(textwrap.dedent(snakefile or STYLES[style]))
    (work / "config.yaml").write_text(yaml.safe_dump({"omr": omr}))
    return work


def models(reg) -> dict:
    return {"registry": reg.url, "models": {"toy": "demo/toy@production"}}


@pytest.mark.parametrize("style", ["include", "module"])
def test_library_resolves_fetches_and_records_provenance(tmp_path, toy_registry, style):
    work = workflow(tmp_path, style, models(toy_registry))
    jobs = dry_run_jobs(work)
    assert jobs == {"omr_resolve": 1, "omr_fetch": 1, "omr_provenance": 1, "use_model": 1, "all": 1}
    run_snakemake(work, "--cores", "2")
    doc = json.loads((work / "omr/resolved/toy.json").read_text())
    assert (doc["version"], doc["digest"]) == ("v1", toy_registry.v1_digest)
    assert (work / "use/model.txt").read_bytes() == (Path(doc["path"]) / "model.json").read_bytes()
    table = (work / "omr/provenance/omr_provenance.md").read_text()
    assert "demo/toy" in table and toy_registry.v1_digest in table and "snakemake" in table
    assert dry_run_jobs(work) == {}


def test_module_with_use_rule_star_alone_targets_the_library_main_rule(tmp_path, toy_registry):
    """Without a main rule of its own, the first imported rule must not become the target."""
    snakefile = f"""
    configfile: "config.yaml"
    module omr:
        snakefile: "{LIBRARY}"
        config: config["omr"]
    use rule * from omr
    """
    work = workflow(tmp_path, "module", models(toy_registry), snakefile)
    assert dry_run_jobs(work) == {"omr_resolve": 1, "omr_fetch": 1, "omr_provenance": 1, "omr_all": 1}


def test_module_with_a_prefix_of_its_own(tmp_path, toy_registry):
    """`use rule * from omr as omr_*` works too; the names get the prefix twice."""
    snakefile = f"""
    configfile: "config.yaml"
    module omr:
        snakefile: "{LIBRARY}"
        config: config["omr"]
    use rule * from omr as omr_*

    rule all:
        default_target: True
        input: rules.omr_omr_all.input
    """
    work = workflow(tmp_path, "module", models(toy_registry), snakefile)
    assert dry_run_jobs(work) == {"omr_omr_resolve": 1, "omr_omr_fetch": 1, "omr_omr_provenance": 1, "all": 1}
    run_snakemake(work, "--cores", "2", "--set-scatter", "omr_verify=2")
    assert json.loads((work / "omr/resolved/toy.json").read_text())["version"] == "v1"


@pytest.mark.parametrize("style", ["include", "module"])
@pytest.mark.parametrize("bad, key", [
    ({"verify": "sloppy"}, "verify"),
    ({"models": {"toy": "not a reference"}}, "toy"),
    ({"scatter": 0}, "scatter"),
    ({"verfiy": "fast"}, "verfiy"),
    ({"register": {"m": {"model": "demo/toy", "version": "v9"}}}, "artifacts"),
])
def test_bad_config_fails_schema_validation_naming_the_key(tmp_path, toy_registry, style, bad, key):
    work = workflow(tmp_path, style, {**models(toy_registry), **bad})
    proc = run_snakemake(work, "-n", "--cores", "1", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Error validating config file" in out, out[-2000:]
    assert key in out


@pytest.mark.parametrize("style", ["include", "module"])
def test_promotion_reruns_the_dependent_jobs_and_a_lock_stops_it(tmp_path, toy_registry, style):
    from omr_workflows.registry import Registry

    reg = Registry(toy_registry.url)
    free = workflow(tmp_path / "free", style, models(toy_registry))
    pinned = workflow(tmp_path / "pinned", style, {**models(toy_registry), "lock": "omr.lock.json"})
    run_snakemake(free, "--cores", "2")
    run_snakemake(pinned, "--cores", "2")   # omr_lock writes the missing lock first (pins v1)
    assert toy_registry.v1_digest in (pinned / "omr.lock.json").read_text()

    reg.promote("demo/toy@v2", "production", reason="retrained")

    summary = run_snakemake(free, "--summary", "--cores", "1").stdout
    assert re.search(r"omr/resolved/toy\.json\s.*\somr_resolve\s.*params changed", summary), summary
    assert dry_run_jobs(free) == {"omr_resolve": 1, "omr_fetch": 1, "omr_provenance": 1, "use_model": 1, "all": 1}
    assert dry_run_jobs(pinned) == {}

    run_snakemake(free, "--cores", "2")
    table = (free / "omr/provenance/omr_provenance.md").read_text()
    assert toy_registry.v2_digest in table and "| v2 |" in table
    run_snakemake(pinned, "--cores", "2", "--forcerun", "omr_resolve")
    assert json.loads((pinned / "omr/resolved/toy.json").read_text())["version"] == "v1"


def _shard_of(registry: str, rel: str, n: int, tmp_path: Path) -> int:
    """Which shard of N the real planner gives the file `rel` to (`omrw verify --plan --report`)."""
    from tests.conftest import run_omrw

    plan_file = tmp_path / f"plan-{n}.json"
    run_omrw("verify", "--plan", "--shards", str(n), "--all", "--report", str(plan_file), registry=registry, check=True)
    shards = {u["shard"] for u in json.loads(plan_file.read_text())["units"] if u["path"] == rel}
    assert len(shards) == 1, f"{rel} is in shards {shards}"
    return shards.pop()


def _verify_registry(tmp_path) -> str:
    from .conftest import toy_files

    url = str(tmp_path / "vreg")
    for i, name in enumerate(["alpha", "beta", "gamma", "delta"]):
        art = tmp_path / f"v-{name}"
        art.mkdir()
        for rel, data in toy_files(name).items():
            (art / rel).write_bytes(data)
        (art / f"weights-{name}.bin").write_bytes(bytes(range(256)) * (8 + i))
        from omr_workflows.registry import Registry

        Registry(url).register("demo", name, "v1", str(art), aliases=["production"])
    return url


def test_scattered_verification_passes_fails_in_the_right_shard_and_retunes(tmp_path):
    url = _verify_registry(tmp_path)
    omr = {"registry": url, "targets": ["verify"], "scatter": 3, "verification": {"scope": "all"}}
    work = workflow(tmp_path, "include", omr, f'configfile: "config.yaml"\ninclude: "{LIBRARY}"\n')
    jobs = dry_run_jobs(work, "omr_all")
    assert jobs == {"omr_verify_shard": 3, "omr_verify_merge": 1, "omr_all": 1}
    assert dry_run_jobs(work, "omr_all", "--set-scatter", "omr_verify=5")["omr_verify_shard"] == 5

    run_snakemake(work, "--cores", "2", "omr_all")
    merged = json.loads((work / "omr/verify/report.json").read_text())
    assert merged and sorted(p.name for p in (work / "omr/verify/shards").glob("*.json")) == [
        "1-of-3.json", "2-of-3.json", "3-of-3.json"]

    # one corrupted byte: the shard holding that file fails and its log names the file
    from omr_workflows.registry import Registry

    victim = Path(Registry(url).resolve("demo/gamma@v1").path) / "weights-gamma.bin"
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.chmod(0o644)
    victim.write_bytes(bytes(data))
    bad = _shard_of(url, "weights-gamma.bin", 3, tmp_path)
    shutil.rmtree(work / "omr/verify")
    proc = run_snakemake(work, "--cores", "1", "omr_all", "--keep-going", check=False)
    assert proc.returncode != 0
    logs = {i: (work / f"omr/logs/verify/{i}-of-3.log").read_text() for i in (1, 2, 3)}
    assert "weights-gamma.bin" in logs[bad], logs[bad]
    for i in {1, 2, 3} - {bad}:
        assert "weights-gamma.bin" not in logs[i]
        assert (work / f"omr/verify/shards/{i}-of-3.json").exists()
    assert not (work / f"omr/verify/shards/{bad}-of-3.json").exists()
    assert not (work / "omr/verify/report.json").exists()


def test_training_workflow_registers_and_promotes(tmp_path, local_registry):
    from omr_workflows.registry import Registry

    snakefile = f"""
    configfile: "config.yaml"
    module omr:
        snakefile: "{LIBRARY}"
        config: config["omr"]
    use rule * from omr

    rule all:
        default_target: True
        input: rules.omr_all.input

    rule train:
        output: directory("results/model")
        shell: "mkdir -p {{output}} && echo '{{{{\\"w\\": [1, 2]}}}}' > {{output}}/model.json"
    """
    omr = {"registry": local_registry, "targets": ["promote"],
           "register": {"clf": {"model": "demo/trained", "version": "t1", "artifacts": "results/model",
                                "hyperparams": {"lr": 0.1}, "no_provenance": True}},
           "promote": {"clf": {"to": "production", "reason": "tests pass"}}}
    work = workflow(tmp_path, "module", omr, snakefile)
    assert dry_run_jobs(work) == {"train": 1, "omr_register": 1, "omr_promote": 1, "all": 1}
    run_snakemake(work, "--cores", "1")
    res = Registry(local_registry).resolve("demo/trained@production")
    assert res.version == "t1"
    assert json.loads((Path(res.path) / "model.json").read_text()) == {"w": [1, 2]}
    event = json.loads((work / "omr/promoted/clf.json").read_text())
    assert (event["alias"], event["version"], event["reason"]) == ("production", "t1", "tests pass")


def _report_texts(report: Path) -> list[str]:
    html = report.read_text()
    texts = [html]
    for m in re.finditer(r"base64,([A-Za-z0-9+/=]+)", html):
        try:
            texts.append(base64.b64decode(m.group(1)).decode("utf-8", "replace"))
        except ValueError:
            pass
    return texts


def test_snakemake_report_contains_the_pinned_models_table(tmp_path, toy_registry):
    work = workflow(tmp_path, "module", models(toy_registry))
    run_snakemake(work, "--cores", "2")
    run_snakemake(work, "--report", "report.html")
    tables = [t for t in _report_texts(work / "report.html") if "<table" in t and toy_registry.v1_digest in t]
    assert tables, "no pinned-models table with the v1 digest in report.html"
    assert "demo/toy" in tables[0] and "v1" in tables[0]
    assert "Provenance" in (work / "report.html").read_text()


def test_per_model_verification_covers_only_the_configured_models(tmp_path):
    url = _verify_registry(tmp_path)
    omr = {"registry": url, "targets": ["verify"], "scatter": 2,
           "models": {"a": "demo/alpha@production", "b": "demo/beta@production"},
           "verification": {"scope": "models", "mode": "strict"}}
    work = workflow(tmp_path, "include", omr, f'configfile: "config.yaml"\ninclude: "{LIBRARY}"\n')
    run_snakemake(work, "--cores", "2", "omr_all")
    shards = " ".join((work / f"omr/verify/shards/{i}-of-2.json").read_text() for i in (1, 2))
    assert "weights-alpha.bin" in shards and "weights-beta.bin" in shards
    assert "gamma" not in shards and "delta" not in shards
    assert json.loads((work / "omr/verify/report.json").read_text())


@pytest.mark.s3
def test_library_and_storage_plugin_on_an_s3_registry(tmp_path, s3_registry, s3_server):
    from .conftest import register_toy, toy_files

    register_toy(s3_registry, tmp_path, "v1", "one", aliases=["production"])
    snakefile = MODULE + f"""
storage omr:
    provider="omr",
    registry="{s3_registry}",

rule from_storage:
    input: storage.omr("omr://demo/toy@production#model.json")
    output: "use/storage.txt"
    shell: "cp {{input}} {{output}}"
"""
    work = workflow(tmp_path, "module", {"registry": s3_registry, "models": {"toy": "demo/toy@production"}}, snakefile)
    run_snakemake(work, "--cores", "2", "all", "use/storage.txt", env=s3_server["env"])
    expected = toy_files("one")["model.json"]
    assert (work / "use/model.txt").read_bytes() == expected
    assert (work / "use/storage.txt").read_bytes() == expected
    assert s3_registry in (work / "omr/provenance/omr_provenance.md").read_text()
