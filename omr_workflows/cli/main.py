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


class _Sink:
    """Takes every argparse call for a command that was not asked for, and does nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: self


class _OnlyCommand:
    """The subparsers action, building only the parser of `wanted`: the other ~35 commands'
    parsers cost ~10 ms, a sixth of a resolve (docs/DESIGN.md, "Start-up")."""

    def __init__(self, sub, wanted: str):
        self.sub, self.wanted, self.found = sub, wanted, False

    def add_parser(self, name, **kwargs):
        if name != self.wanted:
            return _Sink()
        self.found = True
        return self.sub.add_parser(name, **kwargs)


def _command_word(argv: list[str], parent: argparse.ArgumentParser) -> str | None:
    """The first word of argv that is not an option or an option's value (the command, if valid)."""
    takes_value = {s for a in parent._actions if a.nargs != 0 for s in a.option_strings}
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == "--":
            return None
        elif word.startswith("-"):
            skip = word in takes_value
        else:
            return word
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The `omrw` parser; given argv, only the part that parses its command (all of it for help,
    for no command or for one that does not exist, so argparse words the error as usual)."""
    import importlib

    parent = common.common_parent()
    wanted = _command_word(argv, parent) if argv is not None else None
    parser = argparse.ArgumentParser(
        prog="omrw", parents=[parent],
        description="Register, resolve, promote, verify and pin models in an immutable, audited registry.",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    target = _OnlyCommand(sub, wanted) if wanted else sub
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"{__package__}.{name}":
                continue
            raise
        module.add_parsers(target, parent)
    if wanted and not target.found:
        return build_parser()
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

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
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
