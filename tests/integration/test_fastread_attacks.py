"""Attacks on the pydantic-free read path, by a group member who can write the registry.

Each rewrites a file resolve reads and, where the log has one, re-points `head.json` at the
forged bytes, so that the strict reading of the format is the only thing in the way. Resolve
must refuse with one line and its exit code, print no path, and leave the files as they were.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from omr_workflows.registry import Registry
from tests.conftest import make_artifacts, run_omrw


def _setup(local_registry, tmp_path) -> Path:
    reg = Registry(local_registry)
    reg.register("cls", "m", "v1", make_artifacts(tmp_path / "pkg"))
    reg.promote("cls/m@v1", "production")
    return Path(local_registry) / "tasks/cls/models/m"


def _forge_tail(mdir: Path, edit) -> bytes:
    """Rewrite the newest event with `edit(text)` and re-point head.json at it, as a writer would."""
    head = json.loads((mdir / "audit/head.json").read_text())
    path = mdir / f"audit/events/{head['seq']:010d}.json"
    data = edit(path.read_text()).encode()
    path.write_bytes(data)
    (mdir / "audit/head.json").write_text(json.dumps({"seq": head["seq"], "sha256": hashlib.sha256(data).hexdigest()}))
    return data


def _refused(local_registry, ref: str, code: int) -> str:
    proc = run_omrw("resolve", ref, registry=local_registry)
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    return proc.stderr


def test_alias_pointed_outside_the_root_by_a_forged_tail_is_refused(local_registry, tmp_path):
    mdir = _setup(local_registry, tmp_path)
    forged = _forge_tail(mdir, lambda t: t.replace('"production":{"seq":2,"version":"v1"}',
                                                   '"production":{"seq":2,"version":"../../../../etc"}'))
    assert b"../../../../etc" in forged
    err = _refused(local_registry, "cls/m@production", 1)
    assert "damaged" in err and "/etc" not in err.split("damaged")[0]


def test_values_pydantic_lax_mode_would_coerce_are_damage(local_registry, tmp_path):
    mdir = _setup(local_registry, tmp_path)
    # "2" for 2: the old lax reading took it; the strict one, like the committed schema, does not.
    forged = _forge_tail(mdir, lambda t: t.replace('"production":{"seq":2,', '"production":{"seq":"2",'))
    assert b'"seq":"2"' in forged
    _refused(local_registry, "cls/m@production", 1)
    # The log is left as the attacker wrote it (evidence for `omrw audit`), nothing appended.
    assert sorted(p.name for p in (mdir / "audit/events").iterdir()) == ["0000000001.json", "0000000002.json"]
    assert run_omrw("audit", "cls/m", registry=local_registry).returncode == 1


def test_lone_surrogate_and_nan_in_an_event_are_damage_not_a_crash(local_registry, tmp_path):
    mdir = _setup(local_registry, tmp_path)
    assert b"\\ud800" in _forge_tail(mdir, lambda t: t.replace('"actor":"', '"actor":"\\ud800', 1))
    _refused(local_registry, "cls/m@production", 1)
    assert b"NaN" in _forge_tail(mdir, lambda t: t.replace('"rollback":false', '"rollback":NaN', 1))
    _refused(local_registry, "cls/m@production", 1)


def test_deeply_nested_legacy_pointer_is_refused_without_a_hang(local_registry, tmp_path):
    _setup(local_registry, tmp_path)
    pointer = Path(local_registry) / "tasks/cls/models/m/aliases/old.json"
    pointer.write_text("[" * 200_000 + "]" * 200_000)
    err = _refused(local_registry, "cls/m@old", 1)
    assert "alias cls/m@old is damaged" in err
    assert pointer.read_text().startswith("[[[")  # a read never rewrites what it refuses


def test_manifest_edited_to_name_another_data_area_is_refused(local_registry, tmp_path):
    mdir = _setup(local_registry, tmp_path)
    manifest = mdir / "versions/v1/omr_manifest.json"
    doc = json.loads(manifest.read_text())
    doc["data_dir"] = "../v2"  # not an upload area: would serve another folder's bytes
    manifest.write_text(json.dumps(doc))
    err = _refused(local_registry, "cls/m@v1", 2)
    assert "unsafe path in manifest" in err
