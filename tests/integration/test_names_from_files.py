"""Issue 9, class 3 (and the class 6 examples about stray entries): every name read from a file
goes through the one name rule (DESIGN 2.3), through the real CLI.

Lock files, shard reports, alias pointers, events, manifests and the digest index are
untrusted input: a name with `..`, `/` or an absolute part is refused with a one-line error
naming the file (exit 2 for bad input, 1 where the registry's own files are damaged), and no
path outside the registry root is ever printed or read.
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
HOSTILE = ["../../../../../../evil", "..", "a/b", "/etc/evil", "ev/../../il", "evil\\..\\x"]


def _storage(url: str):
    return Registry(url).storage


def _register(url: str, version: str, pkg: Path) -> None:
    run_omrw("register", MODEL, "--version", version, "--artifacts", str(pkg), registry=url, check=True)


def _events(url: str) -> list[str]:
    return sorted(_storage(url).listdir(layout.events_key(MKEY)))


def _one_line(p, *names: str) -> None:
    err = p.stderr.strip()
    assert err, (p.returncode, p.stdout)
    assert "\n" not in err and "Traceback" not in err, err
    for n in names:
        assert n in err, (n, err)


def _no_escape(p, root: str) -> None:
    """Nothing printed names a path outside the registry root."""
    out = p.stdout + p.stderr
    assert "/etc/evil" not in p.stdout
    for line in p.stdout.splitlines():
        for word in line.split():
            word = word.strip("\"',")
            if word.startswith("/") and ".." in word:
                raise AssertionError(f"printed a path with '..': {word}")
    assert "evil" not in p.stdout, out


@pytest.fixture
def pkg(tmp_path) -> Path:
    return make_artifacts(tmp_path / "pkg")


@pytest.fixture
def reg1(any_registry, pkg) -> str:
    _register(any_registry, "v1", pkg)
    return any_registry


# ---------------------------------------------------------------------- lock files
def _lock(url: str, tmp_path: Path) -> tuple[Path, dict]:
    path = tmp_path / "omr.lock.json"
    run_omrw("lock", f"{MODEL}@v1", "-o", str(path), registry=url, check=True)
    return path, json.loads(path.read_text())


@pytest.mark.parametrize("field,value", [("version", v) for v in HOSTILE]
                         + [(f, v) for f in ("task", "model") for v in ("..", "a/b", "/etc/evil", "../../evil")])
def test_lock_entry_with_hostile_name(local_registry, pkg, tmp_path, field, value):
    url = local_registry
    _register(url, "v1", pkg)
    path, lock = _lock(url, tmp_path)
    e = lock["entries"][0]
    e[field] = value
    if field == "version":
        e["uri"] = f"omr://{T}/{M}@{value}"
    path.write_text(json.dumps(lock))
    for args in (["resolve", "--lock", str(path), f"{MODEL}@v1"],
                 ["resolve", "--lock", str(path), f"{MODEL}@v1", "--verify", "strict"],
                 ["resolve", "--lock", str(path), f"{MODEL}@v1", "--json"],
                 ["lock", "--check", str(path)],
                 ["lock", "--check", str(path), "--json"]):
        p = run_omrw(*args, registry=url)
        assert p.returncode == 2, (args, p.returncode, p.stdout, p.stderr)
        _one_line(p, str(path))
        _no_escape(p, url)
        assert p.stdout.strip() == "", (args, p.stdout)


def test_lock_entry_hostile_version_on_s3(s3_registry, pkg, tmp_path):
    url = s3_registry
    _register(url, "v1", pkg)
    path, lock = _lock(url, tmp_path)
    lock["entries"][0].update(version="../../../../../../evil", uri=f"omr://{T}/{M}@../../../../../../evil")
    path.write_text(json.dumps(lock))
    for args in (["resolve", "--lock", str(path), f"{MODEL}@v1", "--verify", "strict"], ["lock", "--check", str(path)]):
        p = run_omrw(*args, registry=url)
        assert p.returncode == 2, (args, p.returncode, p.stdout, p.stderr)
        _one_line(p, str(path))
        assert p.stdout.strip() == ""


def test_lock_entry_hostile_ref_key(local_registry, pkg, tmp_path):
    url = local_registry
    _register(url, "v1", pkg)
    path, lock = _lock(url, tmp_path)
    lock["entries"][0]["ref"] = f"{T}/{M}@../../evil"
    path.write_text(json.dumps(lock))
    for args in (["resolve", "--lock", str(path), f"{MODEL}@v1"], ["lock", "--check", str(path)]):
        p = run_omrw(*args, registry=url)
        assert p.returncode == 2, (args, p.returncode, p.stdout, p.stderr)
        _one_line(p, str(path))


# ---------------------------------------------------------------------- shard reports
def _reseal(report: dict) -> dict:
    """Recompute every digest of a report after editing its units (a consistent forgery)."""
    from omr_workflows.verify.report import PlanHeader, ShardReport, sha256_of_lines

    r = ShardReport.model_validate(report)
    rows = [u.plan_row() for u in r.units]
    shards = [s.model_copy(update={"digest": sha256_of_lines(rows)}) if s.index == r.shard else s
              for s in r.plan.shards]
    plan = r.plan.model_copy(update={"shards": shards})
    plan = plan.model_copy(update={"plan_digest": plan.compute_digest()})
    r = r.model_copy(update={"plan": plan}).sealed()
    return json.loads(r.to_bytes())


@pytest.fixture
def report(reg1, tmp_path) -> tuple[str, Path, dict]:
    path = tmp_path / "shard-1.json"
    p = run_omrw("verify", "--all", "--mode", "fast", "--shard", "1/1", "--report", str(path), registry=reg1)
    assert p.returncode == 0, p.stderr
    return reg1, path, json.loads(path.read_text())


@pytest.mark.parametrize("sealed", [False, True])
@pytest.mark.parametrize("field", ["key", "path", "version"])
def test_shard_report_with_hostile_unit(report, tmp_path, field, sealed):
    url, path, rep = report
    outside = tmp_path / "outside-secret.txt"
    outside.write_text("secret\n")
    u = rep["units"][0]
    if field == "key":
        u["key"] = f"tasks/{T}/models/{M}/versions/v1/../../../../../../{outside}"
    elif field == "path":
        u["path"] = "../../../../../../../" + str(outside).lstrip("/")
        u["id"] = f"{u['version']}:{u['path']}"
    else:
        u["version"] = f"{T}/{M}@../../x"
    if sealed:
        rep = _reseal(rep)
    path.write_text(json.dumps(rep))
    merged = tmp_path / "merged.json"
    p = run_omrw("verify-merge", str(path), "--report", str(merged), registry=url)
    assert p.returncode in (1, 2), (p.returncode, p.stdout, p.stderr)
    _one_line(p, str(path))
    assert not merged.exists()


# ---------------------------------------------------------------------- alias pointers
def test_alias_pointer_naming_a_path_is_not_followed(reg1):
    url = reg1
    st = _storage(url)
    for alias, version in (("evil", "../../x"), ("evil2", "/etc"), ("evil3", "..")):
        st.write_replace(layout.alias_key(MKEY, alias), json.dumps(
            {"task": T, "model_name": M, "alias": alias, "version": version}).encode())
        p = run_omrw("resolve", f"{MODEL}@{alias}", "--json", registry=url)
        assert p.returncode in (1, 3), (alias, p.returncode, p.stdout, p.stderr)
        _one_line(p, alias)
        assert p.stdout.strip() == ""
    # the log's own alias is served from the log even if its pointer names a path
    st.write_replace(layout.alias_key(MKEY, "latest"), json.dumps(
        {"task": T, "model_name": M, "alias": "latest", "version": "../../x"}).encode())
    p = run_omrw("resolve", f"{MODEL}@latest", "--json", registry=url)
    assert p.returncode == 0 and p.json["version"] == "v1", (p.returncode, p.stderr)
    p = run_omrw("audit", "--json", registry=url)
    assert p.returncode == 1
    assert "latest" in "\n".join(p.json["problems"])


# ---------------------------------------------------------------------- events
def test_event_with_hostile_version_breaks_the_chain(reg1):
    url = reg1
    st = _storage(url)
    key1 = layout.event_key(MKEY, 1)
    ev1 = st.read_bytes(key1)
    ev = json.loads(ev1)
    ev.update(seq=2, kind="promote", version="../x", alias="production", prev=hashlib.sha256(ev1).hexdigest(),
              meta_sha256=None, manifest_sha256=None)
    ev["aliases"]["production"] = {"version": "../x", "seq": 2}
    st.write_if_absent(layout.event_key(MKEY, 2), (json.dumps(ev, sort_keys=True, separators=(",", ":")) + "\n").encode())

    p = run_omrw("audit", "--json", registry=url)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert any("audit event 2" in x for x in p.json["problems"]), p.json
    for ref in (f"{MODEL}@production", f"{MODEL}@latest", f"{MODEL}@v1"):
        p = run_omrw("resolve", ref, registry=url)
        assert p.returncode == 1, (ref, p.returncode, p.stdout, p.stderr)
        _one_line(p, "event 2")
        assert p.stdout.strip() == ""
    n = len(_events(url))
    p = run_omrw("promote", f"{MODEL}@v1", "--to", "staging", registry=url)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert len(_events(url)) == n


# ---------------------------------------------------------------------- manifests
@pytest.mark.parametrize("bad", ["../x", "../../../../../../etc/passwd", "/etc/passwd", "a\\..\\b", "a/./b"])
def test_manifest_with_hostile_path(reg1, bad):
    url = reg1
    st = _storage(url)
    mkey = layout.manifest_key(layout.version_key(T, M, "v1"))
    man = json.loads(st.read_bytes(mkey))
    man["content"]["files"][0]["path"] = bad
    st.write_replace(mkey, json.dumps(man).encode())
    for args in (["resolve", f"{MODEL}@v1", "--json"], ["resolve", f"{MODEL}@v1", "--verify", "strict"],
                 ["verify", f"{MODEL}@v1", "--mode", "strict"], ["show", f"{MODEL}@v1"],
                 ["diff", f"{MODEL}@v1", f"{MODEL}@v1"]):
        p = run_omrw(*args, registry=url)
        assert p.returncode in (1, 2), (args, p.returncode, p.stdout, p.stderr)
        assert "v1" in p.stderr, (args, p.stderr)
        assert "Traceback" not in p.stderr
    p = run_omrw("audit", "--json", registry=url)
    assert p.returncode == 1
    assert f"{MODEL}@v1" in "\n".join(p.json["problems"])


def test_adopt_of_copied_version_with_hostile_manifest_path(local_registry, pkg, tmp_path):
    """An unanchored folder whose manifest lists a file outside the root (with its right sha256) is refused."""
    url = local_registry
    _register(url, "v0", pkg)
    other = str(tmp_path / "other")
    _register(other, "v1", make_artifacts(tmp_path / "pkg2", seed="z"))
    src = Path(other) / layout.version_key(T, M, "v1")
    dst = Path(url) / layout.version_key(T, M, "v1")
    import shutil

    shutil.copytree(src, dst)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"outside the root\n")
    rel = "../" * (len(dst.relative_to(tmp_path).parts)) + "secret.txt"
    assert (dst / rel).resolve() == secret.resolve()
    man = json.loads((dst / "omr_manifest.json").read_text())
    e = man["content"]["files"][0]
    data = secret.read_bytes()
    e.update(path=rel, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    (dst / "omr_manifest.json").write_text(json.dumps(man))
    n = len(_events(url))
    p = run_omrw("adopt", f"{MODEL}@v1", "--reason", "copied", registry=url)
    assert p.returncode in (1, 2), (p.returncode, p.stdout, p.stderr)
    _one_line(p, "v1")
    assert len(_events(url)) == n


# ---------------------------------------------------------------------- digest index
def _digest(url: str) -> str:
    return run_omrw("resolve", f"{MODEL}@v1", "--json", registry=url).json["digest"]


@pytest.mark.parametrize("content", [b'{"version": "../x"}', b'{"version": "/etc"}', b"not json {",
                                     b'{"version": 7}', b"[]", b'{"digest": "x"}'])
def test_digest_index_hostile_or_damaged(reg1, content):
    url = reg1
    digest = _digest(url)
    _storage(url).write_replace(layout.digest_index_key(MKEY, digest), content)
    p = run_omrw("resolve", f"{MODEL}@{digest}", "--json", registry=url)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    _one_line(p, MODEL)
    assert p.stdout.strip() == ""


def test_digest_index_naming_another_version(reg1, tmp_path):
    url = reg1
    _register(url, "v2", make_artifacts(tmp_path / "pkg2", seed="q"))
    digest = _digest(url)
    _storage(url).write_replace(layout.digest_index_key(MKEY, digest), json.dumps({"version": "v2"}).encode())
    p = run_omrw("resolve", f"{MODEL}@{digest}", "--json", registry=url)
    assert p.returncode in (0, 1), (p.returncode, p.stderr)
    if p.returncode == 0:
        assert p.json["version"] == "v1" and p.json["digest"] == digest
    else:
        _one_line(p, MODEL)


# ---------------------------------------------------------------------- stray entries
def test_stray_file_in_versions(local_registry, pkg):
    _register(local_registry, "v1", pkg)
    _stray_file_in_versions(local_registry, pkg)


def test_stray_object_in_versions_s3(s3_registry, pkg):
    _register(s3_registry, "v1", pkg)
    _stray_file_in_versions(s3_registry, pkg)


def test_stray_object_in_versions_s3_does_not_abort_verify(s3_registry, pkg):
    url = s3_registry
    _register(url, "v1", pkg)
    _storage(url).write_replace(f"{layout.versions_key(T, M)}/stray.txt", b"left here\n")
    p = run_omrw("verify", "--all", "--mode", "strict", registry=url)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    p = run_omrw("list", MODEL, "--json", registry=url)
    assert p.returncode == 0 and {r["version"] for r in p.json} == {"v1"}


def _stray_file_in_versions(url: str, pkg: Path) -> None:
    _register(url, "v2", pkg)
    _storage(url).write_replace(f"{layout.versions_key(T, M)}/stray.txt", b"left here\n")
    p = run_omrw("verify", "--all", "--mode", "strict", registry=url)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert "v1" in p.stdout and "v2" in p.stdout
    p = run_omrw("list", MODEL, "--json", registry=url)
    assert p.returncode == 0 and {r["version"] for r in p.json} == {"v1", "v2"}
    p = run_omrw("audit", "--json", registry=url)
    assert p.returncode == 1, p.json
    assert "stray.txt" in "\n".join(p.json["problems"])


def test_folder_with_space_under_models(reg1, pkg):
    url = reg1
    st = _storage(url)
    st.write_replace(f"{layout.models_key(T)}/with space/versions/v1/model.pt", b"x")
    p = run_omrw("list", "--json", registry=url)
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert [(r["task"], r["model"], r["version"]) for r in p.json] == [(T, M, "v1")]
    p = run_omrw("list", T, "--json", registry=url)
    assert p.returncode == 0, (p.returncode, p.stderr)
    p = run_omrw("verify", "--all", registry=url)
    assert p.returncode == 0, (p.returncode, p.stderr)
    p = run_omrw("audit", "--json", registry=url)
    assert p.returncode == 1, p.json
    assert "with space" in "\n".join(p.json["problems"])


def test_audit_of_missing_registry(tmp_path):
    for reg in ("/nonexistent", str(tmp_path / "nope")):
        p = run_omrw("audit", "--registry", reg)
        assert p.returncode == 3, (p.returncode, p.stdout, p.stderr)
        _one_line(p, reg)
        p = run_omrw("audit", "--json", "--registry", reg)
        assert p.returncode == 3
    assert not (tmp_path / "nope").exists()
    assert not Path("/nonexistent").exists()
