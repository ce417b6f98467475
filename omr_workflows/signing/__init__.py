"""Signing primitives (docs/DESIGN.md, "Governance"): EC P-256 keys, DSSE v1 signatures, and the
OpenSSF model-signing v1.0 bundle.

Crypto only, no registry I/O: `governance.py` decides what must be signed and by whom. No
imports here, so that importing `omr_workflows.signing.dsse` on a path that checks no signature
costs nothing; `cryptography` is imported inside the functions that use it.
"""
