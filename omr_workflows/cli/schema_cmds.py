"""`omrw schema`: print or write the JSON Schemas of every file format."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InvalidInputError
from .common import emit


def add_parsers(sub, common) -> None:
    p = sub.add_parser("schema", parents=[common], help="print the JSON Schema of a file format")
    p.add_argument("name", nargs="?", help="format name (default: list them)")
    p.add_argument("--write", metavar="DIR", help="write every schema into DIR")
    p.set_defaults(func=cmd_schema)


def cmd_schema(args) -> int:
    from .. import schemas

    if args.write:
        paths = schemas.write_all(Path(args.write))
        emit(args, [str(p) for p in paths], "\n".join(str(p) for p in paths))
        return 0
    if not args.name:
        emit(args, sorted(schemas.FORMATS), "\n".join(sorted(schemas.FORMATS)))
        return 0
    if args.name not in schemas.FORMATS:
        raise InvalidInputError(f"unknown format {args.name!r}: one of {', '.join(sorted(schemas.FORMATS))}")
    sys.stdout.write(schemas.render(args.name))
    return 0
