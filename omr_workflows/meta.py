"""`model_meta.json`: metadata and provenance of a version, written by `omrw register`.

The keys omnibioai-model-registry 0.1.x writes (`task`, `model_name`, `version`,
`created_at`) come first; user metadata from `--metadata` is kept as given (extra keys);
our provenance sits under `provenance`. This file is a sidecar: verified like every file
but outside the package digest (see manifest.py).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ModelMeta(BaseModel):
    model_config = ConfigDict(extra="allow")

    task: str
    model_name: str
    version: str
    created_at: str
    created_by: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="hyperparameters (--params/--param)")
    provenance: dict[str, Any] | None = Field(
        default=None, description="code, data and environment provenance (see provenance.py)"
    )


def check_fields(data: dict[str, Any], where: str) -> dict[str, Any]:
    """Type-check the `ModelMeta` fields that `data` carries (a shipped model_meta.json or
    `--metadata`), before omrw merges its own values over them.

    A wrong type is refused even for a field omrw overwrites: the input is wrong, and saying
    so beats storing a silently different value. Raises InvalidInputError naming the field.
    """
    from .errors import InvalidInputError, validation_detail

    known = {k: data[k] for k in ModelMeta.model_fields if k in data}
    try:
        _partial_model().model_validate(known)
    except ValueError as e:
        raise InvalidInputError(f"{where}: invalid field {validation_detail(e)}", obj=where) from None
    return data


_PARTIAL = None


def _partial_model() -> type[BaseModel]:
    """ModelMeta with every field optional (its types, no defaults)."""
    global _PARTIAL
    if _PARTIAL is None:
        from pydantic import create_model

        fields = {name: (f.annotation | None, None) for name, f in ModelMeta.model_fields.items()}
        _PARTIAL = create_model("ModelMetaFields", **fields)
    return _PARTIAL
