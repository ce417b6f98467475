"""Register-time provenance capture (git, datasets, environment, code/data digests).

Minimal first version; extended by the provenance work (issue 4).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from typing import Any

from .errors import InvalidInputError


def load_params(path: str) -> dict[str, Any]:
    """Hyperparameters from a YAML or JSON file (must hold a mapping)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise InvalidInputError(f"params file {path!r} does not exist") from None
    except yaml.YAMLError as e:
        raise InvalidInputError(f"params file {path!r} is not valid YAML/JSON: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInputError(f"params file {path!r} must hold a mapping of names to values")
    return data


def _git(code_dir: str, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", code_dir, *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def capture(code_dir: str | None = None, datasets: list[str] = (), code_paths: list[str] = (),
            data_paths: list[str] = ()) -> dict[str, Any]:
    code_dir = code_dir or os.getcwd()
    commit = _git(code_dir, "rev-parse", "HEAD")
    git = None
    if commit:
        git = {"commit": commit, "dirty": bool(_git(code_dir, "status", "--porcelain")),
               "remote": _git(code_dir, "remote", "get-url", "origin")}
    return {
        "git": git,
        "datasets": list(datasets),
        "environment": {"python": sys.version.split()[0], "platform": platform.platform()},
    }
