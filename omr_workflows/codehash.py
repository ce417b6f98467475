"""Digests of code and data dependencies (`omrw register --code PATH --data PATH`).

Python source (`.py`, `.pyi`, `.pyw`) is hashed by its *normalised syntax tree*, never by a
token stream: comments, blank lines, indentation width, line breaks, redundant parentheses,
trailing commas, quote style and number spelling (`255`/`0xff`/`2_55`) do not change the
digest, while anything that changes the tree does: moving a statement into or out of an
`if` (indentation is structure), renaming a variable, changing a constant (`1` vs `1.0` vs
`True` differ). Docstrings (the first string statement of a module, class or function) are
dropped: editing documentation does not change the code digest. A `.py` file that does not
parse is hashed as bytes and listed under `unparsable`. Every other file hashes as bytes.

The tree is serialised by `canonical_ast` (like `ast.dump(tree, include_attributes=False)`
but omitting empty/None fields and the string-prefix `kind`, so the text is the same on
Python 3.11-3.13 whose `ast.dump` formats differ), and `del (a, b)` is normalised to
`del a, b` (black rewrites one into the other; same meaning).

Domain separation: a dependency digest is sha256 over a kind prefix (`omr-code-v1\\0` or
`omr-data-v1\\0`), a shape tag (`file`/`tree`) and the leaf hashes, so a code digest can
never equal a data digest of the same bytes, nor a file digest a folder digest. Several
dependencies combine into one composite digest over `omr-deps-v1\\0` and the sorted
(kind, digest) pairs: the order of the options and where the paths live on disk do not
matter; paths *inside* a folder do. Folders of code skip VCS and cache folders
(`SKIP_CODE_DIRS`) and `*.pyc`; data folders skip nothing.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .errors import InvalidInputError, StorageError

Kind = Literal["code", "data"]
DOMAINS: dict[str, bytes] = {"code": b"omr-code-v1\0", "data": b"omr-data-v1\0"}
PYAST_DOMAIN = b"omr-pyast-v1\0"
DEPS_DOMAIN = b"omr-deps-v1\0"
PY_SUFFIXES = (".py", ".pyi", ".pyw")
SKIP_CODE_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".ipynb_checkpoints", ".mypy_cache",
                            ".pytest_cache", ".ruff_cache", ".tox", ".nox", ".venv"})
SKIP_CODE_SUFFIXES = (".pyc", ".pyo")
_SKIP_FIELDS = frozenset({"kind", "type_comment"})
_BUF = 1 << 20


# ------------------------------------------------------------------ python source
def _drop_docstring(body: list) -> list:
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[1:]
    return body


def _write(node, out: list[str]) -> None:
    if isinstance(node, ast.AST):
        out.append(type(node).__name__)
        out.append("(")
        fields = node._fields
        body_owner = isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        for name in fields:
            if name in _SKIP_FIELDS:
                continue
            value = getattr(node, name, None)
            if name == "body" and body_owner:
                value = _drop_docstring(value)
            if isinstance(node, ast.Delete) and name == "targets":
                value = _flatten_del(value)
            if value is None or (isinstance(value, list) and not value):
                continue
            out.append(name)
            out.append("=")
            _write(value, out)
            out.append(",")
        out.append(")")
    elif isinstance(node, list):
        out.append("[")
        for item in node:
            _write(item, out)
            out.append(",")
        out.append("]")
    else:
        # Constants: the type name keeps 1, 1.0, True and '1' apart.
        out.append(f"{type(node).__name__}:{node!r}")


def _flatten_del(targets: list) -> list:
    out = []
    for t in targets:
        if isinstance(t, (ast.Tuple, ast.List)):
            out.extend(_flatten_del(t.elts))
        else:
            out.append(t)
    return out


def canonical_ast(source: bytes | str) -> str:
    """The normalised tree of Python source as text; raises SyntaxError/ValueError if unparsable."""
    tree = ast.parse(source)
    out: list[str] = []
    _write(tree, out)
    return "".join(out)


def python_digest(source: bytes | str) -> str:
    """sha256 hex of the normalised tree (the leaf hash of a Python file)."""
    return hashlib.sha256(PYAST_DOMAIN + canonical_ast(source).encode("utf-8")).hexdigest()


# ------------------------------------------------------------------ files and folders
@dataclass
class Leaf:
    path: str          # relative POSIX path inside the dependency ('' for a single file)
    mode: str          # "pyast" | "bytes"
    sha256: str
    size: int


@dataclass
class DepDigest:
    kind: str
    path: str
    shape: str         # "file" | "tree"
    digest: str        # "sha256:<hex>"
    files: int
    bytes: int
    pyast_files: int = 0
    unparsable: list[str] = field(default_factory=list)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_BUF)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


def leaf_digest(path: Path, kind: str, rel: str = "") -> tuple[Leaf, bool]:
    """(leaf, unparsable) of one file: Python code by tree, everything else by bytes."""
    try:
        size = path.stat().st_size
        if kind == "code" and path.suffix in PY_SUFFIXES:
            data = path.read_bytes()
            try:
                return Leaf(rel, "pyast", python_digest(data), size), False
            except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError):
                return Leaf(rel, "bytes", hashlib.sha256(data).hexdigest(), size), True
        return Leaf(rel, "bytes", _sha256_file(path), size), False
    except PermissionError as e:
        raise InvalidInputError(f"{kind} dependency {str(path)!r} cannot be read: {e.strerror}") from None
    except OSError as e:
        raise StorageError(f"{kind} dependency {str(path)!r} cannot be read: {e.strerror or e}") from None


def _walk(root: Path, kind: str) -> list[tuple[str, Path]]:
    """(relative POSIX path, file) for every file under root, sorted; symlinks followed, loops refused."""
    out: list[tuple[str, Path]] = []

    def fail(e: OSError) -> None:
        # os.walk skips unreadable folders by default; a silently smaller digest is worse than an error.
        raise InvalidInputError(f"{kind} dependency {str(root)!r}: cannot list {e.filename!r}: {e.strerror}")

    for sub, dirs, files in os.walk(root, followlinks=True, onerror=fail):
        if kind == "code":
            dirs[:] = [d for d in dirs if d not in SKIP_CODE_DIRS]
        here = os.path.realpath(sub)
        for d in dirs:
            full = os.path.join(sub, d)
            if os.path.islink(full):
                target = os.path.realpath(full)
                # A link to this folder or to one of its ancestors would be walked forever.
                if here == target or here.startswith(target.rstrip(os.sep) + os.sep):
                    raise InvalidInputError(f"{kind} dependency {str(root)!r}: symlink loop at "
                                            f"{Path(full).relative_to(root).as_posix()!r}")
        dirs.sort()
        for name in files:
            if kind == "code" and name.endswith(SKIP_CODE_SUFFIXES):
                continue
            full = Path(sub) / name
            if not full.is_file():
                continue  # dangling symlink, socket, fifo: not content
            out.append((full.relative_to(root).as_posix(), full))
    out.sort()
    return out


def dependency_digest(path: str | os.PathLike, kind: str) -> DepDigest:
    """The digest of one code or data dependency (a file or a folder).

    Raises InvalidInputError (missing path, unknown kind, unreadable), StorageError.
    """
    if kind not in DOMAINS:
        raise InvalidInputError(f"invalid dependency kind {kind!r}: use code or data")
    p = Path(path)
    if not p.exists():
        raise InvalidInputError(f"{kind} dependency {str(path)!r} does not exist")
    domain = DOMAINS[kind]
    if p.is_file():
        leaf, bad = leaf_digest(p, kind)
        digest = hashlib.sha256(domain + b"file\0" + leaf.mode.encode() + b"\0" + leaf.sha256.encode()).hexdigest()
        return DepDigest(kind, str(path), "file", f"sha256:{digest}", 1, leaf.size,
                         pyast_files=int(leaf.mode == "pyast"), unparsable=[p.name] if bad else [])
    if not p.is_dir():
        raise InvalidInputError(f"{kind} dependency {str(path)!r} is neither a file nor a folder")
    leaves, unparsable = [], []
    for rel, full in _walk(p, kind):
        leaf, bad = leaf_digest(full, kind, rel)
        leaves.append(leaf)
        if bad:
            unparsable.append(rel)
    listing = json.dumps([[lf.path, lf.mode, lf.sha256] for lf in leaves], separators=(",", ":"),
                         ensure_ascii=False).encode("utf-8")
    digest = hashlib.sha256(domain + b"tree\0" + listing).hexdigest()
    return DepDigest(kind, str(path), "tree", f"sha256:{digest}", len(leaves), sum(lf.size for lf in leaves),
                     pyast_files=sum(lf.mode == "pyast" for lf in leaves), unparsable=unparsable)


def composite_digest(deps: list[DepDigest] | list[tuple[str, str]]) -> str:
    """One digest over several dependencies: order-independent, kinds kept apart."""
    pairs = sorted((d.kind, d.digest) if isinstance(d, DepDigest) else (d[0], d[1]) for d in deps)
    listing = json.dumps([list(p) for p in pairs], separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(DEPS_DOMAIN + listing).hexdigest()
