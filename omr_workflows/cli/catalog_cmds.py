"""Find and compare models: `search`, `compare`, and the static HTML `catalog`.

All three read the derived catalog index (`omr_workflows/catalog/index.py`: in the user's
cache, keyed per model by `audit/head.json`, refreshed for every model whose head changed), so
they never write the registry. The `--where` grammar is documented in `omr_workflows/search.py`.
"""

from __future__ import annotations

import json

from ..errors import InvalidInputError
from .common import emit, registry, safe_text


def add_parsers(sub, common) -> None:
    p = sub.add_parser("search", parents=[common], help="find versions by name, metadata, params, metrics, stage, alias",
                       description="Find versions. QUERY is free text (every word must appear in the names, "
                                   "description, metadata or params values or the model card). --where EXPR: "
                                   "FIELD OP VALUE with OP one of = != < <= > >= ~= (substring), "
                                   "FIELD in [a,b], FIELD exists; fields name task model version stage alias "
                                   "digest size created description signer approver metrics.X params.X meta.X "
                                   "(a bare key means meta.KEY). Several --where are ANDed.")
    p.add_argument("query", nargs="?", metavar="QUERY", help="free text")
    p.add_argument("--where", action="append", default=[], metavar="EXPR", help="condition (repeatable, ANDed)")
    p.add_argument("--stage", help="only versions in this stage")
    p.add_argument("--alias", help="only versions holding this alias")
    p.add_argument("--task", help="only models of this task")
    p.add_argument("--sort", metavar="KEY", help="sort by this field (e.g. metrics.auc, created, name)")
    p.add_argument("--desc", action="store_true", help="sort descending")
    p.add_argument("--limit", type=int, metavar="N", help="at most N rows")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("compare", parents=[common], help="metrics, params and metadata of versions side by side")
    p.add_argument("refs", nargs="+", metavar="REF", help="two or more references")
    p.add_argument("--only-diff", action="store_true", help="show only the keys whose values differ")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("catalog", parents=[common], help="write a static, self-contained HTML catalog of the registry")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (index.html + models/...)")
    p.add_argument("--task", help="only models of this task")
    p.set_defaults(func=cmd_catalog)


def _console():
    import os
    from io import StringIO

    from rich.console import Console

    buf = StringIO()
    try:
        width = int(os.environ.get("COLUMNS", "") or 160)
    except ValueError:
        width = 160
    return buf, Console(file=buf, width=max(60, width), highlight=False, markup=False, emoji=False)


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        v = json.dumps(v, ensure_ascii=False, sort_keys=True)
    elif isinstance(v, bool):
        v = "true" if v else "false"
    return safe_text(v)


def _warn_unreadable(models: list[dict]) -> None:
    """A model the log refuses (edited event, head and tail disagreeing...) is left out, said once."""
    import sys

    for m in models:
        if m.get("error"):
            sys.stderr.write(safe_text(f"omrw: warning: {m['task']}/{m['model']} left out: {m['error']}") + "\n")


def cmd_search(args) -> int:
    from ..catalog.index import load_models, version_rows
    from ..names import check_name
    from ..search import check_sort_key, field_value, parse_where, public_row, search_rows, MISSING

    exprs = [parse_where(w) for w in args.where]
    if args.sort:
        check_sort_key(args.sort)
    if args.limit is not None and args.limit < 0:
        raise InvalidInputError(f"--limit {args.limit}: must be 0 or more")
    task = check_name(args.task, "task") if args.task else None
    reg = registry(args)
    models = load_models(reg, task)
    _warn_unreadable(models)
    rows = search_rows(version_rows(models), query=args.query, where=exprs, stage=args.stage,
                       alias=args.alias, sort=args.sort, desc=args.desc, limit=args.limit)

    def human() -> str:
        from rich.table import Table
        from rich.text import Text

        extra = []
        for f in [e.field for e in exprs] + ([args.sort] if args.sort else []):
            if f not in extra and f not in ("name", "task", "model", "version", "stage", "alias"):
                extra.append(f)
        table = Table("ref", "stage", "aliases", "created", box=None)
        for f in extra:
            table.add_column(Text(safe_text(f)))
        for r in rows:
            vals = [f"{r['task']}/{r['model']}@{r['version']}", r["stage"], ",".join(r.get("aliases", [])),
                    (r.get("created_at") or "")[:19]]
            for f in extra:
                v = field_value(r, f)
                vals.append(None if v is MISSING else v)
            table.add_row(*(Text(_cell(x)) for x in vals))
        buf, console = _console()
        console.print(table)
        return buf.getvalue() if rows else "(no matching versions)"

    emit(args, [public_row(r) for r in rows], human)
    return 0


def cmd_compare(args) -> int:
    from ..compare import compare

    result = compare(registry(args), args.refs)
    values, differs = result["values"], result["differs"]

    def human() -> str:
        from rich.table import Table
        from rich.text import Text

        table = Table("key", box=None)
        for r in result["refs"]:
            table.add_column(Text(safe_text(r)))
        diff = set(differs)
        for k, per in values.items():
            if args.only_diff and k not in diff:
                continue
            style = "bold yellow" if k in diff else ""
            mark = "* " if k in diff else "  "
            table.add_row(Text(mark + safe_text(k), style=style),
                          *(Text(_cell(per[r]), style=style) for r in result["refs"]))
        buf, console = _console()
        console.print(table)
        return buf.getvalue() + f"{len(differs)} of {len(values)} keys differ (marked *)"

    payload = {k: v for k, v in values.items() if not args.only_diff or k in differs}
    payload["differs"] = differs
    emit(args, payload, human)
    return 0


def cmd_catalog(args) -> int:
    from ..catalog import build_catalog, index_path
    from ..names import check_name

    task = check_name(args.task, "task") if args.task else None
    reg = registry(args)
    stats: dict = {}
    result = build_catalog(reg, args.output, task=task, stats=stats)
    result["index"] = str(index_path(reg.url))
    result["reread"] = stats.get("reread", 0)
    emit(args, result, lambda: safe_text(
        f"catalog of {result['models']} models in {result['outdir']}: {len(result['written'])} of {result['pages']} "
        f"pages written, {result['unchanged']} unchanged") + f"\nopen {safe_text(result['outdir'])}/index.html")
    return 0
