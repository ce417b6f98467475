"""The fast readers agree with the pydantic models on every file: same verdict, same data, same exit code.

Every committed schema example, each with every field deleted, replaced by hostile values or
joined by an unknown one, and byte-level damage (BOM, truncation, NaN, lone surrogates, not
UTF-8, deep nesting). Every file the rest of the suite writes is checked the same way by the
session fixture in `tests/conftest.py`.
"""

from __future__ import annotations

import json

import pytest

from omr_workflows import fastread
from omr_workflows.registry import Registry
from omr_workflows.results import ResolveResult
from tests.conftest import make_artifacts
from tests.formats_agree import EXAMPLES as EXAMPLE_DIR
from tests.formats_agree import (MODELS, RAW_MUTATIONS, disagreement, example_files, fast_verdict, format_of,
                                 mutations)

EXAMPLES = example_files()


def test_every_fast_format_has_examples():
    assert {fmt for fmt, _ in EXAMPLES} == set(MODELS)


@pytest.mark.parametrize("fmt,path", EXAMPLES, ids=[f"{f}/{p.name}" for f, p in EXAMPLES])
def test_example_and_its_mutations_read_the_same(fmt, path):
    data = path.read_bytes()
    assert fast_verdict(fmt, data)[0] == "ok", f"{path} is not a valid example"
    problems = [d for d in [disagreement(fmt, data)] if d]
    doc = json.loads(data)
    count = 0
    for variant in mutations(doc):
        count += 1
        d = disagreement(fmt, json.dumps(variant).encode())
        if d:
            problems.append(d)
    for damage in RAW_MUTATIONS:
        d = disagreement(fmt, damage(data))
        if d:
            problems.append(d)
    assert count > 20
    assert not problems, "\n".join(problems[:10])


def test_rejections_carry_the_models_exit_codes():
    manifest = json.loads((EXAMPLE_DIR / "omr_manifest/local.json")
                          .read_text())
    manifest["content"]["files"][0]["path"] = "../outside"
    assert fast_verdict("omr_manifest", json.dumps(manifest).encode()) == ("bad", 2)  # unsafe: bad input
    manifest["content"]["files"][0]["path"] = "omr_manifest.json"
    assert fast_verdict("omr_manifest", json.dumps(manifest).encode()) == ("bad", 1)  # damaged: integrity
    assert fast_verdict("audit_event", b'{"seq": "1"}') == ("bad", 1)


def test_strings_numbers_and_names_are_strict():
    good = json.loads((EXAMPLE_DIR / "audit_head/head.json").read_text())
    assert fastread.read("audit_head", json.dumps(good)) == good
    for bad in ({**good, "seq": "1"}, {**good, "seq": 1.0}, {**good, "seq": True}, {**good, "sha256": good["sha256"] + "\n"},
                {**good, "seq": 0}, {**good, "seq": 10**10}, {**good, "x": 1}):
        with pytest.raises(fastread.FormatError):
            fastread.read("audit_head", json.dumps(bad))


def test_docs_are_read_like_models():
    ev = fastread.read("audit_event", (EXAMPLE_DIR / "audit_event/rich.json")
                       .read_bytes())
    assert ev.requests["7"].approvals[0].actor == "c@d"
    assert ev.origin.anchor.seq == 1
    assert ev.lifecycle["v2"].describe("cls/m@v2").startswith("cls/m@v2 was deprecated on ")
    with pytest.raises(AttributeError):
        ev.no_such_field


def test_resolve_fields_is_the_resolve_result(local_registry, tmp_path):
    reg = Registry(local_registry)
    reg.register("cls", "m", "v1", make_artifacts(tmp_path / "pkg"))
    reg.promote("cls/m@v1", "production")
    for ref in ("cls/m@production", "cls/m@v1", "cls/m@latest#model.pt"):
        fields = reg.resolve_fields(ref)
        assert fields == ResolveResult.model_validate(fields).model_dump(mode="json")
        assert fields == reg.resolve(ref).model_dump(mode="json")


def test_format_of_knows_the_layout(local_registry, tmp_path):
    reg = Registry(local_registry)
    reg.register("cls", "m", "v1", make_artifacts(tmp_path / "pkg"))
    from pathlib import Path

    found = {format_of(p) for p in Path(local_registry).rglob("*.json")}
    assert set(MODELS) <= found
