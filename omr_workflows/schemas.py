"""JSON Schemas of every file format, exported from the pydantic models (their single definition).

`omrw schema --write DIR` regenerates the committed copies in `omr_workflows/schemas/`;
a test keeps them equal to the models.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

# file format name -> "module:Model"
FORMATS = {
    "omr_manifest": "omr_workflows.manifest:Manifest",
    "model_meta": "omr_workflows.meta:ModelMeta",
    "alias": "omr_workflows.events:AliasPointer",
    "audit_event": "omr_workflows.events:Event",
    "audit_head": "omr_workflows.events:Head",
    "audit_anchor": "omr_workflows.events:AnchorPointer",
    "resolve_result": "omr_workflows.registry:ResolveResult",
    "register_result": "omr_workflows.registry:RegisterResult",
    "provenance": "omr_workflows.capture:Provenance",
    "lock": "omr_workflows.lockfile:LockFile",
    "run_record": "omr_workflows.runrecord:RunRecord",
    "provenance_report": "omr_workflows.provenance:ProvenanceReport",
    "verify_plan": "omr_workflows.verify.report:Plan",
    "verify_shard_report": "omr_workflows.verify.report:ShardReport",
    "verify_merged_report": "omr_workflows.verify.report:MergedReport",
    "policy": "omr_workflows.policy:Policy",
    "trust": "omr_workflows.policy:TrustRoot",
    "hooks": "omr_workflows.hooks:HooksConfig",
    "bundle_index": "omr_workflows.bundle.index:BundleIndex",
}

SCHEMA_DIR = Path(__file__).parent / "schemas"


def _model(spec: str):
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def schema(name: str) -> dict:
    out = _model(FORMATS[name]).model_json_schema(by_alias=True)
    out["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    out["$id"] = f"https://omr-workflows.invalid/schemas/{name}.schema.json"
    return out


def render(name: str) -> str:
    return json.dumps(schema(name), indent=2, sort_keys=True) + "\n"


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in FORMATS:
        path = directory / f"{name}.schema.json"
        path.write_text(render(name))
        paths.append(path)
    return paths
