"""The `omrw` command line: `main.py` builds the parser and maps errors to exit codes."""
