"""`omrw` entry point: builds the parser from the command modules and maps errors to exit codes.

Exit codes (docs/DESIGN.md, "Overview"): 0 ok, 1 integrity failure, 2 bad input or usage, 3 not found,
4 conflict, 5 storage or other error. Errors are one line on stderr; set OMR_DEBUG=1 or
pass --debug for a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import common

COMMAND_MODULES = ("registry_cmds", "log_cmds", "verify_cmds", "provenance_cmds", "misc_cmds", "schema_cmds",
                   "catalog_cmds",
                   "governance_cmds", "lifecycle_cmds", "bundle_cmds")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("omr-workflows")
    except Exception:
        return "0+unknown"


class _VersionAction(argparse.Action):
    """Looks the version up only when asked: importlib.metadata costs ~20 ms at start-up."""

    def __call__(self, parser, namespace, values, option_string=None):
        sys.stdout.write(f"omrw {_version()}\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parent = common.common_parent()
    parser = argparse.ArgumentParser(
        prog="omrw", parents=[parent],
        description="Register, resolve, promote, verify and pin models in an immutable, audited registry.",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"{__package__}.{name}":
                continue
            raise
        module.add_parsers(sub, parent)
    return parser


def _fail(message: str, code: int) -> int:
    # Messages quote untrusted names and file contents: escaped, they stay one line and inert.
    sys.stderr.write(f"omrw: error: {common.safe_text(message)}\n")
    return code


def main(argv: list[str] | None = None) -> int:
    # pydantic looks for plugins through importlib.metadata (~10 ms per start); the CLI uses none.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from ..constants import ENV_OFFLINE, debug_enabled
    from ..errors import OmrError

    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False) or debug_enabled()
    if getattr(args, "offline", False):
        os.environ[ENV_OFFLINE] = "1"  # storage, hooks and the engines' subprocesses all read it
    try:
        return int(args.func(args) or 0)
    except OmrError as e:
        if debug:
            raise
        return _fail(str(e).replace("\n", " "), e.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return 0
    except Exception as e:  # unexpected: exit 5, never 1 (1 means an integrity failure)
        if debug:
            raise
        text = str(e).replace("\n", " ") or type(e).__name__
        return _fail(f"{type(e).__name__}: {text} (set OMR_DEBUG=1 for a traceback)", 5)


if __name__ == "__main__":
    sys.exit(main())
