"""Code digests (codehash.py): formatting never matters, structure always does.

Property tests generate small programs as a tiny syntax tree, render each one in many
random styles (indentation width, tabs, comments, blank lines, redundant parentheses,
trailing commas, line breaks inside brackets, backslash continuations, semicolons, quote
style, number spelling) and check that every rendering has one digest; then apply
structural mutations (a statement moved into or out of an `if`, a variable renamed, a
constant changed) and check that the digest changes. Also checked against real code: the
standard library re-printed by `ast.unparse` and stripped of comments.
"""

from __future__ import annotations

import ast
import io
import random
import sys
import tokenize
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omr_workflows import codehash
from omr_workflows.codehash import canonical_ast, composite_digest, dependency_digest, python_digest
from omr_workflows.errors import InvalidInputError

# ---------------------------------------------------------------------- a tiny program model
NAMES = ["a", "b", "c", "x", "y", "total", "item"]
FUNCS = ["f", "g", "len", "print", "max"]
BINOPS = ["+", "-", "*", "//", "%"]
CMPOPS = ["<", ">", "==", "!=", "<=", ">="]
AUGOPS = ["+=", "-=", "*="]
WORDS = ["alpha", "beta", "gamma", "ok", "x1", "hello"]

name_e = st.sampled_from(NAMES).map(lambda n: ("name", n))
num_e = st.integers(0, 5000).map(lambda n: ("num", n))
str_e = st.sampled_from(WORDS).map(lambda s: ("str", s))


def _extend(children):
    return st.one_of(
        st.tuples(st.just("bin"), st.sampled_from(BINOPS), children, children),
        st.tuples(st.just("cmp"), st.sampled_from(CMPOPS), children, children),
        st.tuples(st.just("call"), st.sampled_from(FUNCS), st.lists(children, max_size=3).map(tuple)),
        st.tuples(st.just("list"), st.lists(children, max_size=3).map(tuple)),
    )


exprs = st.recursive(st.one_of(name_e, num_e, str_e), _extend, max_leaves=6)
calls = st.tuples(st.just("call"), st.sampled_from(FUNCS), st.lists(exprs, max_size=3).map(tuple))

simple_stmts = st.one_of(
    st.tuples(st.just("assign"), st.sampled_from(NAMES), exprs),
    st.tuples(st.just("aug"), st.sampled_from(NAMES), st.sampled_from(AUGOPS), exprs),
    st.tuples(st.just("expr"), calls),
    st.just(("pass",)),
)


def stmt_lists(depth: int, min_size: int = 1):
    if depth == 0:
        return st.lists(simple_stmts, min_size=min_size, max_size=3).map(tuple)
    inner = stmt_lists(depth - 1)
    compound = st.one_of(
        st.tuples(st.just("if"), exprs, inner, st.one_of(st.just(()), inner)),
        st.tuples(st.just("for"), st.sampled_from(NAMES), exprs, inner),
        st.tuples(st.just("def"), st.sampled_from(["fn", "helper", "step"]),
                  st.lists(st.sampled_from(NAMES), max_size=3, unique=True).map(tuple),
                  st.one_of(st.none(), st.sampled_from(WORDS)), inner, exprs),
    )
    return st.lists(st.one_of(simple_stmts, compound), min_size=min_size, max_size=4).map(tuple)


programs = stmt_lists(2)


# ---------------------------------------------------------------------- rendering in random styles
class Renderer:
    """Render a program; `rnd` decides every formatting choice, never the structure."""

    def __init__(self, rnd: random.Random | None):
        self.rnd = rnd

    def chance(self, p: float) -> bool:
        return self.rnd is not None and self.rnd.random() < p

    def pick(self, options, default):
        return self.rnd.choice(options) if self.rnd is not None else default

    def sp(self) -> str:
        return self.pick(["", " ", "  "], " ")

    def comment(self) -> str:
        return self.pick(["  # note", "# x = 1", "\t#: tricky ( [ {", "  # if y:"], "")

    # expressions ---------------------------------------------------------
    def num(self, n: int) -> str:
        style = self.pick(["dec", "hex", "oct", "bin", "under"], "dec")
        if style == "hex":
            return self.pick([hex(n), hex(n).upper().replace("0X", "0x")], hex(n))
        if style == "oct":
            return oct(n)
        if style == "bin":
            return bin(n)
        if style == "under" and n >= 10:
            s = str(n)
            return s[0] + "_" + s[1:]
        return str(n)

    def expr(self, e, top: bool = False) -> str:
        kind = e[0]
        if kind == "name":
            text = e[1]
        elif kind == "num":
            text = self.num(e[1])
        elif kind == "str":
            q = self.pick(['"', "'"], '"')
            text = self.pick(["", "u"], "") + q + e[1] + q
        elif kind in ("bin", "cmp"):
            _, op, left, right = e
            text = f"{self.wrap(left)}{self.sp()}{op}{self.sp()}{self.wrap(right)}"
            if not top:
                text = f"({text})"
        elif kind == "call":
            text = f"{e[1]}({self.items(e[2])})"
        elif kind == "list":
            text = f"[{self.items(e[1])}]"
        else:
            raise AssertionError(e)
        if self.chance(0.15):
            text = f"({self.sp()}{text}{self.sp()})"
        return text

    def wrap(self, e) -> str:
        # Operands that are operations always get parentheses: that keeps the tree unambiguous.
        return self.expr(e, top=False)

    def items(self, elts) -> str:
        if not elts:
            return ""
        parts = [self.expr(x, top=True) for x in elts]
        if self.chance(0.3):  # one item per line, any indentation, magic trailing comma
            pad = self.pick(["", " ", "        ", "\t"], "")
            return "\n" + "".join(f"{pad}{p},{self.comment() if self.chance(0.3) else ''}\n" for p in parts)
        text = ("," + self.sp()).join(parts)
        if self.chance(0.3):
            text += ","
        return text

    # statements ------------------------------------------------------------
    def simple(self, s) -> str:
        kind = s[0]
        eq = f"{self.sp()}={self.sp()}" if self.rnd else " = "
        if kind == "assign":
            value = self.expr(s[2], top=True)
            if self.chance(0.1):
                return f"{s[1]} ={self.sp()}\\\n{self.pick(['', '   ', chr(9)], '')}{value}"
            return f"{s[1]}{eq}{value}"
        if kind == "aug":
            return f"{s[1]}{self.sp()}{s[2]}{self.sp()}{self.expr(s[3], top=True)}"
        if kind == "expr":
            return self.expr(s[1], top=True)
        if kind == "pass":
            return "pass"
        raise AssertionError(s)

    def block(self, stmts, indent: str, out: list[str]) -> None:
        i = 0
        while i < len(stmts):
            s = stmts[i]
            if self.chance(0.2):
                out.append(self.pick(["", "   ", "\t"], "") + "\n")
            if self.chance(0.15):
                out.append(self.pick(["", indent, "  ", "\t\t"], "") + "# a comment line\n")
            if s[0] in ("if", "for", "def"):
                self.compound(s, indent, out)
                i += 1
                continue
            line = self.simple(s)
            # Join following simple statements with semicolons (same block, same meaning).
            while i + 1 < len(stmts) and stmts[i + 1][0] not in ("if", "for", "def") and self.chance(0.25):
                i += 1
                line += f";{self.sp()}{self.simple(stmts[i])}"
            if self.chance(0.1):
                line += ";"
            if self.chance(0.2):
                line += self.comment()
            out.append(indent + line + "\n")
            i += 1

    def body(self, stmts, indent: str, out: list[str], header: str) -> None:
        all_simple = all(s[0] not in ("if", "for", "def") for s in stmts)
        if all_simple and self.chance(0.2):
            out.append(f"{indent}{header}{self.sp()}{'; '.join(self.simple(s) for s in stmts)}\n")
            return
        out.append(f"{indent}{header}{self.comment() if self.chance(0.2) else ''}\n")
        unit = self.pick(["  ", "    ", "\t", "   ", "        "], "    ")
        self.block(stmts, indent + unit, out)

    def compound(self, s, indent: str, out: list[str]) -> None:
        kind = s[0]
        if kind == "if":
            _, cond, body, orelse = s
            c = self.expr(cond, top=True)
            if self.chance(0.3):
                c = f"({c})"
            self.body(body, indent, out, f"if {c}:")
            if orelse:
                self.body(orelse, indent, out, "else:")
        elif kind == "for":
            _, var, it, body = s
            self.body(body, indent, out, f"for {var} in {self.expr(it, top=True)}:")
        elif kind == "def":
            _, name, params, doc, body, ret = s
            ps = ("," + self.sp()).join(params)
            if params and self.chance(0.3):
                ps += ","
            out.append(f"{indent}def {name}({ps}):\n")
            unit = self.pick(["  ", "    ", "\t"], "    ")
            if doc is not None:
                q = self.pick(['"""', "'''"], '"""')
                out.append(f"{indent}{unit}{q}{doc}{q}\n")
            self.block(body, indent + unit, out)
            out.append(f"{indent}{unit}return {self.expr(ret, top=True)}\n")

    def render(self, program) -> str:
        out: list[str] = []
        if self.chance(0.3):
            out.append("#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n")
        self.block(program, "", out)
        if self.chance(0.3):
            out.append("\n\n# end\n")
        return "".join(out)


def render(program, seed: int | None = None) -> str:
    return Renderer(random.Random(seed) if seed is not None else None).render(program)


# ---------------------------------------------------------------------- structural mutations
def _blocks(program):
    """Every statement list in the program with a setter to rebuild it: (stmts, rebuild)."""
    yield program, lambda new: new
    for i, s in enumerate(program):
        def set_child(idx, pos):
            def rebuild(new_child, idx=idx, pos=pos):
                node = list(program[idx])
                node[pos] = new_child
                return program[:idx] + (tuple(node),) + program[idx + 1:]
            return rebuild
        if s[0] == "if":
            for pos in (2, 3):
                if s[pos]:
                    for sub, reb in _blocks(s[pos]):
                        yield sub, (lambda new, reb=reb, outer=set_child(i, pos): outer(reb(new)))
        elif s[0] == "for":
            for sub, reb in _blocks(s[3]):
                yield sub, (lambda new, reb=reb, outer=set_child(i, 3): outer(reb(new)))
        elif s[0] == "def":
            for sub, reb in _blocks(s[4]):
                yield sub, (lambda new, reb=reb, outer=set_child(i, 4): outer(reb(new)))


def move_into_if(program):
    """The statement after an `if` moves to the end of the if body (a dedent undone)."""
    for stmts, rebuild in _blocks(program):
        for i in range(len(stmts) - 1):
            if stmts[i][0] == "if" and stmts[i + 1][0] not in ("def",):
                _, cond, body, orelse = stmts[i]
                moved = ("if", cond, body + (stmts[i + 1],), orelse)
                return rebuild(stmts[:i] + (moved,) + stmts[i + 2:])
    return None


def move_out_of_if(program):
    """The last statement of a (multi-statement) if body moves after the if (a dedent)."""
    for stmts, rebuild in _blocks(program):
        for i, s in enumerate(stmts):
            if s[0] == "if" and len(s[2]) >= 2:
                _, cond, body, orelse = s
                return rebuild(stmts[:i] + (("if", cond, body[:-1], orelse), body[-1]) + stmts[i + 1:])
    return None


def _map_exprs(node, fn):
    if isinstance(node, tuple):
        mapped = fn(node)
        if mapped is not node:
            return mapped
        return tuple(_map_exprs(x, fn) for x in node)
    return node


def rename_variable(node, old: str, new: str):
    """Rename every occurrence of a variable: loads, assignment and loop targets, parameters."""
    if not isinstance(node, tuple):
        return node
    if node == ("name", old):
        return ("name", new)
    if node and node[0] in ("assign", "aug", "for") and node[1] == old:
        node = (node[0], new) + node[2:]
    if node and node[0] == "def":
        node = node[:2] + (tuple(new if p == old else p for p in node[2]),) + node[3:]
    return tuple(rename_variable(x, old, new) for x in node)


def change_constant(program):
    """Add one to the first integer constant."""
    done = [False]

    def walk(node):
        if isinstance(node, tuple):
            if len(node) == 2 and node[0] == "num" and not done[0]:
                done[0] = True
                return ("num", node[1] + 1)
            return tuple(walk(x) for x in node)
        return node

    out = walk(program)
    return out if done[0] else None


def digest_of(program, seed=None) -> str:
    return python_digest(render(program, seed))


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------- properties
def _tree(src: str) -> str:
    """ast.dump with the string-prefix flag cleared: an oracle independent of canonical_ast."""
    tree = ast.parse(src)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            node.kind = None
    return ast.dump(tree)


@SETTINGS
@given(programs, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_any_formatting_keeps_the_digest(program, seed1, seed2):
    plain, styled1, styled2 = render(program), render(program, seed1), render(program, seed2)
    # The renderer must not change meaning, or this property would prove nothing.
    assert _tree(styled1) == _tree(plain) == _tree(styled2)
    assert python_digest(plain) == python_digest(styled1) == python_digest(styled2)


def test_renderer_really_varies_the_text():
    program = (("assign", "x", ("bin", "+", ("num", 300), ("name", "a"))),
               ("if", ("cmp", "<", ("name", "x"), ("num", 10)),
                (("expr", ("call", "f", (("str", "ok"), ("name", "x")))), ("aug", "x", "+=", ("num", 1))), ()),
               ("def", "fn", ("a", "b"), "docs", (("assign", "c", ("list", (("name", "a"), ("num", 2)))),),
                ("name", "c")))
    texts = {render(program, seed) for seed in range(40)}
    assert len(texts) >= 35
    assert len({python_digest(t) for t in texts}) == 1
    assert any("#" in t for t in texts) and any("\t" in t for t in texts) and any(";" in t for t in texts)


@SETTINGS
@given(st.tuples(simple_stmts), exprs, stmt_lists(1), simple_stmts, stmt_lists(1, min_size=0),
       st.integers(0, 2**32 - 1))
def test_statement_moved_into_or_out_of_if_changes_digest(prefix, cond, body, after, suffix, seed):
    program = prefix + (("if", cond, body, ()), after) + suffix
    into = move_into_if(program)
    assert into is not None and into != program
    assert digest_of(into, seed) != digest_of(program, seed)
    out = move_out_of_if(into)
    assert out is not None
    assert digest_of(out, seed) != digest_of(into, seed)


@SETTINGS
@given(programs, st.integers(0, 2**32 - 1))
def test_renamed_variable_changes_digest(program, seed):
    program = (("assign", "x", ("num", 1)),) + program
    renamed = rename_variable(program, "x", "x_renamed")
    assert renamed != program
    assert digest_of(renamed, seed) != digest_of(program, seed)


@SETTINGS
@given(programs, st.integers(0, 2**32 - 1))
def test_changed_constant_changes_digest(program, seed):
    program = (("assign", "a", ("num", 7)),) + program
    changed = change_constant(program)
    assert changed is not None
    assert digest_of(changed, seed) != digest_of(program, seed)


@SETTINGS
@given(programs, st.integers(0, 2**32 - 1), st.sampled_from(WORDS))
def test_docstring_edits_do_not_change_digest(program, seed, word):
    """Documented choice: docstrings are documentation, dropped before hashing."""
    def redoc(node):
        if isinstance(node, tuple):
            if node and node[0] == "def":
                return node[:3] + (f"changed docs {word}",) + tuple(redoc(x) for x in node[4:])
            return tuple(redoc(x) for x in node)
        return node

    with_def = program + (("def", "fn", ("a",), "original docs", (("pass",),), ("name", "a")),)
    assert digest_of(redoc(with_def), seed) == digest_of(with_def)


# ---------------------------------------------------------------------- explicit cases
BEFORE_BLACK = '''\
import os,sys
def compute( values,scale = 2,*args,**kw ):
  # weird spacing, single quotes
  result=[ v*scale for v in values if v>0 ]
  mapping={'a':1,'b':2,
     'c':3}
  if (len(result)>0): return result
  del (mapping, scale)
  x = 0XFF ; y = 1_000
  return None
class K( object ) :
    def m(self): return  compute([1,2,3])  # trailing comment
'''
AFTER_BLACK = '''\
import os, sys


def compute(values, scale=2, *args, **kw):
    # weird spacing, single quotes
    result = [v * scale for v in values if v > 0]
    mapping = {
        "a": 1,
        "b": 2,
        "c": 3,
    }
    if len(result) > 0:
        return result
    del mapping, scale
    x = 0xFF
    y = 1000
    return None


class K(object):
    def m(self):
        return compute([1, 2, 3])  # trailing comment
'''


def test_black_style_reformat_keeps_digest():
    assert BEFORE_BLACK != AFTER_BLACK
    assert python_digest(BEFORE_BLACK) == python_digest(AFTER_BLACK)


DEDENT_A = "def f(x):\n    y = 0\n    if x:\n        y = 1\n        y = y * 2\n    return y\n"
DEDENT_B = "def f(x):\n    y = 0\n    if x:\n        y = 1\n    y = y * 2\n    return y\n"


def test_indentation_that_changes_control_flow_changes_digest():
    assert DEDENT_A.replace(" ", "") == DEDENT_B.replace(" ", "")  # only whitespace differs
    assert python_digest(DEDENT_A) != python_digest(DEDENT_B)


@pytest.mark.parametrize("a,b", [
    ("x = 1\n", "x = 1.0\n"),
    ("x = 1\n", "x = True\n"),
    ("x = '1'\n", "x = 1\n"),
    ("x = b'a'\n", "x = 'a'\n"),
    ("total = a + b\n", "total = b + a\n"),
    ("count = 0\n", "counter = 0\n"),
    ("def f(a, b): return a\n", "def f(b, a): return a\n"),
    ("x = -1\n", "x = 1\n"),
    ("while x:\n    x -= 1\n    break\n", "while x:\n    x -= 1\nbreak\n"),
    ("return_ = f(a)(b)\n", "return_ = f(a, b)\n"),
    ("for i in r:\n    pass\nelse:\n    y = 1\n", "for i in r:\n    pass\ny = 1\n"),
    ("try:\n    a()\nexcept E:\n    b()\n", "try:\n    a()\nfinally:\n    b()\n"),
])
def test_meaningful_changes_change_digest(a, b):
    assert python_digest(a) != python_digest(b)


def test_real_code_reprinted_or_stripped_of_comments_keeps_digest():
    """Real code: stdlib modules, re-printed by ast.unparse (other quotes, parens, layout) and
    stripped of every comment, keep their digest."""
    stdlib = Path(ast.__file__).parent
    files = sorted(stdlib.glob("*.py"))[:60]
    assert len(files) >= 40
    for path in files:
        src = path.read_bytes()
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        reprinted = ast.unparse(tree)
        tokens = [t for t in tokenize.tokenize(io.BytesIO(src).readline) if t.type != tokenize.COMMENT]
        no_comments = tokenize.untokenize(tokens)
        d = python_digest(src)
        assert python_digest(reprinted) == d, path.name
        assert python_digest(no_comments) == d, path.name


def test_canonical_form_ignores_line_numbers_and_kind():
    assert canonical_ast("x = u'a'") == canonical_ast('\n\nx = "a"')
    assert "lineno" not in canonical_ast("x = 1")


# ---------------------------------------------------------------------- files, folders, domains
def test_python_file_digest_ignores_comments_other_files_do_not(tmp_path):
    py1, py2 = tmp_path / "a.py", tmp_path / "b.py"
    py1.write_text("x = 1\n")
    py2.write_text("# comment\n\nx = (1)  # more\n")
    assert dependency_digest(py1, "code").digest == dependency_digest(py2, "code").digest
    r1, r2 = tmp_path / "a.R", tmp_path / "b.R"
    r1.write_text("x <- 1\n")
    r2.write_text("# comment\nx <- 1\n")
    assert dependency_digest(r1, "code").digest != dependency_digest(r2, "code").digest
    d = dependency_digest(py1, "code")
    assert d.shape == "file" and d.pyast_files == 1 and d.files == 1


def test_unparsable_python_is_hashed_as_bytes_and_listed(tmp_path):
    bad = tmp_path / "tmpl.py"
    bad.write_text("def broken(:\n")
    d = dependency_digest(bad, "code")
    assert d.unparsable == ["tmpl.py"] and d.pyast_files == 0
    bad.write_text("def broken(:\n# changed\n")
    assert dependency_digest(bad, "code").digest != d.digest


def test_domain_separation_code_vs_data_and_file_vs_tree(tmp_path):
    f = tmp_path / "same.txt"
    f.write_bytes(b"identical bytes\n")
    code, data = dependency_digest(f, "code"), dependency_digest(f, "data")
    assert code.digest != data.digest
    py = tmp_path / "m.py"
    py.write_text("x = 1\n")
    assert dependency_digest(py, "code").digest != dependency_digest(py, "data").digest
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "same.txt").write_bytes(b"identical bytes\n")
    assert dependency_digest(folder, "data").digest != data.digest
    assert composite_digest([code]) != composite_digest([data])


def test_folder_digest_structure_and_skips(tmp_path):
    code = tmp_path / "src"
    (code / "pkg").mkdir(parents=True)
    (code / "pkg" / "mod.py").write_text("def f():\n    return 1\n")
    (code / "run.sh").write_text("echo hi\n")
    base = dependency_digest(code, "code")
    assert base.shape == "tree" and base.files == 2 and base.pyast_files == 1
    # Reformatting a module and adding caches / VCS metadata keeps the digest.
    (code / "pkg" / "mod.py").write_text("# reformatted\ndef f():\n  return (1)\n")
    (code / "pkg" / "__pycache__").mkdir()
    (code / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0\1")
    (code / ".git").mkdir()
    (code / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    assert dependency_digest(code, "code").digest == base.digest
    # Renaming a file, adding one, or changing a script changes it.
    (code / "run.sh").rename(code / "run2.sh")
    assert dependency_digest(code, "code").digest != base.digest
    (code / "run2.sh").rename(code / "run.sh")
    assert dependency_digest(code, "code").digest == base.digest
    (code / "new.txt").write_text("x")
    assert dependency_digest(code, "code").digest != base.digest
    # Data folders skip nothing.
    data = dependency_digest(code, "data")
    assert data.files == 5


def test_composite_is_order_independent_and_path_independent(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x.py").write_text("x = 1\n")
    (b / "d.csv").write_text("1,2\n")
    d1 = [dependency_digest(a, "code"), dependency_digest(b, "data")]
    assert composite_digest(d1) == composite_digest(list(reversed(d1)))
    moved = tmp_path / "elsewhere"
    a.rename(moved)
    assert composite_digest([dependency_digest(moved, "code"), d1[1]]) == composite_digest(d1)
    assert composite_digest(d1) != composite_digest(d1[:1])


def test_bad_dependency_paths(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        dependency_digest(tmp_path / "missing", "code")
    with pytest.raises(InvalidInputError, match="kind"):
        dependency_digest(tmp_path, "weights")
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "self").symlink_to(loop)
    with pytest.raises(InvalidInputError, match="symlink loop"):
        dependency_digest(loop, "data")


def test_same_target_linked_twice_is_not_a_loop(tmp_path):
    target = tmp_path / "shared"
    target.mkdir()
    (target / "f.bin").write_bytes(b"abc")
    root = tmp_path / "data"
    root.mkdir()
    (root / "one").symlink_to(target)
    (root / "two").symlink_to(target)
    assert dependency_digest(root, "data").files == 2


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_unreadable_subfolder_is_an_error_not_a_smaller_digest(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    root = tmp_path / "d"
    (root / "locked").mkdir(parents=True)
    (root / "locked" / "f").write_text("x")
    (root / "locked").chmod(0)
    try:
        with pytest.raises(InvalidInputError, match="cannot list"):
            dependency_digest(root, "data")
    finally:
        (root / "locked").chmod(0o755)


def test_module_constants_are_distinct():
    prefixes = list(codehash.DOMAINS.values()) + [codehash.PYAST_DOMAIN, codehash.DEPS_DOMAIN]
    assert len(set(prefixes)) == len(prefixes)
