"""Shared fixtures: isolation of HOME/caches/registry variables, temp registries (local and
S3 on a real moto server on 127.0.0.1), artifact factories and an `omrw` subprocess runner.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OMRW = [sys.executable, "-m", "omr_workflows.cli.main"]
ISOLATED_VARS = ("OMR_REGISTRY", "OMNIBIOAI_MODEL_REGISTRY_ROOT", "OMR_CACHE", "OMR_VERIFY", "OMR_DEMOTE_TO",
                 "OMR_RUN_DIR", "OMR_ENGINE", "OMR_DEBUG", "OMR_ACTOR", "OMR_TRUST", "OMR_SIGNING_KEY", "OMR_HOOKS",
                 "OMR_KEY_PASSPHRASE")


@pytest.fixture(scope="session", autouse=True)
def _fast_readers_agree_on_every_file_written(tmp_path_factory):
    """After the session: every head, event, anchor, alias pointer and manifest any test wrote
    (hostile ones included) gets the same verdict from `fastread` and from its pydantic model."""
    yield
    from tests.formats_agree import check_tree

    checked, problems = check_tree(tmp_path_factory.getbasetemp())
    assert not problems, f"{len(problems)} of {checked} files read differently:\n" + "\n".join(problems[:10])


@pytest.fixture(autouse=True)
def _isolate(tmp_path_factory, monkeypatch):
    """Every test gets its own HOME, XDG dirs and cache, and no registry variables."""
    home = tmp_path_factory.mktemp("home")
    for var in ISOLATED_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("OMR_CACHE", str(home / "omr-cache"))
    yield


@pytest.fixture
def local_registry(tmp_path) -> str:
    return str(tmp_path / "registry")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API (moto's server) on 127.0.0.1, started and stopped here."""
    pytest.importorskip("moto.server", reason="moto[server] not installed")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "FSSPEC_S3_ENDPOINT_URL": endpoint,
    }
    yield {"endpoint": endpoint, "env": env}
    server.stop()


@pytest.fixture
def s3_registry(s3_server, monkeypatch) -> str:
    """A fresh bucket on the moto server; returns its `s3://` registry URL."""
    import boto3

    for k, v in s3_server["env"].items():
        monkeypatch.setenv(k, v)
    try:
        import fsspec.config

        monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": s3_server["endpoint"]})
    except ImportError:
        pass
    bucket = f"reg-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server["endpoint"]).create_bucket(Bucket=bucket)
    try:
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
    except ImportError:
        pass
    return f"s3://{bucket}/registry"


@pytest.fixture(params=["local", "s3"])
def any_registry(request) -> str:
    """Run a test once on a local registry and once on S3 (moto server)."""
    if request.param == "local":
        return request.getfixturevalue("local_registry")
    return request.getfixturevalue("s3_registry")


def make_artifacts(root: Path, files: dict[str, bytes] | None = None, seed: str = "a") -> Path:
    """A small model package (omnibioai-model-registry's required files + a nested one)."""
    root.mkdir(parents=True, exist_ok=True)
    files = files if files is not None else {
        "model.pt": (seed * 3000).encode(),
        "model_genes.txt": b"CD3E\nCD4\nCD8A\nMS4A1\n",
        "label_map.json": b'{"0": "T", "1": "B"}',
        "metrics.json": b'{"auc": 0.97}',
        "feature_schema.json": b'{"n_genes": 4}',
        "extra/notes.txt": f"seed {seed}\n".encode(),
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


@pytest.fixture
def artifacts(tmp_path) -> Path:
    return make_artifacts(tmp_path / "pkg")


def run_omrw(*args: str, registry: str | None = None, env: dict | None = None, check: bool | None = None,
             cwd: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real `omrw` in a fresh interpreter; parse stdout as JSON when --json is given."""
    full_env = dict(os.environ)
    if registry:
        full_env["OMR_REGISTRY"] = registry
    full_env.update(env or {})
    proc = subprocess.run([*OMRW, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout)
    proc.json = None  # type: ignore[attr-defined]
    if "--json" in args and proc.stdout.strip():
        try:
            proc.json = json.loads(proc.stdout)  # type: ignore[attr-defined]
        except ValueError:
            pass
    if check is True and proc.returncode != 0:
        raise AssertionError(f"omrw {' '.join(args)} exited {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}")
    return proc


@pytest.fixture
def omrw():
    return run_omrw
