"""`omrw compare REF REF [REF...]`: metrics, params and metadata of versions side by side.

Each reference is resolved through `Registry.resolve` (the log decides which version it is);
the values come from the same per-version reader the catalog index uses
(`catalog.index.version_record`), so compare, search and the catalog agree. Keys are
`metrics.X`, `params.X`, `meta.X` (nested objects flattened with dots) plus `version`,
`stage`, `aliases`, `digest`, `size`, `created_at`; a key a version lacks has value None.
"""

from __future__ import annotations

import json
from typing import Any

from .catalog.index import _flat, version_record
from .errors import InvalidInputError
from .refs import parse_ref

_OWN_META = ("task", "model_name", "version", "created_at")
BASE_KEYS = ("version", "stage", "aliases", "digest", "size", "created_at", "created_by")


def _norm(v: Any) -> str:
    return json.dumps(v, sort_keys=True, ensure_ascii=False, default=str)


def compare(reg, refs: list[str]) -> dict:
    """{"refs": [...], "values": {key: {ref: value}}, "differs": [keys]} in a stable key order."""
    if len(refs) < 2:
        raise InvalidInputError("compare needs at least two references")
    labels: list[str] = []
    records: dict[str, dict] = {}
    for text in refs:
        r = parse_ref(text)
        res = reg.resolve(r, materialize=False)
        v = reg.version(res.task, res.model, res.version, require_anchor=False)
        rec = version_record(reg, res.task, res.model, v, reg.state(res.task, res.model))
        label = str(text)
        n = 2
        while label in records:
            label = f"{text} ({n})"
            n += 1
        labels.append(label)
        records[label] = rec
    keys: list[str] = list(BASE_KEYS)
    flat: dict[str, dict[str, Any]] = {}
    for label, rec in records.items():
        f: dict[str, Any] = {k: rec.get(k) for k in BASE_KEYS}
        for section in ("metrics", "params", "meta"):
            data = rec.get(section) or {}
            if section == "meta":  # the keys omrw writes itself are the base keys above
                data = {k: v for k, v in data.items() if k not in _OWN_META}
            for k, val in _flat(data).items():
                f[f"{section}.{k}"] = val
        flat[label] = f
    extra = sorted({k for f in flat.values() for k in f if k not in BASE_KEYS},
                   key=lambda k: (("metrics.", "params.", "meta.").index(k.split(".", 1)[0] + "."), k))
    keys += extra
    values = {k: {label: flat[label].get(k) for label in labels} for k in keys}
    differs = [k for k in keys if len({_norm(v) for v in values[k].values()}) > 1]
    return {"refs": labels, "values": values, "differs": differs}
