"""Air-gapped bundles, import and mirror (docs/DESIGN.md, "Bundles").

index.py holds the format, source.py what a source vouches for, tarfmt.py the tar, intake.py
the write-once publishing into a target, ops.py the three commands.
"""
