"""The software environment a model was trained in, and its digest.

Captured at register time into `model_meta.json` (`provenance.environment`). It describes,
it does not identify content: model_meta.json is a sidecar, so nothing here ever enters the
package digest (manifest.py) and two registrations of the same bytes from different
environments pin identically.

The environment digest (`digest`) covers what makes two environments "the same software":
python version and implementation, OS and architecture, libc, the versions of the packages
in `KEY_PACKAGES` that are installed, CUDA/cuDNN, and the container image. It leaves out
what differs between identical nodes of a cluster (host name, kernel build: only in
`platform`, which is recorded but not digested).

CUDA is found without importing torch: if torch is already imported we ask it, otherwise we
read the CUDA version torch was built with from `torch/version.py` as text, cuDNN from the
`nvidia-cudnn-cu*` wheels' metadata, the driver from `/proc/driver/nvidia/version`, and
`CUDA_VERSION`/`CUDNN_VERSION` set by NVIDIA's container images.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
from pathlib import Path
from typing import Mapping

from pydantic import BaseModel, ConfigDict, Field

ENV_DOMAIN = b"omr-env-v1\0"

KEY_PACKAGES = (
    "numpy", "scipy", "pandas", "scikit-learn", "torch", "torchvision", "torchaudio", "lightning",
    "pytorch-lightning", "tensorflow", "keras", "jax", "jaxlib", "flax", "transformers", "xgboost", "lightgbm",
    "catboost", "onnx", "onnxruntime", "anndata", "scanpy", "scvi-tools", "celltypist", "h5py", "pydantic",
    "omr-workflows",
)

CONTAINER_VARS = (  # (variable, runtime): the first one set names the image
    ("APPTAINER_CONTAINER", "apptainer"),
    ("APPTAINER_NAME", "apptainer"),
    ("SINGULARITY_CONTAINER", "singularity"),
    ("SINGULARITY_NAME", "singularity"),
    ("CONTAINER_IMAGE", None),
)


class Container(BaseModel):
    model_config = ConfigDict(extra="forbid")

    runtime: str | None = Field(default=None, description="apptainer, singularity, docker, podman, or unknown")
    image: str | None = Field(default=None, description="image name, path or reference, when the runtime says")


class Accelerator(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cuda: str | None = Field(default=None, description="CUDA toolkit version (torch build or $CUDA_VERSION)")
    cudnn: str | None = None
    driver: str | None = Field(default=None, description="NVIDIA driver version on this node")
    source: str = Field(description="where the versions came from: torch, torch-files, env, none")


class Environment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    python: str
    implementation: str
    system: str
    machine: str
    libc: str | None = None
    platform: str = Field(description="full platform string (kernel build included); not digested")
    packages: dict[str, str] = Field(default_factory=dict, description="installed KEY_PACKAGES -> version")
    accelerator: Accelerator | None = None
    container: Container | None = None
    digest: str = Field(default="", description="sha256 over everything above except `platform` and the driver")


def environment_digest(env: Environment) -> str:
    """sha256 over the identifying fields (see module docstring), domain separated."""
    data = env.model_dump(mode="json", exclude={"platform", "digest"})
    if data.get("accelerator"):
        data["accelerator"].pop("driver", None)  # differs between otherwise identical nodes
        data["accelerator"].pop("source", None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return "sha256:" + hashlib.sha256(ENV_DOMAIN + text).hexdigest()


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def package_versions(names=KEY_PACKAGES) -> dict[str, str]:
    """Versions of the installed packages among `names`, from their metadata (nothing is imported)."""
    from importlib import metadata

    out: dict[str, str] = {}
    for name in names:
        try:
            out[_norm(name)] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        except Exception:  # a broken dist-info must not stop a registration
            continue
    return dict(sorted(out.items()))


def _torch_cuda_from_files() -> str | None:
    import ast
    import importlib.util

    try:
        spec = importlib.util.find_spec("torch")  # locates, does not import
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    version_py = Path(spec.origin).with_name("version.py")
    try:
        tree = ast.parse(version_py.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == "cuda" and isinstance(node.value, ast.Constant):
            return str(node.value.value) if node.value.value else None
    return None


def accelerator(environ: Mapping[str, str] | None = None, packages: dict[str, str] | None = None,
                proc_root: str = "/proc") -> Accelerator | None:
    environ = os.environ if environ is None else environ
    cuda = cudnn = None
    source = "none"
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            cuda = torch.version.cuda
            v = torch.backends.cudnn.version() if cuda else None
            cudnn = str(v) if v else None
            source = "torch"
        except Exception:
            pass
    if cuda is None:
        cuda = _torch_cuda_from_files()
        source = "torch-files" if cuda else source
    if cudnn is None:
        for name, version in (packages or {}).items():
            if name.startswith("nvidia-cudnn-cu"):
                cudnn = version
    if cuda is None and environ.get("CUDA_VERSION"):
        cuda, source = environ["CUDA_VERSION"], "env"
    if cudnn is None and environ.get("CUDNN_VERSION"):
        cudnn = environ["CUDNN_VERSION"]
    driver = None
    try:
        first = Path(proc_root, "driver/nvidia/version").read_text().splitlines()[0]
        m = re.search(r"Kernel Module\s+([0-9][0-9.]*)", first)
        driver = m.group(1) if m else first.strip()
    except (OSError, IndexError):
        pass
    if not (cuda or cudnn or driver):
        return None
    return Accelerator(cuda=cuda, cudnn=cudnn, driver=driver, source=source)


def container(environ: Mapping[str, str] | None = None, root: str = "/") -> Container | None:
    """The container this process runs in: variables first, then the runtimes' marker files."""
    environ = os.environ if environ is None else environ
    for var, runtime in CONTAINER_VARS:
        value = environ.get(var, "").strip()
        if value:
            return Container(runtime=runtime or environ.get("CONTAINER_RUNTIME", "").strip() or "unknown",
                             image=value)
    podman = Path(root, "run/.containerenv")
    try:
        text = podman.read_text()
        m = re.search(r'^image="([^"]*)"', text, re.M)
        return Container(runtime="podman", image=(m.group(1) if m else None) or None)
    except OSError:
        pass
    if Path(root, ".dockerenv").exists():
        return Container(runtime="docker", image=None)
    return None


def collect(packages=KEY_PACKAGES, environ: Mapping[str, str] | None = None) -> Environment:
    """Describe this process's environment; cheap (no heavy imports, no subprocesses)."""
    versions = package_versions(tuple(packages) + ("nvidia-cudnn-cu12", "nvidia-cudnn-cu11"))
    cudnn_wheels = {k: v for k, v in versions.items() if k.startswith("nvidia-cudnn")}
    versions = {k: v for k, v in versions.items() if not k.startswith("nvidia-cudnn")}
    libc_name, libc_version = platform.libc_ver()
    env = Environment(
        python=platform.python_version(),
        implementation=platform.python_implementation(),
        system=platform.system(),
        machine=platform.machine(),
        libc=f"{libc_name} {libc_version}".strip() or None,
        platform=platform.platform(),
        packages=versions,
        accelerator=accelerator(environ, cudnn_wheels),
        container=container(environ),
    )
    return env.model_copy(update={"digest": environment_digest(env)})
