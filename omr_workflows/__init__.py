"""omr-workflows: an immutable, audited model registry for Snakemake and Nextflow pipelines.

Names are loaded lazily so that `import omr_workflows` (and `omrw` start-up) stays cheap:
pydantic, fsspec and rich load only when a function that needs them runs.
"""

from __future__ import annotations

__all__ = [
    "Registry", "register_model", "resolve_model", "promote_model", "verify_model_ref",
    "parse_ref", "Ref", "OmrError", "IntegrityError", "InvalidInputError", "NotFoundError",
    "ConflictError", "StorageError",
]

_LAZY = {
    "Registry": "registry",
    "register_model": "compat",
    "resolve_model": "compat",
    "promote_model": "compat",
    "verify_model_ref": "compat",
    "parse_ref": "refs",
    "Ref": "refs",
    "OmrError": "errors",
    "IntegrityError": "errors",
    "InvalidInputError": "errors",
    "NotFoundError": "errors",
    "ConflictError": "errors",
    "StorageError": "errors",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
