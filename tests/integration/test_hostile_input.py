"""Hostile input through the real CLI (issue 9, classes 6 and 7; DESIGN 6 and 11).

Bad input is bounded and refused with one line naming the object, exit 2, and nothing
written to the registry; values read back from the registry are escaped in human output
(no terminal control reaches stdout/stderr) while `--json` stays exact; `sha256sums.txt`
is GNU's own format both ways.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omr_workflows.errors import IntegrityError
from omr_workflows.manifest import parse_sha256sums, sha256sums_line
from omr_workflows.names import check_relpath
from omr_workflows.registry import Registry
from tests.conftest import make_artifacts, run_omrw

CONTROL_BYTES = {chr(c) for c in [*range(0x20), 0x7F]}


def _tree(root: Path) -> dict[str, str]:
    """Every path under `root` with the sha256 of its bytes (folders: "dir")."""
    if not root.exists():
        return {}
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else "dir"
    return out


@pytest.fixture
def box(tmp_path):
    """A registry holding cls/m@v1, next to a fresh artifacts folder."""
    reg = tmp_path / "registry"
    Registry(str(reg)).register("cls", "m", "v1", make_artifacts(tmp_path / "pkg1"))
    return tmp_path, reg, make_artifacts(tmp_path / "pkg")


def _refused(code: int, *args: str, registry: Path, must_name: str, env: dict | None = None):
    before = _tree(registry)
    p = run_omrw(*args, registry=str(registry), env=env)
    assert p.returncode == code, (args[:4], p.returncode, p.stderr[-2000:])
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("omrw: error:"), p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    assert must_name in lines[0], (must_name, lines[0])
    assert not set(lines[0]) & CONTROL_BYTES
    assert _tree(registry) == before, "a refused command wrote to the registry"
    return lines[0]


def _register(reg: Path, art: Path, *extra: str, version: str = "v2", code: int = 2, must_name: str):
    return _refused(code, "register", "cls/m", "--version", version, "--artifacts", str(art), "--no-provenance",
                    *extra, registry=reg, must_name=must_name)


# ---------------------------------------------------------------------- bounded structured input
def test_metadata_nested_5000_deep(box):
    tmp, reg, art = box
    deep = tmp / "deep.json"
    deep.write_text('{"a": ' + "[" * 5000 + "]" * 5000 + "}")
    line = _register(reg, art, "--metadata", str(deep), must_name="deep.json")
    assert "nested deeper than 64 levels" in line


def test_metadata_too_large_nan_and_duplicates(box):
    tmp, reg, art = box
    big = tmp / "big.json"
    big.write_text(json.dumps({"blob": "x" * (1 << 20)}))
    assert "larger than the 1048576-byte limit" in _register(reg, art, "--metadata", str(big), must_name="big.json")
    nan = tmp / "nan.json"
    nan.write_text('{"auc": NaN}')
    assert "NaN is not valid JSON" in _register(reg, art, "--metadata", str(nan), must_name="nan.json")
    dup = tmp / "dup.json"
    dup.write_text('{"a": 1, "a": 2}')
    assert "duplicate key 'a'" in _register(reg, art, "--metadata", str(dup), must_name="dup.json")
    typed = tmp / "typed.json"
    typed.write_text('{"params": [1, 2]}')
    assert "params" in _register(reg, art, "--metadata", str(typed), must_name="--metadata")


def test_params_yaml_alias_bomb_is_not_expanded(box):
    tmp, reg, art = box
    bomb = tmp / "bomb.yaml"
    bomb.write_text('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
                    + "".join(f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdef", "bcdefg")))
    assert bomb.stat().st_size < 300
    line = _register(reg, art, "--params", str(bomb), must_name="bomb.yaml")
    assert "anchors and aliases are not accepted" in line


@pytest.mark.parametrize("text,problem", [
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 63 levels"),
    ("lr: .nan\n", "NaN is not valid JSON"),
    ("lr: -.inf\n", "-Infinity is not valid JSON"),
    ("lr: 0.1\nlr: 0.2\n", "duplicate key 'lr'"),
    ("- 1\n- 2\n", "mapping"),
    ("a: [1, 2\n", "not valid YAML"),
])
def test_params_file_bounded(box, text, problem):
    tmp, reg, art = box
    params = tmp / "params.yaml"
    params.write_text(text)
    assert problem in _register(reg, art, "--params", str(params), must_name="params.yaml")


def test_params_json_file_deep(box):
    tmp, reg, art = box
    params = tmp / "params.json"
    params.write_text('{"a": ' + "[" * 5000 + "]" * 5000 + "}")
    assert "nested deeper" in _register(reg, art, "--params", str(params), must_name="params.json")


@pytest.mark.parametrize("param,problem", [
    ("lr=nan", "param lr: NaN is not valid JSON"),
    ("lr=NaN", "param lr: NaN is not valid JSON"),
    ("lr=-Infinity", "param lr: -Infinity is not valid JSON"),
    ("lr=inf", "param lr: Infinity is not valid JSON"),
    ("lr=1e999", "param lr"),
    ("deep=" + "[" * 5000 + "]" * 5000, "param deep: nested deeper than 62 levels"),
    ("deep=" + '{"a":' * 3000 + "1" + "}" * 3000, "param deep: nested deeper"),
])
def test_bad_param_values(box, param, problem):
    _tmp, reg, art = box
    _register(reg, art, "--param", param, must_name=problem)


def test_good_params_keep_their_json_types(box):
    tmp, reg, art = box
    (tmp / "p.yaml").write_text("layers: [64, 32]\nstarted: 2024-01-02\nname: run1\n")
    p = run_omrw("register", "cls/m", "--version", "v2", "--artifacts", str(art), "--no-provenance",
                 "--params", str(tmp / "p.yaml"), "--param", "lr=0.01", "--param", "tag=abc",
                 "--param", "nested=" + "[" * 62 + "]" * 62, registry=str(reg))
    assert p.returncode == 0, p.stderr
    meta = json.loads((reg / "tasks/cls/models/m/versions/v2/model_meta.json").read_text())
    assert meta["params"]["lr"] == 0.01 and meta["params"]["tag"] == "abc"
    assert meta["params"]["layers"] == [64, 32] and meta["params"]["started"] == "2024-01-02"
    shown = run_omrw("show", "cls/m@v2", "--json", registry=str(reg))
    assert shown.returncode == 0, shown.stderr


@pytest.mark.parametrize("shipped,field", [
    ({"params": 5}, "params"),
    ({"created_by": [1]}, "created_by"),
    ({"provenance": "yes"}, "provenance"),
    ({"task": {"x": 1}}, "task"),
])
def test_shipped_meta_with_wrong_types(box, shipped, field):
    _tmp, reg, art = box
    (art / "model_meta.json").write_text(json.dumps(shipped))
    line = _register(reg, art, must_name="model_meta.json")
    assert f"invalid field {field}" in line


def test_shipped_meta_deep_or_nan(box):
    _tmp, reg, art = box
    (art / "model_meta.json").write_text('{"x": ' + "[" * 5000 + "]" * 5000 + "}")
    assert "nested deeper" in _register(reg, art, must_name="model_meta.json")
    (art / "model_meta.json").write_text('{"auc": Infinity}')
    assert "Infinity is not valid JSON" in _register(reg, art, must_name="model_meta.json")


# ---------------------------------------------------------------------- the artifacts folder
@pytest.mark.parametrize("links,name,problem", [
    ({"loop": "loop"}, "loop", "symlink loop"),
    ({"a": "b", "b": "a"}, "a", "symlink loop"),
    ({"gone": "missing.bin"}, "gone", "dangling symlink"),
    ({"sub/x": "../sub/x"}, "sub/x", "symlink loop"),
])
def test_symlink_loops_and_dangling_links(box, links, name, problem):
    _tmp, reg, art = box
    for rel, target in links.items():
        (art / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, art / rel)
    line = _register(reg, art, must_name=repr(name))
    assert problem in line


def test_symlink_inside_still_followed(box):
    _tmp, reg, art = box
    os.symlink("model.pt", art / "copy.pt")
    p = run_omrw("register", "cls/m", "--version", "v2", "--artifacts", str(art), "--no-provenance",
                 registry=str(reg))
    assert p.returncode == 0, p.stderr
    published = reg / "tasks/cls/models/m/versions/v2/copy.pt"
    assert published.read_bytes() == (art / "model.pt").read_bytes() and not published.is_symlink()


# ---------------------------------------------------------------------- GNU sha256sum format
ODD_NAMES = [" lead.txt", "*star.txt", "  two.txt", "tab\there.txt", "cr\r"]


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="GNU sha256sum not installed")
def test_sha256sums_round_trip_with_gnu(box):
    """Names with a leading space or '*' (and CR, which GNU escapes) go both ways with coreutils."""
    _tmp, reg, art = box
    for i, name in enumerate(ODD_NAMES):
        (art / name).write_bytes(f"odd {i}\n".encode())
    names = sorted(p.name for p in art.iterdir() if p.is_file())
    gnu = subprocess.run(["sha256sum", "--", *names], cwd=art, capture_output=True, check=True).stdout
    (art / "sha256sums.txt").write_bytes(gnu)
    p = run_omrw("register", "cls/m", "--version", "v2", "--artifacts", str(art), "--no-provenance",
                 registry=str(reg))
    assert p.returncode == 0, p.stderr
    vdir = reg / "tasks/cls/models/m/versions/v2"
    ours = (vdir / "sha256sums.txt").read_text()
    for name in ODD_NAMES:
        assert name in parse_sha256sums(ours)
    check = subprocess.run(["sha256sum", "-c", "--strict", "sha256sums.txt"], cwd=vdir, capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
    v = run_omrw("verify", "cls/m@v2", "--mode", "strict", registry=str(reg))
    assert v.returncode == 0, v.stdout + v.stderr


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="GNU sha256sum not installed")
def test_sha256sums_line_escapes_like_gnu(tmp_path):
    """Our line for a name holding a backslash or CR is exactly GNU's, and `sha256sum -c` accepts it."""
    names = ["back\\slash", "cr\r", " lead", "*star", "plain"]
    for name in names:
        (tmp_path / name).write_bytes(name.encode())
    gnu = subprocess.run(["sha256sum", "--", *names], cwd=tmp_path, capture_output=True, check=True).stdout.decode()
    ours = "".join(sha256sums_line(hashlib.sha256(n.encode()).hexdigest(), n) for n in names)
    assert ours == gnu
    (tmp_path / "sums").write_text(ours, newline="")
    assert subprocess.run(["sha256sum", "-c", "--strict", "sums"], cwd=tmp_path, capture_output=True).returncode == 0
    # read back: the backslash name unescapes, then the path rule refuses it (manifest paths have none)
    with pytest.raises(ValueError, match="backslashes"):
        parse_sha256sums(gnu)
    assert parse_sha256sums(gnu.replace(gnu.splitlines(True)[0], ""))["cr\r"]


def test_sha256sums_gnu_variants_parse():
    """Binary-mode '*', upper-case hex, comments, blank lines, --tag lines, escapes, CRLF."""
    h = "ab" * 32
    text = (f"{h}  plain\n{h.upper()} *binary\n# comment\n\nSHA256 (tagged) = {h}\n"
            f"\\SHA256 (tag\\rcr) = {h}\r\n\\{h}  esc\\\\aped\n")
    with pytest.raises(ValueError, match="backslashes"):  # the name rule refuses what GNU allows
        parse_sha256sums(text)
    assert parse_sha256sums(text.replace(f"\\{h}  esc\\\\aped\n", "")) == {
        "plain": h, "binary": h, "tagged": h, "tag\rcr": h}


def test_sha256sums_does_not_mix_formats():
    """Like `sha256sum -c`: after a standard line, an indicator-less `<hex> <name>` line is malformed."""
    h = "cd" * 32
    assert parse_sha256sums(f"{h} reversed\n{h} other\n") == {"reversed": h, "other": h}
    with pytest.raises(IntegrityError, match="malformed"):
        parse_sha256sums(f"{h}  standard\n{h} reversed\n")
    with pytest.raises(IntegrityError, match="different digests"):
        parse_sha256sums(f"{h}  x\n{'ef' * 32}  x\n")


@pytest.mark.parametrize("line", [
    "ab" * 32 + "plain",           # no separator
    "ab" * 31 + "  short",         # 62 hex
    "\\" + "ab" * 32 + "  bad\\q",  # unknown escape
    "zz" * 32 + "  hex",
    "SHA256 (x) = " + "ab" * 31,
])
def test_sha256sums_malformed_lines(line):
    with pytest.raises(IntegrityError, match="malformed"):
        parse_sha256sums(line + "\n")


_path_part = st.text(st.characters(blacklist_characters="/\\\n\x00", blacklist_categories=("Cs",)),
                     min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))
_relpath = st.lists(_path_part, min_size=1, max_size=3).map("/".join).filter(lambda p: _safe(p))


def _safe(p: str) -> bool:
    try:
        check_relpath(p)
        return True
    except ValueError:
        return False


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_relpath, st.text("0123456789abcdef", min_size=64, max_size=64), min_size=1, max_size=8))
def test_sha256sums_text_parse_round_trip(sums):
    text = "".join(sha256sums_line(h, p) for p, h in sorted(sums.items()))
    assert parse_sha256sums(text) == sums


# ---------------------------------------------------------------------- terminal and log injection
EVIL_REASON = "evil\x1b]0;owned\x07\nseq 99 FORGED"


def test_history_escapes_reason_and_actor(box):
    _tmp, reg, _ = box
    actor = "mallory\x1b[2J\x9b31m"
    p = run_omrw("promote", "cls/m@v1", "--to", "production", "--reason", EVIL_REASON, registry=str(reg),
                 env={"OMR_ACTOR": actor})
    assert p.returncode == 0, p.stderr
    assert not set(p.stdout) & CONTROL_BYTES - {"\n"}
    h = run_omrw("history", "cls/m", registry=str(reg))
    assert h.returncode == 0, h.stderr
    assert "\x1b" not in h.stdout and "\x07" not in h.stdout and "\x9b" not in h.stdout
    forged = [line for line in h.stdout.splitlines() if "FORGED" in line]
    assert len(forged) == 1 and "production" in forged[0] and "evil\\x1b]0;owned\\x07\\x0aseq 99" in forged[0]
    assert "mallory\\x1b[2J\\x9b31m" in forged[0]
    assert not any(line.lstrip().startswith("seq 99") for line in h.stdout.splitlines())
    js = run_omrw("history", "cls/m", "--json", registry=str(reg))
    promote = [e for e in js.json if e.get("kind") == "promote"]
    assert promote[-1]["reason"] == EVIL_REASON and promote[-1]["actor"] == actor


def test_show_and_verify_escape_file_names(box):
    _tmp, reg, art = box
    evil = "evil\x1b[31mred\x07.bin"
    (art / evil).write_bytes(b"payload")
    p = run_omrw("register", "cls/m", "--version", "v2", "--artifacts", str(art), "--no-provenance",
                 registry=str(reg))
    assert p.returncode == 0, p.stderr
    shown = run_omrw("show", "cls/m@v2", registry=str(reg))
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "evil\\x1b[31mred\\x07.bin" in shown.stdout
    js = run_omrw("show", "cls/m@v2", "--json", registry=str(reg))
    assert evil in {f["path"] for f in js.json["files"]}
    (reg / "tasks/cls/models/m/versions/v2" / evil).write_bytes(b"PAYLOAD")
    v = run_omrw("verify", "cls/m@v2", "--mode", "strict", registry=str(reg))
    assert v.returncode == 1
    assert "\x1b" not in v.stdout + v.stderr and "\x07" not in v.stdout + v.stderr
    assert "evil\\x1b[31mred\\x07.bin" in v.stderr


def test_error_line_escapes_untrusted_text(box):
    _tmp, reg, _ = box
    line = _refused(2, "resolve", "cls/m@\x1b]0;x\x07", registry=reg, must_name="invalid reference")
    assert "\x1b" not in line


# ---------------------------------------------------------------------- verify-merge across registries
def test_verify_merge_refuses_reports_of_another_registry(box, tmp_path):
    _tmp, reg, _ = box
    other = tmp_path / "other"
    Registry(str(other)).register("cls", "m", "v1", make_artifacts(tmp_path / "pkg-other"))
    reports = []
    for i in (1, 2):
        out = tmp_path / f"shard-{i}.json"
        p = run_omrw("verify", "--all", "--shard", f"{i}/2", "--report", str(out), registry=str(other))
        assert p.returncode == 0, p.stderr
        reports.append(str(out))
    ok = run_omrw("verify-merge", *reports, "--registry", str(other), registry=str(reg))
    assert ok.returncode == 0, ok.stderr
    before = _tree(reg)
    p = run_omrw("verify-merge", *reports, "--registry", str(reg))
    assert p.returncode == 2, p.stderr
    line = p.stderr.strip()
    assert len(line.splitlines()) == 1 and "shard-1.json" in line and str(reg) in line and str(other) in line
    assert _tree(reg) == before
