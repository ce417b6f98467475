"""The registry catalog: a derived index (`index.py`) and a static HTML site (`builder.py`).

`omrw catalog -o DIR` writes `DIR/index.html` (every model, with client-side search and a
stage filter) and `DIR/models/<task>/<model>.html` (versions, signatures and approvals, the
promotion timeline, metric charts, the model card, copy-paste snippets for Snakemake and
Nextflow). Everything is inline (no server, no CDN, no external URL); every string from the
registry is HTML-escaped; a Content-Security-Policy admits only the inline style and script
the builder emits (by hash). A rebuild of an unchanged registry rewrites no file.
"""

from .builder import build_catalog  # noqa: F401
from .index import index_path, load_models, version_rows  # noqa: F401
