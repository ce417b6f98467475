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
