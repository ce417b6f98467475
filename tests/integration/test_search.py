"""`omrw search` and `omrw compare` on a registry made by the real `omrw register` / `promote`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_artifacts, run_omrw


def _env(base: Path) -> dict:
    home = base / "home"
    return {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "XDG_DATA_HOME": str(home / ".local"),
            "OMR_CACHE": str(home / "omr-cache"), "OMR_REGISTRY": str(base / "registry")}


def _register(base: Path, env: dict, model: str, version: str, meta: dict, params: list[str],
              files: dict[str, bytes] | None = None, card: str | None = None):
    art = base / f"art-{model.replace('/', '-')}-{version}"
    files = dict(files) if files is not None else {"model.pt": f"{model} {version}".encode() * 50,
                                                   "metrics.json": b'{"auc": 0.5, "shipped_only": 1}'}
    if card is not None:
        files["model_card.md"] = card.encode()
    make_artifacts(art, files)
    mf = base / f"meta-{model.replace('/', '-')}-{version}.json"
    mf.write_text(json.dumps(meta))
    args = ["register", model, "--version", version, "--artifacts", str(art), "--metadata", str(mf), "--no-provenance"]
    for p in params:
        args += ["--param", p]
    run_omrw(*args, env=env, check=True)


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    base = tmp_path_factory.mktemp("search")
    env = _env(base)
    _register(base, env, "ct/pbmc", "v1",
              {"framework": "pytorch", "tags": ["pbmc", "human"], "description": "PBMC classifier",
               "metrics": {"auc": 0.91}}, ["lr=0.01", "epochs=10", "optim=adam"],
              card="# PBMC card\n\nTrained on leukocytemagic samples.\n")
    _register(base, env, "ct/pbmc", "v2",
              {"framework": "pytorch", "tags": ["pbmc"], "description": "PBMC classifier, retrained",
               "metrics": {"auc": 0.95}}, ["lr=0.02", "epochs=20", "optim=sgd"])
    _register(base, env, "ct/lung", "v1",
              {"framework": "sklearn", "tags": ["lung"], "description": "Lung atlas"}, ["lr=0.1", "epochs=9"],
              files={"model.pkl": b"lung" * 100, "metrics.json": b'{"auc": 0.85, "f1": 0.7}'})
    _register(base, env, "seg/nuclei", "v1", {"framework": "tensorflow", "code": "10"}, [],
              files={"weights.h5": b"nuclei" * 10})
    run_omrw("promote", "ct/pbmc@v2", "--to", "production", "--reason", "best auc", env=env, check=True)
    run_omrw("promote", "ct/lung@v1", "--to", "staging", env=env, check=True)
    run_omrw("promote", "ct/pbmc@v1", "--to", "canary", env=env, check=True)
    return base, env


def search(reg, *args, check=True):
    base, env = reg
    p = run_omrw("search", *args, "--json", env=env, check=check)
    return p


def refs(reg, *args):
    return [r["ref"] for r in search(reg, *args).json]


def test_every_operator(reg):
    assert refs(reg, "--where", "metrics.auc>=0.9") == ["ct/pbmc@v1", "ct/pbmc@v2"]
    assert refs(reg, "--where", "metrics.auc>0.91") == ["ct/pbmc@v2"]
    assert refs(reg, "--where", "metrics.auc<0.9") == ["ct/lung@v1"]
    assert refs(reg, "--where", "metrics.auc<=0.85") == ["ct/lung@v1"]
    assert refs(reg, "--where", "framework=pytorch") == ["ct/pbmc@v1", "ct/pbmc@v2"]
    assert refs(reg, "--where", "framework!=pytorch") == ["ct/lung@v1", "seg/nuclei@v1"]
    assert refs(reg, "--where", "tags~=PBM") == ["ct/pbmc@v1", "ct/pbmc@v2"]
    assert refs(reg, "--where", "framework in [sklearn,tensorflow]") == ["ct/lung@v1", "seg/nuclei@v1"]
    assert refs(reg, "--where", "metrics.f1 exists") == ["ct/lung@v1"]
    assert refs(reg, "--where", "params.optim=sgd") == ["ct/pbmc@v2"]
    # numbers compare as numbers: epochs 10 and 20 are > 9, the string "10" too
    assert refs(reg, "--where", "params.epochs>9") == ["ct/pbmc@v1", "ct/pbmc@v2"]
    assert refs(reg, "--where", "code>9") == ["seg/nuclei@v1"]
    assert refs(reg, "--where", "name=ct/lung") == ["ct/lung@v1"]
    assert refs(reg, "--where", "stage=production") == ["ct/pbmc@v2"]
    assert refs(reg, "--where", "alias=canary") == ["ct/pbmc@v1"]


def test_metrics_sources(reg):
    rows = {r["ref"]: r for r in search(reg).json}
    # model_meta.json metrics win over the shipped metrics.json, which fills the rest
    assert rows["ct/pbmc@v1"]["metrics"] == {"auc": 0.91, "shipped_only": 1}
    assert rows["ct/lung@v1"]["metrics"] == {"auc": 0.85, "f1": 0.7}
    assert rows["seg/nuclei@v1"]["metrics"] == {}


def test_several_where_are_anded(reg):
    assert refs(reg, "--where", "metrics.auc>=0.9", "--where", "params.lr<0.015") == ["ct/pbmc@v1"]
    assert refs(reg, "--where", "framework=pytorch", "--where", "framework=sklearn") == []


def test_free_text_names_descriptions_and_cards(reg):
    assert refs(reg, "leukocytemagic") == ["ct/pbmc@v1"]        # only in v1's model_card.md
    assert refs(reg, "atlas") == ["ct/lung@v1"]                  # description
    assert refs(reg, "TENSORFLOW") == ["seg/nuclei@v1"]          # a metadata value
    assert refs(reg, "nuclei") == ["seg/nuclei@v1"]              # the name
    assert refs(reg, "pbmc retrained") == ["ct/pbmc@v2"]         # every word must match
    assert refs(reg, "nosuchthing") == []
    rows = {r["ref"]: r for r in search(reg, "pbmc").json}
    assert rows["ct/pbmc@v1"]["has_card"] and not rows["ct/pbmc@v2"]["has_card"]


def test_stage_and_alias_filters(reg):
    assert refs(reg, "--stage", "staging") == ["ct/lung@v1"]
    assert refs(reg, "--stage", "development") == ["ct/pbmc@v1", "seg/nuclei@v1"]
    assert refs(reg, "--alias", "production") == ["ct/pbmc@v2"]
    assert refs(reg, "--alias", "latest") == ["ct/lung@v1", "ct/pbmc@v2", "seg/nuclei@v1"]
    assert refs(reg, "--alias", "latest", "--stage", "production") == ["ct/pbmc@v2"]


def test_sort_and_limit(reg):
    assert refs(reg, "--sort", "metrics.auc") == ["ct/lung@v1", "ct/pbmc@v1", "ct/pbmc@v2", "seg/nuclei@v1"]
    assert refs(reg, "--sort", "metrics.auc", "--desc") == ["ct/pbmc@v2", "ct/pbmc@v1", "ct/lung@v1",
                                                            "seg/nuclei@v1"]
    assert refs(reg, "--sort", "metrics.auc", "--desc", "--limit", "2") == ["ct/pbmc@v2", "ct/pbmc@v1"]
    assert refs(reg, "--sort", "name", "--limit", "1") == ["ct/lung@v1"]
    assert refs(reg, "--sort", "params.lr", "--desc", "--where", "params.lr exists") == [
        "ct/lung@v1", "ct/pbmc@v2", "ct/pbmc@v1"]


def test_json_rows_and_human_table(reg):
    base, env = reg
    row = search(reg, "--where", "stage=production").json[0]
    assert row["ref"] == "ct/pbmc@v2" and row["stage"] == "production"
    assert row["aliases"] == ["latest", "production"] and row["digest"].startswith("sha256:")
    assert row["params"]["epochs"] == 20 and row["meta"]["framework"] == "pytorch"
    p = run_omrw("search", "--where", "metrics.auc>=0.9", "--sort", "metrics.auc", env=env, check=True)
    assert "ct/pbmc@v2" in p.stdout and "metrics.auc" in p.stdout and "0.95" in p.stdout
    p = run_omrw("search", "nosuchthing", env=env, check=True)
    assert "no matching versions" in p.stdout


@pytest.mark.parametrize("args,needle", [
    (["--where", "metrics.auc>>0.9"], "--where 'metrics.auc>>0.9': unexpected '>' at position 12"),
    (["--where", "framework"], "expected an operator at position 9"),
    (["--where", "a in [1"], "at position 7"),
    (["--sort", "a b"], "--sort 'a b'"),
    (["--limit", "-1"], "--limit -1"),
])
def test_malformed_exits_2_with_one_line(reg, args, needle):
    base, env = reg
    p = run_omrw("search", *args, env=env)
    assert p.returncode == 2, p.stderr
    assert needle in p.stderr and p.stderr.count("\n") == 1


def test_compare(reg):
    base, env = reg
    p = run_omrw("compare", "ct/pbmc@v1", "ct/pbmc@production", "--json", env=env, check=True)
    data = p.json
    assert data["metrics.auc"] == {"ct/pbmc@v1": 0.91, "ct/pbmc@production": 0.95}
    assert data["params.optim"] == {"ct/pbmc@v1": "adam", "ct/pbmc@production": "sgd"}
    assert data["meta.framework"] == {"ct/pbmc@v1": "pytorch", "ct/pbmc@production": "pytorch"}
    assert {"metrics.auc", "params.lr", "params.epochs", "version", "digest", "stage"} <= set(data["differs"])
    assert "meta.framework" not in data["differs"] and "metrics.shipped_only" not in data["differs"]
    p = run_omrw("compare", "ct/pbmc@v1", "ct/pbmc@v2", "ct/lung@v1", env=env, check=True)
    assert "* metrics.auc" in p.stdout and "* meta.framework" in p.stdout
    assert "created_by" in p.stdout and "* created_by" not in p.stdout
    assert "keys differ" in p.stdout
    p = run_omrw("compare", "ct/pbmc@v1", "--json", env=env)
    assert p.returncode == 2
    p = run_omrw("compare", "ct/pbmc@v1", "ct/nope@v1", env=env)
    assert p.returncode == 3


def test_stale_index_is_refreshed_after_register(tmp_path):
    env = _env(tmp_path)
    _register(tmp_path, env, "ct/fresh", "v1", {"framework": "jax"}, ["lr=1"])
    first = run_omrw("search", "--where", "framework=jax", "--json", env=env, check=True).json
    assert [r["ref"] for r in first] == ["ct/fresh@v1"]
    index = list(Path(env["OMR_CACHE"]).glob("catalog/*/catalog-v1/*.json"))
    assert len(index) == 1
    mtime = index[0].stat().st_mtime_ns
    # an unchanged registry: the index is not rewritten
    run_omrw("search", "--json", env=env, check=True)
    assert index[0].stat().st_mtime_ns == mtime
    _register(tmp_path, env, "ct/fresh", "v2", {"framework": "jax", "note": "second"}, ["lr=2"])
    run_omrw("promote", "ct/fresh@v2", "--to", "production", env=env, check=True)
    rows = run_omrw("search", "--where", "framework=jax", "--json", env=env, check=True).json
    assert [(r["ref"], r["stage"]) for r in rows] == [("ct/fresh@v1", "development"), ("ct/fresh@v2", "production")]
    # a hand-edited index entry is not trusted over the log once the head moves
    data = json.loads(index[0].read_text())
    data["models"]["ct/fresh"]["versions"][0]["meta"]["framework"] = "forged"
    index[0].write_text(json.dumps(data))
    run_omrw("promote", "ct/fresh@v1", "--to", "staging", env=env, check=True)
    rows = run_omrw("search", "--where", "framework=forged", "--json", env=env, check=True).json
    assert rows == []
    # a damaged index is ignored and rebuilt
    index[0].write_text("{not json")
    rows = run_omrw("search", "--where", "framework=jax", "--json", env=env, check=True).json
    assert len(rows) == 2


def test_lagging_head_is_not_trusted(tmp_path):
    """A writer killed between its event and the head: the head still names the old tail, which
    the index has seen; the probe of event seq+1 makes the model be re-read through the log."""
    import hashlib

    env = _env(tmp_path)
    _register(tmp_path, env, "ct/lag", "v1", {"framework": "jax"}, [])
    assert [r["ref"] for r in run_omrw("search", "--json", env=env, check=True).json] == ["ct/lag@v1"]
    mdir = tmp_path / "registry" / "tasks" / "ct" / "models" / "lag" / "audit"
    old_head = (mdir / "head.json").read_bytes()
    _register(tmp_path, env, "ct/lag", "v2", {"framework": "jax"}, [])
    (mdir / "head.json").write_bytes(old_head)  # as if the head update after event 2 was lost
    head = json.loads(old_head)
    assert head["sha256"] == hashlib.sha256((mdir / "events" / f"{head['seq']:010d}.json").read_bytes()).hexdigest()
    rows = run_omrw("search", "--json", env=env, check=True).json
    assert [(r["ref"], r["aliases"]) for r in rows] == [("ct/lag@v1", []), ("ct/lag@v2", ["latest"])]


def test_a_model_the_log_refuses_is_left_out_with_a_warning(tmp_path):
    env = _env(tmp_path)
    _register(tmp_path, env, "ct/good", "v1", {"framework": "jax"}, [])
    _register(tmp_path, env, "ct/bad", "v1", {"framework": "jax"}, [])
    ev = tmp_path / "registry" / "tasks" / "ct" / "models" / "bad" / "audit" / "events" / "0000000001.json"
    ev.write_bytes(ev.read_bytes().replace(b'"register"', b'"adopt"'))  # the newest event edited: head disagrees
    p = run_omrw("search", "--json", env=env, check=True)
    assert [r["ref"] for r in p.json] == ["ct/good@v1"]
    assert "ct/bad left out" in p.stderr and "head and tail disagree" in p.stderr
