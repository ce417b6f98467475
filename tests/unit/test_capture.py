"""Register-time provenance (capture.py, envinfo.py): git state, datasets, params, environment,
and the invariant that none of it enters the package digest."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from omr_workflows import capture, envinfo
from omr_workflows.capture import Provenance, git_info, load_params, parse_dataset, redact_url
from omr_workflows.errors import InvalidInputError
from omr_workflows.registry import Registry
from tests.conftest import make_artifacts

HEX = "ab" * 32


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x",
           "HOME": str(cwd), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    r = tmp_path / "train"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "train.py").write_text("print('train')\n")
    git(r, "add", "train.py")
    git(r, "commit", "-q", "-m", "first")
    git(r, "remote", "add", "origin", "https://user:s3cr3t-token@git.example.org/lab/train.git")
    return r


# ---------------------------------------------------------------------- git
def test_git_commit_dirty_untracked_and_redacted_remote(repo):
    head = git(repo, "rev-parse", "HEAD")
    info = git_info(str(repo))
    assert info.commit == head and info.dirty is False and info.untracked == 0 and info.branch == "main"
    assert info.remote == "https://git.example.org/lab/train.git"  # the token never reaches model_meta.json
    assert info.root == str(repo)

    (repo / "notes.txt").write_text("untracked\n")
    info = git_info(str(repo / "."))
    assert info.dirty is False and info.untracked == 1

    (repo / "train.py").write_text("print('changed')\n")
    assert git_info(str(repo)).dirty is True
    git(repo, "add", "train.py")  # staged but not committed is still dirty
    assert git_info(str(repo)).dirty is True


def test_git_from_a_subfolder_and_outside_a_repository(repo, tmp_path):
    sub = repo / "src"
    sub.mkdir()
    assert git_info(str(sub)).commit == git(repo, "rev-parse", "HEAD")
    plain = tmp_path / "plain"
    plain.mkdir()
    assert git_info(str(plain)) is None


def test_git_repository_without_commits(tmp_path):
    r = tmp_path / "empty"
    r.mkdir()
    git(r, "init", "-q")
    info = git_info(str(r))
    assert info is not None and info.commit is None and info.remote is None


@pytest.mark.parametrize("url,expected", [
    ("https://user:tok@host/x.git", "https://host/x.git"),
    ("https://tok@host/x.git", "https://host/x.git"),
    ("git@github.com:org/x.git", "git@github.com:org/x.git"),
    ("ssh://git@host:22/x.git", "ssh://git@host:22/x.git"),
    ("ssh://git:pw@host/x.git", "ssh://git@host/x.git"),
])
def test_redact_url(url, expected):
    assert redact_url(url) == expected


# ---------------------------------------------------------------------- datasets
def test_dataset_references(tmp_path, monkeypatch):
    d = parse_dataset(f"s3://bucket/x.h5ad@sha256:{HEX}")
    assert (d.kind, d.uri, d.digest) == ("uri", "s3://bucket/x.h5ad", f"sha256:{HEX}")
    d = parse_dataset(f"s3://bucket/x.h5ad@sha256:{HEX.upper()}")
    assert d.digest == f"sha256:{HEX}"
    assert parse_dataset("https://example.org/data.csv").digest is None
    r = parse_dataset(f"omr://datasets/pbmc@sha256:{'c' * 64}")
    assert r.kind == "registry" and r.digest == f"sha256:{'c' * 64}"
    r = parse_dataset("omr://datasets/pbmc@production")
    assert r.kind == "registry" and r.uri == "omr://datasets/pbmc@production" and r.digest is None

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "pbmc.h5ad.dvc").write_text(
        "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  size: 1234\n  path: pbmc.h5ad\n")
    for ref in ("data/pbmc.h5ad.dvc", "data/pbmc.h5ad"):
        d = parse_dataset(ref)
        assert d.kind == "dvc" and d.dvc == {"md5": "0123456789abcdef0123456789abcdef", "size": 1234,
                                             "path": "pbmc.h5ad"}
    assert parse_dataset("data/other.csv").kind == "path"


@pytest.mark.parametrize("bad", ["", "   ", "s3://b/x@sha256:1234", "s3://b/x@sha256:" + "g" * 64, "@sha256:" + HEX,
                                 "s3://b/x@md5:0123456789abcdef0123456789abcdef", "omr://bad name/x"])
def test_bad_dataset_references(bad):
    with pytest.raises(InvalidInputError, match="dataset"):
        parse_dataset(bad)


# ---------------------------------------------------------------------- params
def test_load_params_yaml_json_and_errors(tmp_path):
    y = tmp_path / "p.yaml"
    y.write_text("lr: 0.01\nlayers: [64, 32]\nname: run1\n")
    assert load_params(str(y)) == {"lr": 0.01, "layers": [64, 32], "name": "run1"}
    j = tmp_path / "p.json"
    j.write_text(json.dumps({"epochs": 3}))
    assert load_params(str(j)) == {"epochs": 3}
    (tmp_path / "empty.yaml").write_text("")
    assert load_params(str(tmp_path / "empty.yaml")) == {}
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    for path, msg in ((tmp_path / "list.yaml", "mapping"), (tmp_path / "nope.yaml", "does not exist"),
                      (tmp_path, "folder")):
        with pytest.raises(InvalidInputError, match=msg):
            load_params(str(path))
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(InvalidInputError, match="not valid YAML"):
        load_params(str(tmp_path / "bad.yaml"))


# ---------------------------------------------------------------------- environment
def test_container_from_variables_and_marker_files(tmp_path):
    assert envinfo.container({"APPTAINER_CONTAINER": "/img/x.sif"}, root=str(tmp_path)) == \
        envinfo.Container(runtime="apptainer", image="/img/x.sif")
    assert envinfo.container({"SINGULARITY_NAME": "x.sif"}, root=str(tmp_path)).runtime == "singularity"
    c = envinfo.container({"CONTAINER_IMAGE": "ghcr.io/lab/train:1.2"}, root=str(tmp_path))
    assert c.image == "ghcr.io/lab/train:1.2" and c.runtime == "unknown"
    assert envinfo.container({}, root=str(tmp_path)) is None
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".containerenv").write_text('engine="podman"\nimage="quay.io/lab/img:3"\n')
    assert envinfo.container({}, root=str(tmp_path)) == envinfo.Container(runtime="podman", image="quay.io/lab/img:3")
    (tmp_path / "run" / ".containerenv").unlink()
    (tmp_path / ".dockerenv").write_text("")
    assert envinfo.container({}, root=str(tmp_path)).runtime == "docker"


def test_accelerator_without_importing_torch(tmp_path):
    import sys

    assert "torch" not in sys.modules
    assert envinfo.accelerator({}, {}, proc_root=str(tmp_path)) is None
    acc = envinfo.accelerator({"CUDA_VERSION": "12.4.1", "CUDNN_VERSION": "9.1.0"}, {}, proc_root=str(tmp_path))
    assert (acc.cuda, acc.cudnn, acc.source) == ("12.4.1", "9.1.0", "env")
    drv = tmp_path / "driver" / "nvidia"
    drv.mkdir(parents=True)
    (drv / "version").write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar 5 2024\n")
    assert envinfo.accelerator({}, {"nvidia-cudnn-cu12": "9.1.0.70"}, proc_root=str(tmp_path)).driver == "550.54.15"
    assert "torch" not in sys.modules


def test_torch_cuda_read_from_its_files_not_imported(tmp_path, monkeypatch):
    import sys

    fake = tmp_path / "site" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise RuntimeError('torch must not be imported')\n")
    (fake / "version.py").write_text("__version__ = '2.3.0'\ncuda: Optional[str] = '12.1'\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    acc = envinfo.accelerator({}, {}, proc_root=str(tmp_path))
    assert acc.cuda == "12.1" and acc.source == "torch-files"
    assert "torch" not in sys.modules


def test_environment_digest_covers_software_not_the_node():
    env = envinfo.collect()
    assert env.digest == envinfo.environment_digest(env) and env.digest.startswith("sha256:")
    assert env.python and env.packages.get("pydantic")
    same_software_other_node = env.model_copy(update={"platform": "Linux-9.9-other-kernel"})
    assert envinfo.environment_digest(same_software_other_node) == env.digest
    newer_numpy = env.model_copy(update={"packages": {**env.packages, "numpy": "99.0"}})
    assert envinfo.environment_digest(newer_numpy) != env.digest
    other_image = env.model_copy(update={"container": envinfo.Container(runtime="apptainer", image="b.sif")})
    assert envinfo.environment_digest(other_image) != env.digest


# ---------------------------------------------------------------------- capture
def test_capture_is_a_valid_provenance_record(repo, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("lr: 0.1\n")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "model.py").write_text("W = 1\n")
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    prov = capture.capture(code_dir=str(repo), datasets=[f"s3://b/x@sha256:{HEX}"],
                           code_paths=[str(tmp_path / "code")], data_paths=[str(data)], params_file=str(params),
                           creator="alice@node1")
    json.dumps(prov)  # JSON-ready, as model_meta.json stores it
    model = Provenance.model_validate(prov)
    assert model.git.commit == git(repo, "rev-parse", "HEAD") and model.creator == "alice@node1"
    assert model.datasets[0].digest == f"sha256:{HEX}"
    assert model.params_file.sha256 == __import__("hashlib").sha256(params.read_bytes()).hexdigest()
    kinds = [(d.kind, d.shape) for d in model.dependencies.items]
    assert kinds == [("code", "tree"), ("data", "file")]
    assert model.dependencies.digest.startswith("sha256:")
    assert model.environment.digest.startswith("sha256:")
    # The dependency digest ignores where the code lives and how it is formatted.
    (tmp_path / "code" / "model.py").write_text("# the weight\nW = (1)\n")
    again = Provenance.model_validate(capture.capture(code_dir=str(repo), code_paths=[str(tmp_path / "code")],
                                                      data_paths=[str(data)]))
    assert again.dependencies.digest == model.dependencies.digest


def test_capture_bad_inputs(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        capture.capture(code_dir=str(tmp_path / "missing"))
    with pytest.raises(InvalidInputError, match="code dependency"):
        capture.capture(code_dir=str(tmp_path), code_paths=[str(tmp_path / "nope.py")])
    with pytest.raises(InvalidInputError, match="dataset"):
        capture.capture(code_dir=str(tmp_path), datasets=["s3://x@sha256:12"])


def test_environment_never_enters_the_package_digest(tmp_path, monkeypatch):
    """DESIGN 2.4 + 7: the same bytes registered from two environments pin identically."""
    reg = Registry(str(tmp_path / "registry"))
    pkg = make_artifacts(tmp_path / "pkg")
    real = envinfo.collect

    def fake_env(**changes):
        def collect(*args, **kwargs):
            env = real(*args, **kwargs).model_copy(update=changes)
            return env.model_copy(update={"digest": envinfo.environment_digest(env)})
        return collect

    environments = {
        "v1": fake_env(python="3.10.1", container=envinfo.Container(runtime="apptainer", image="a.sif")),
        "v2": fake_env(python="3.12.9", packages={"torch": "2.3.0"},
                       accelerator=envinfo.Accelerator(cuda="12.1", cudnn="9.1", source="torch")),
    }
    results = []
    for version, collect in environments.items():
        monkeypatch.setattr(envinfo, "collect", collect)
        prov = capture.capture(code_dir=str(tmp_path))
        results.append((reg.register("cls", "m", version, pkg, provenance=prov), prov))
    (r1, p1), (r2, p2) = results
    assert p1["environment"]["digest"] != p2["environment"]["digest"]
    assert p1["environment"]["python"] == "3.10.1" and p2["environment"]["python"] == "3.12.9"
    assert r1.digest == r2.digest
    # The recorded environments really are in the published model_meta.json files.
    for version, prov in (("v1", p1), ("v2", p2)):
        meta = json.loads((Path(r1.package_path).parent / version / "model_meta.json").read_text())
        assert meta["provenance"]["environment"]["digest"] == prov["environment"]["digest"]
    # ...and strict verification of both still passes.
    reg.verify_version("cls", "m", "v1", "strict")
    reg.verify_version("cls", "m", "v2", "strict")
