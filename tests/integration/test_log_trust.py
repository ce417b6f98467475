"""Issue 9, class 2 and class 8 (promote policy): only what the log vouches for is trusted.

Every case goes through the real CLI (`run_omrw`) and checks the exit code, a one-line error
on stderr naming the object, and that nothing was written where nothing may be (events
counted before and after, head.json bytes compared). Cases where storage differs run on a
local registry and on S3 (moto server) through `any_registry`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from omr_workflows import layout
from omr_workflows.registry import Registry
from tests.conftest import make_artifacts, run_omrw

T, M = "cls", "m"
MODEL = f"{T}/{M}"
MKEY = layout.model_key(T, M)


# ---------------------------------------------------------------------- helpers
def _storage(url: str):
    return Registry(url).storage


def _register(url: str, version: str, pkg: Path, **kw) -> None:
    run_omrw("register", MODEL, "--version", version, "--artifacts", str(pkg), registry=url, check=True, **kw)


def _events(url: str) -> list[str]:
    return sorted(_storage(url).listdir(layout.events_key(MKEY)))


def _head(url: str) -> bytes | None:
    try:
        return _storage(url).read_bytes(layout.head_key(MKEY))
    except Exception:
        return None


def _one_line(p, *names: str) -> None:
    """A one-line error on stderr naming every object in `names`, no traceback."""
    err = p.stderr.strip()
    assert err, (p.returncode, p.stdout)
    assert "\n" not in err, err
    assert "Traceback" not in err, err
    for n in names:
        assert n in err, (n, err)


def _resolve(url: str, ref: str, *extra: str):
    return run_omrw("resolve", ref, "--json", *extra, registry=url)


def _listed(url: str) -> set[str]:
    p = run_omrw("list", MODEL, "--json", registry=url)
    assert p.returncode == 0, p.stderr
    return {row["version"] for row in p.json}


def _audit(url: str, *extra: str):
    p = run_omrw("audit", *extra, "--json", registry=url)
    assert p.json is not None, (p.returncode, p.stdout, p.stderr)
    return p


def _problems(p) -> str:
    return "\n".join(p.json.get("problems", []))


def _copy_version(src_url: str, dst_url: str, version: str) -> None:
    """Copy every object of one version from one registry to another, as `cp -r` would."""
    src, dst = _storage(src_url), _storage(dst_url)
    vkey = layout.version_key(T, M, version)
    for info in src.walk(vkey):
        dst.write_replace(f"{vkey}/{info.rel}", src.read_bytes(f"{vkey}/{info.rel}"))


@pytest.fixture
def pkgs(tmp_path) -> dict[str, Path]:
    return {s: make_artifacts(tmp_path / f"pkg-{s}", seed=s) for s in "abcd"}


@pytest.fixture
def other_registry(any_registry, tmp_path) -> str:
    """A second registry on the same kind of storage (another prefix of the same bucket on S3)."""
    if any_registry.startswith("s3://"):
        return any_registry.rsplit("/", 1)[0] + "/other-registry"
    return str(tmp_path / "other-registry")


# ====================================================================== class 2 (a)
def _drop_by_hand(url: str, version: str, sums: str = "") -> Path:
    vdir = Path(url) / layout.version_key(T, M, version)
    vdir.mkdir(parents=True)
    (vdir / "model.pt").write_bytes(b"weights by hand")
    (vdir / "notes.txt").write_bytes(b"dropped in\n")
    (vdir / "sha256sums.txt").write_text(sums)
    return vdir


def test_hand_dropped_folder_is_legacy_and_unanchored(local_registry, pkgs):
    url = local_registry
    _register(url, "v1", pkgs["a"])
    _drop_by_hand(url, "hand")
    before = _events(url)

    p = _resolve(url, f"{MODEL}@hand")
    assert p.returncode == 0, p.stderr
    assert p.json["legacy"] is True and p.json["anchored"] is False
    assert p.json["version"] == "hand"

    p = run_omrw("verify", f"{MODEL}@hand", "--mode", "strict", registry=url)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "hand" in p.stderr + p.stdout

    p = run_omrw("resolve", f"{MODEL}@hand", "--verify", "strict", registry=url)
    assert p.returncode == 1, (p.stdout, p.stderr)
    _one_line(p, "hand")

    p = run_omrw("promote", f"{MODEL}@hand", "--to", "production", registry=url)
    assert p.returncode == 1, (p.stdout, p.stderr)
    _one_line(p, f"{MODEL}@hand", "adopt")
    assert _events(url) == before

    p = _audit(url)
    assert any(f"{MODEL}@hand" in n for n in p.json["notes"] + p.json["problems"]), p.json


def test_empty_sums_folder_fails_even_with_trust_legacy(local_registry, pkgs):
    """An empty sha256sums.txt covers no file: legacy trust must not turn that into a pass."""
    url = local_registry
    _register(url, "v1", pkgs["a"])
    _drop_by_hand(url, "hand")
    for args in (["verify", f"{MODEL}@hand", "--mode", "strict", "--trust-legacy"],
                 ["verify", f"{MODEL}@hand", "--mode", "fast"],
                 ["resolve", f"{MODEL}@hand", "--verify", "strict", "--trust-legacy"]):
        p = run_omrw(*args, registry=url)
        assert p.returncode == 1, (args, p.stdout, p.stderr)
        assert "hand" in p.stderr, (args, p.stderr)


def test_adopt_of_empty_sums_folder_is_refused(local_registry, pkgs):
    url = local_registry
    _register(url, "v1", pkgs["a"])
    vdir = _drop_by_hand(url, "hand")
    before = _events(url)
    p = run_omrw("adopt", f"{MODEL}@hand", "--reason", "found it", registry=url)
    if p.returncode == 0:  # show what that allows before failing
        run_omrw("promote", f"{MODEL}@hand", "--to", "production", registry=url, check=True)
        (vdir / "model.pt").write_bytes(b"swapped weights")
        served = run_omrw("resolve", f"{MODEL}@production", "--verify", "strict", registry=url)
        raise AssertionError(f"adopted an uncovered folder; after swapping model.pt, strict resolve of production "
                             f"exited {served.returncode}")
    assert p.returncode == 1, (p.returncode, p.stderr)
    _one_line(p, "hand")
    assert _events(url) == before


def test_hand_dropped_folder_with_valid_sums_needs_trust_legacy(local_registry, pkgs):
    url = local_registry
    _register(url, "v1", pkgs["a"])
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n"
                   for n, d in (("model.pt", b"weights by hand"), ("notes.txt", b"dropped in\n")))
    _drop_by_hand(url, "hand", sums)
    p = run_omrw("verify", f"{MODEL}@hand", "--mode", "strict", registry=url)
    assert p.returncode == 1, (p.stdout, p.stderr)
    p = run_omrw("verify", f"{MODEL}@hand", "--mode", "strict", "--trust-legacy", registry=url)
    assert p.returncode == 0, (p.stdout, p.stderr)
    p = run_omrw("verify", f"{MODEL}@hand", "--mode", "strict", registry=url, env={"OMR_TRUST_LEGACY": "1"})
    assert p.returncode == 0, (p.stdout, p.stderr)


def test_hand_dropped_objects_on_s3_are_not_a_version(s3_registry, pkgs):
    """On an object store there are no legacy versions: a prefix without a manifest is nothing."""
    url = s3_registry
    _register(url, "v1", pkgs["a"])
    st = _storage(url)
    vkey = layout.version_key(T, M, "hand")
    st.write_replace(f"{vkey}/model.pt", b"weights by hand")
    st.write_replace(f"{vkey}/sha256sums.txt", b"")
    p = _resolve(url, f"{MODEL}@hand")
    assert p.returncode in (1, 3), (p.returncode, p.stdout, p.stderr)
    _one_line(p, "hand")
    assert "hand" not in _listed(url)
    before = _events(url)
    p = run_omrw("promote", f"{MODEL}@hand", "--to", "production", registry=url)
    assert p.returncode in (1, 3), (p.returncode, p.stderr)
    assert _events(url) == before


# ====================================================================== class 2 (b)
def test_copied_omrw_version_is_not_served_until_adopted(any_registry, other_registry, pkgs):
    url = any_registry
    _register(url, "v0", pkgs["a"])
    _register(other_registry, "v1", pkgs["b"])
    _copy_version(other_registry, url, "v1")
    before = _events(url)

    p = _resolve(url, f"{MODEL}@v1")
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    _one_line(p, f"{MODEL}@v1", "not in the audit log")
    assert _listed(url) == {"v0"}

    p = run_omrw("promote", f"{MODEL}@v1", "--to", "production", registry=url)
    assert p.returncode == 1, (p.returncode, p.stderr)
    _one_line(p, f"{MODEL}@v1")
    assert _events(url) == before

    p = run_omrw("verify", f"{MODEL}@v1", "--mode", "strict", registry=url)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert f"{MODEL}@v1" in p.stderr + p.stdout

    p = _audit(url)
    assert p.returncode == 1, p.json
    assert f"{MODEL}@v1" in _problems(p)

    # adopt verifies strictly and records it
    p = run_omrw("adopt", f"{MODEL}@v1", "--reason", "copied from the other registry", "--json", registry=url)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert p.json["kind"] == "adopt" and p.json["version"] == "v1"
    assert len(_events(url)) == len(before) + 1
    p = _resolve(url, f"{MODEL}@v1", "--verify", "strict")
    assert p.returncode == 0, p.stderr
    assert p.json["anchored"] is True and p.json["legacy"] is False
    assert "v1" in _listed(url)
    p = _audit(url)
    assert p.returncode == 0, p.json
    p = run_omrw("promote", f"{MODEL}@v1", "--to", "production", registry=url)
    assert p.returncode == 0, p.stderr

    # adopt twice: conflict, nothing appended
    n = len(_events(url))
    p = run_omrw("adopt", f"{MODEL}@v1", "--reason", "again", registry=url)
    assert p.returncode == 4, (p.returncode, p.stderr)
    _one_line(p, f"{MODEL}@v1")
    assert len(_events(url)) == n


def test_adopt_of_a_version_that_does_not_verify_records_nothing(any_registry, other_registry, pkgs):
    url = any_registry
    _register(url, "v0", pkgs["a"])
    _register(other_registry, "v2", pkgs["c"])
    _copy_version(other_registry, url, "v2")
    st = _storage(url)
    v = Registry(other_registry).version(T, M, "v2")
    key = f"{v.data_key}/model.pt"
    data = bytearray(st.read_bytes(key))
    data[10] ^= 1
    st.write_replace(key, bytes(data))
    before, head = _events(url), _head(url)

    p = run_omrw("adopt", f"{MODEL}@v2", "--reason", "copied", registry=url)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "model.pt" in p.stderr, p.stderr
    assert "v2" in p.stderr
    assert _events(url) == before and _head(url) == head
    assert _resolve(url, f"{MODEL}@v2").returncode == 1


def test_adopt_needs_a_reason(local_registry, pkgs):
    url = local_registry
    _register(url, "v0", pkgs["a"])
    before = _events(url)
    p = run_omrw("adopt", f"{MODEL}@v0", "--reason", "  ", registry=url)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert _events(url) == before


# ====================================================================== class 2 (c)
def test_deleted_log_refuses_versions_with_manifests(any_registry, pkgs):
    url = any_registry
    _register(url, "v1", pkgs["a"])
    run_omrw("promote", f"{MODEL}@v1", "--to", "production", registry=url, check=True)
    st = _storage(url)
    st.remove_tree(layout.events_key(MKEY))
    st.remove_tree(layout.head_key(MKEY))

    for ref in (f"{MODEL}@v1", f"{MODEL}@latest", f"{MODEL}@production", MODEL):
        p = _resolve(url, ref)
        assert p.returncode == 1, (ref, p.returncode, p.stdout, p.stderr)
        _one_line(p, "v1")
    p = run_omrw("resolve", f"{MODEL}@v1", "--verify", "strict", registry=url)
    assert p.returncode == 1, (p.returncode, p.stderr)
    p = run_omrw("verify", f"{MODEL}@v1", "--mode", "strict", registry=url)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "v1" not in _listed(url)

    p = _audit(url)
    assert p.returncode == 1, p.json
    assert f"{MODEL}@v1" in _problems(p)

    p = run_omrw("promote", f"{MODEL}@v1", "--to", "staging", registry=url)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert _events(url) == []
    assert _head(url) is None


def test_deleted_head_refuses_promote_until_repair(any_registry, pkgs):
    url = any_registry
    _register(url, "v1", pkgs["a"])
    _register(url, "v2", pkgs["b"])
    _storage(url).remove_tree(layout.head_key(MKEY))
    before = _events(url)

    p = _audit(url)
    assert p.returncode == 1, p.json
    assert "head" in _problems(p)

    p = run_omrw("promote", f"{MODEL}@v1", "--to", "production", registry=url)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    _one_line(p, "head")
    assert _events(url) == before and _head(url) is None

    p = run_omrw("audit", "--repair", "--json", registry=url)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert _head(url) is not None
    p = run_omrw("promote", f"{MODEL}@v1", "--to", "production", registry=url)
    assert p.returncode == 0, p.stderr
    assert len(_events(url)) == len(before) + 1
    assert _audit(url).returncode == 0
    assert _resolve(url, f"{MODEL}@production").json["version"] == "v1"


# ====================================================================== class 2 (d)
def _edit_newest_event(url: str) -> str:
    st = _storage(url)
    key = f"{layout.events_key(MKEY)}/{_events(url)[-1]}"
    ev = json.loads(st.read_bytes(key))
    ev["reason"] = "forged: approved by the board"
    st.write_replace(key, (json.dumps(ev, sort_keys=True, separators=(",", ":")) + "\n").encode())
    return key


def test_edited_newest_event_is_not_laundered_by_promote(any_registry, pkgs):
    url = any_registry
    _register(url, "v1", pkgs["a"])
    _register(url, "v2", pkgs["b"])
    run_omrw("promote", f"{MODEL}@v1", "--to", "production", "--reason", "val AUC 0.97", registry=url, check=True)
    _edit_newest_event(url)
    head, before = _head(url), _events(url)

    assert _audit(url).returncode == 1

    p = run_omrw("promote", f"{MODEL}@v2", "--to", "staging", registry=url)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    _one_line(p, "head and tail disagree")
    assert _head(url) == head, "head.json rewritten: the forgery was laundered"
    assert _events(url) == before

    p = run_omrw("register", MODEL, "--version", "v3", "--artifacts", str(pkgs["c"]), registry=url)
    assert p.returncode == 1, (p.returncode, p.stderr)
    _one_line(p, "head and tail disagree")
    assert _head(url) == head and _events(url) == before

    p = _audit(url)
    assert p.returncode == 1, p.json

    p = run_omrw("audit", "--repair", "--json", registry=url)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert _head(url) == head
    assert _audit(url).returncode == 1


def test_edited_event_with_head_deleted_is_not_laundered(any_registry, pkgs):
    """Deleting head.json as well must not let an append chain onto the edited bytes."""
    url = any_registry
    _register(url, "v1", pkgs["a"])
    run_omrw("promote", f"{MODEL}@v1", "--to", "production", registry=url, check=True)
    _edit_newest_event(url)
    _storage(url).remove_tree(layout.head_key(MKEY))
    before = _events(url)
    p = run_omrw("promote", f"{MODEL}@v1", "--to", "candidate", registry=url)
    assert p.returncode == 1, (p.returncode, p.stderr)
    _one_line(p, "head")
    assert _events(url) == before and _head(url) is None
    assert _audit(url).returncode == 1  # names the missing head


# ====================================================================== class 2 (e)
def _rewrite_pointer(url: str, alias: str, version: str) -> None:
    st = _storage(url)
    key = layout.alias_key(MKEY, alias)
    data = json.loads(st.read_bytes(key))
    data["version"] = version
    st.write_replace(key, json.dumps(data, indent=2).encode())


def test_rewritten_alias_pointer_is_not_served(any_registry, pkgs):
    url = any_registry
    _register(url, "v1", pkgs["a"])
    _register(url, "v2", pkgs["b"])
    run_omrw("promote", f"{MODEL}@v1", "--to", "production", registry=url, check=True)
    _rewrite_pointer(url, "production", "v2")
    before = _events(url)

    for extra in ((), ("--verify", "strict"), ("--verify", "fast")):
        p = _resolve(url, f"{MODEL}@production", *extra)
        assert p.returncode == 0, (extra, p.stderr)
        assert p.json["version"] == "v1", (extra, p.json)

    p = _audit(url)
    assert p.returncode == 1, p.json
    assert "alias production" in _problems(p)

    p = run_omrw("audit", "--repair", "--json", registry=url)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert json.loads(_storage(url).read_bytes(layout.alias_key(MKEY, "production")))["version"] == "v1"
    assert _audit(url).returncode == 0
    assert _events(url) == before


def test_alias_pointer_unknown_to_the_log_is_not_followed(any_registry, pkgs):
    url = any_registry
    _register(url, "v1", pkgs["a"])
    _register(url, "v2", pkgs["b"])
    st = _storage(url)
    pointer = json.loads(st.read_bytes(layout.alias_key(MKEY, "latest")))
    pointer.update(alias="rogue", version="v1")
    st.write_replace(layout.alias_key(MKEY, "rogue"), json.dumps(pointer).encode())

    p = _resolve(url, f"{MODEL}@rogue")
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    _one_line(p, "rogue")
    p = run_omrw("resolve", f"{MODEL}@rogue", "--verify", "strict", registry=url)
    assert p.returncode == 1, (p.returncode, p.stderr)
    p = _audit(url)
    assert p.returncode == 1
    assert "rogue" in _problems(p)
    assert run_omrw("audit", "--repair", registry=url).returncode == 0
    assert not st.exists(layout.alias_key(MKEY, "rogue"))
    assert _resolve(url, f"{MODEL}@rogue").returncode == 3


# ====================================================================== class 2 (f)
@pytest.mark.parametrize("step", ["after-event", "after-head"])
def test_promote_killed_before_the_pointer_has_one_truth(any_registry, pkgs, step):
    url = any_registry
    _register(url, "v1", pkgs["a"])
    _register(url, "v2", pkgs["b"])
    run_omrw("promote", f"{MODEL}@v1", "--to", "production", registry=url, check=True)
    p = run_omrw("promote", f"{MODEL}@v2", "--to", "production", registry=url, env={"OMR_FAULT_CRASH_AT": step})
    assert p.returncode < 0 or p.returncode == 137, (p.returncode, p.stderr)

    assert _resolve(url, f"{MODEL}@production").json["version"] == "v2"
    rows = {r["version"]: r for r in run_omrw("list", MODEL, "--json", registry=url).json}
    assert "production" in rows["v2"]["aliases"] and "production" not in rows["v1"]["aliases"]
    assert rows["v2"]["stage"] == "production" and rows["v1"]["stage"] == "archived"
    hist = run_omrw("history", MODEL, "--json", registry=url).json
    assert hist[-1]["kind"] == "promote" and hist[-1]["version"] == "v2" and hist[-1]["alias"] == "production"

    p = _audit(url)
    assert p.returncode == 1, p.json
    assert "alias production" in _problems(p)
    p = run_omrw("audit", "--repair", "--json", registry=url)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert _audit(url).returncode == 0
    assert json.loads(_storage(url).read_bytes(layout.alias_key(MKEY, "production")))["version"] == "v2"
    # and the log accepts appends again
    assert run_omrw("promote", f"{MODEL}@v1", "--to", "production", "--rollback", registry=url).returncode == 0


# ====================================================================== class 2 (g)
def test_register_failing_at_its_event_leaves_no_version(any_registry, pkgs):
    url = any_registry
    _register(url, "v1", pkgs["a"])
    before, head = _events(url), _head(url)
    p = run_omrw("register", MODEL, "--version", "v2", "--artifacts", str(pkgs["b"]), registry=url,
                 env={"OMR_FAULT_FAIL_AT": "event"})
    assert p.returncode == 5, (p.returncode, p.stdout, p.stderr)
    _one_line(p)
    assert _events(url) == before and _head(url) == head

    p = _resolve(url, f"{MODEL}@v2")
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert "v2" not in _listed(url)
    assert _resolve(url, f"{MODEL}@latest").json["version"] == "v1"
    vkey = layout.version_key(T, M, "v2")
    if not url.startswith("s3://"):
        vdir = Path(url) / vkey
        assert not vdir.exists() or not any(vdir.iterdir()), list(vdir.rglob("*"))
    else:
        assert not _storage(url).exists(layout.manifest_key(vkey))
    assert _audit(url).returncode == 0

    p = run_omrw("register", MODEL, "--version", "v2", "--artifacts", str(pkgs["b"]), registry=url)
    assert p.returncode == 0, (p.returncode, p.stderr)
    p = _resolve(url, f"{MODEL}@v2", "--verify", "strict")
    assert p.returncode == 0 and p.json["anchored"] is True
    assert _resolve(url, f"{MODEL}@latest").json["version"] == "v2"
    assert _audit(url).returncode == 0


# ====================================================================== class 8 (promote policy)
@pytest.mark.parametrize("target", ["development", "staging", "archived"])
def test_production_version_cannot_change_stage(any_registry, pkgs, target):
    url = any_registry
    _register(url, "v1", pkgs["a"])
    run_omrw("promote", f"{MODEL}@v1", "--to", "production", registry=url, check=True)
    before, head = _events(url), _head(url)
    p = run_omrw("promote", f"{MODEL}@v1", "--to", target, registry=url)
    assert p.returncode == 4, (p.returncode, p.stdout, p.stderr)
    _one_line(p, f"{MODEL}@v1", "production")
    assert _events(url) == before and _head(url) == head
    rows = {r["version"]: r for r in run_omrw("list", MODEL, "--json", registry=url).json}
    assert rows["v1"]["stage"] == "production" and "production" in rows["v1"]["aliases"]


def test_production_version_by_alias_cannot_change_stage(local_registry, pkgs):
    """Same rule when the version is named through its alias."""
    url = local_registry
    _register(url, "v1", pkgs["a"])
    run_omrw("promote", f"{MODEL}@v1", "--to", "production", registry=url, check=True)
    before = _events(url)
    p = run_omrw("promote", f"{MODEL}@production", "--to", "staging", registry=url)
    assert p.returncode == 4, (p.returncode, p.stderr)
    assert _events(url) == before


def test_production_holder_can_move_once_replaced(local_registry, pkgs):
    url = local_registry
    _register(url, "v1", pkgs["a"])
    _register(url, "v2", pkgs["b"])
    run_omrw("promote", f"{MODEL}@v1", "--to", "production", registry=url, check=True)
    run_omrw("promote", f"{MODEL}@v2", "--to", "production", registry=url, check=True)
    p = run_omrw("promote", f"{MODEL}@v1", "--to", "development", registry=url)
    assert p.returncode == 0, p.stderr
    p = run_omrw("promote", f"{MODEL}@v1", "--to", "production", registry=url)
    assert p.returncode == 0, p.stderr  # development -> production is no rollback
    rows = {r["version"]: r for r in run_omrw("list", MODEL, "--json", registry=url).json}
    assert rows["v1"]["stage"] == "production" and rows["v2"]["stage"] == "archived"
    p = run_omrw("promote", f"{MODEL}@v2", "--to", "production", registry=url)
    assert p.returncode == 4, p.stderr  # archived: needs --rollback
    _one_line(p, f"{MODEL}@v2", "rollback")
