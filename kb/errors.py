"""kb's one error hierarchy.

Every error the library raises on purpose derives from ``KbError``; its message is one line a user can
act on, and its ``exit_code`` is what the command line exits with. The CLI translates them in one
place (``kb.cli.common.run_command``); Python callers catch ``KbError`` or a subclass.

    KbError (1)
    ├── UsageError (2)          the arguments or the query are wrong: nothing was done
    ├── NotFoundError (1)       a name or a query matches nothing in the library
    ├── RefusedError (1)        a change kb will not make (a duplicate, a file changed under it)
    ├── LockedError (3)         another ingest holds the index
    └── BadIndexError (1)       the index cannot be used as it is
        ├── NoIndexError        there is none yet
        ├── CorruptIndexError   it is damaged
        └── IndexMismatchError  another kb version wrote it

Stages keep their own subclasses where a caller needs to tell cases apart (``mdedit.NoCheckbox``,
``organize.DuplicatePaper``); each derives from one of these.
"""

from __future__ import annotations

from pathlib import Path


class KbError(Exception):
    """Base of every error kb raises on purpose; ``str(error)`` is a one-line message."""

    exit_code = 1


class UsageError(KbError):
    """The user's arguments or query cannot be given a meaning (exit 2)."""

    exit_code = 2


class NotFoundError(KbError):
    """Nothing in the library matches what the user named (exit 1)."""


class RefusedError(KbError):
    """A change kb refuses to make, writing nothing (exit 1)."""


class LockedError(KbError):
    """Another ``kb ingest`` holds the index (exit 3)."""

    exit_code = 3


class BadIndexError(KbError):
    """The index cannot be used as it is."""


class NoIndexError(BadIndexError):
    def __init__(self, path: Path | str) -> None:
        super().__init__(f"no kb index at {path}: run `kb ingest PAPER_DIR` first")


class CorruptIndexError(BadIndexError):
    """A file of the index is damaged or missing; the next ingest rebuilds it."""


class IndexMismatchError(BadIndexError):
    """The index was written by a kb whose formats differ from this one."""
