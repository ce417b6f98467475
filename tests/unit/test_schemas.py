"""The committed JSON Schemas are exactly what the pydantic models export."""

from __future__ import annotations

import json

import pytest

from omr_workflows import schemas


@pytest.mark.parametrize("name", sorted(schemas.FORMATS))
def test_committed_schema_is_current(name):
    path = schemas.SCHEMA_DIR / f"{name}.schema.json"
    assert path.exists(), f"run `omrw schema --write {schemas.SCHEMA_DIR}`"
    assert path.read_text() == schemas.render(name), f"{path} is stale: run `omrw schema --write {schemas.SCHEMA_DIR}`"
    assert json.loads(path.read_text())["type"] == "object"
