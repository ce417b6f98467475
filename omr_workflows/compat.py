"""The omnibioai-model-registry 0.1.x Python entry points, with the same signatures.

Code written against `omnibioai_model_registry.register_model/resolve_model/promote_model`
can switch its import to `omr_workflows` and gain audited promotion, full manifests and
any fsspec storage. The registry comes from the usual chain (`OMR_REGISTRY`, then
`OMNIBIOAI_MODEL_REGISTRY_ROOT`, then the local default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from .errors import IntegrityError


def _registry():
    from .registry import Registry

    return Registry()


def register_model(
    task: str,
    model_name: str,
    version: str,
    artifacts_dir: str | Path,
    metadata: Dict[str, Any],
    set_alias: Optional[str] = "latest",
    actor: Optional[str] = None,
    reason: Optional[str] = None,
) -> Dict[str, Any]:
    """Register a version; returns the same keys as omnibioai's (plus digest and uri)."""
    extra = [set_alias] if set_alias and set_alias != "latest" else []
    res = _registry().register(task, model_name, version, artifacts_dir, metadata=metadata,
                               aliases=extra, set_latest=set_alias == "latest", actor=actor, reason=reason)
    out = res.model_dump()
    out["alias_set"] = set_alias
    return out


def resolve_model(task: str, model_ref: str, verify: bool = True) -> str:
    """Return the local path of `model_name@selector` in `task`, verified (strict) by default."""
    name, _, selector = model_ref.partition("@")
    ref = f"{task}/{name.strip()}" + (f"@{selector.strip()}" if selector else "")
    return _registry().resolve(ref, verify="strict" if verify else "none").path


def promote_model(
    task: str,
    model_name: str,
    alias: str,
    version: str,
    actor: Optional[str] = None,
    reason: Optional[str] = None,
) -> None:
    _registry().promote(f"{task}/{model_name}@{version}", alias, actor=actor, reason=reason)


def verify_model_ref(task: str, model_ref: str) -> None:
    resolve_model(task, model_ref, verify=True)


__all__ = ["register_model", "resolve_model", "promote_model", "verify_model_ref", "IntegrityError"]
