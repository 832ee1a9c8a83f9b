"""The `kb` command line: thin commands over the library modules.

Each command parses its options, calls one library function, and prints the result. Errors are
typed inside the library and translated to one line and an exit code in one place
(``kb.cli.common.run_command``): 0 success, 1 partial failure or nothing found, 2 usage error.
"""

from __future__ import annotations

from kb.cli.common import app, main

# Importing the command modules registers their commands on ``app``.
from kb.cli import ingest_cmds  # noqa: E402,F401  isort: skip
from kb.cli import related_cmds  # noqa: E402,F401  isort: skip
from kb.cli import search_cmds  # noqa: E402,F401  isort: skip
from kb.cli import organize_cmds  # noqa: E402,F401  isort: skip
from kb.cli import fetch_cmds  # noqa: E402,F401  isort: skip

__all__ = ["app", "main"]
