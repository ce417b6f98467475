"""`omrw components`: where the shipped workflow components (Snakemake rule library and
wrappers, Nextflow modules) are on this machine, for `include:`, `module`, `--wrapper-prefix`
and Nextflow `include`.

A source or editable checkout uses the folders beside the package (`snakemake_rules/`,
`nextflow_modules/` at the repository root), so edits show up at once; an installed wheel
uses the copies packaged with it (top-level `snakemake_rules`/`nextflow_modules` package
data, or `omr_workflows/_components/`).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import NotFoundError

# component -> (top-level folder, sub-path inside it, a file that must be there)
COMPONENTS = {
    "snakemake": ("snakemake_rules", "", "omr.smk"),
    "wrappers": ("snakemake_rules", "wrappers", "omr/resolve/wrapper.py"),
    "nextflow": ("nextflow_modules", "", "omr"),
}


def add_parsers(sub, common) -> None:
    p = sub.add_parser(
        "components", parents=[common],
        help="print the installed path of the shipped workflow components",
        description="Print where the Snakemake rule library (snakemake), the Snakemake wrappers "
                    "(wrappers: use as --wrapper-prefix file:PATH/ with wrapper: \"omr/resolve\") and the "
                    "Nextflow modules (nextflow) are installed. Without an argument, print all three.",
    )
    p.add_argument("component", nargs="?", choices=sorted(COMPONENTS), help="which component (default: all)")
    p.set_defaults(func=cmd_components)


def _candidates(top: str) -> list[Path]:
    pkg = Path(__file__).resolve().parent.parent          # .../omr_workflows
    found = [pkg.parent / top, pkg / "_components" / top]
    try:
        import importlib.util

        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        found += [Path(p) for p in (spec.submodule_search_locations or [])]
    return found


def component_path(name: str) -> Path:
    """The folder of one component; NotFoundError when this installation lacks it."""
    top, sub, marker = COMPONENTS[name]
    for base in _candidates(top):
        path = base / sub if sub else base
        if (path / marker).exists():
            return path
    raise NotFoundError(f"workflow component {name!r} ({top}/{sub}) is not installed with omr-workflows "
                        f"at {Path(__file__).resolve().parent.parent}; reinstall the package or use a source checkout",
                        obj=name)


def cmd_components(args) -> int:
    from .common import emit

    names = [args.component] if args.component else sorted(COMPONENTS)
    paths = {n: str(component_path(n)) for n in names}
    if args.component:
        emit(args, {"component": args.component, "path": paths[args.component]}, paths[args.component])
    else:
        emit(args, paths, "\n".join(f"{n}\t{p}" for n, p in paths.items()))
    return 0

