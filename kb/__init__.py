"""kb: a local, offline knowledge base for research papers kept in a Markdown reading list.

The Python API is one class, ``kb.Library`` (see ``kb/api.py`` and the README's "Python API"). The
result types are importable from here too; the heavier ones load on first use, so ``import kb``
stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kb.api import Library
from kb.errors import BadIndexError, KbError, LockedError, NotFoundError, RefusedError, UsageError
from kb.models import Link, Paper

if TYPE_CHECKING:
    from kb.related import Related, RelatedResults
    from kb.search import Hit, SearchResult, SearchResults

__version__ = "0.2.0"

_LAZY = {
    "Hit": "kb.search",
    "SearchResult": "kb.search",
    "SearchResults": "kb.search",
    "Related": "kb.related",
    "RelatedResults": "kb.related",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kb' has no attribute {name!r}")


__all__ = [
    "BadIndexError",
    "Hit",
    "KbError",
    "Library",
    "Link",
    "LockedError",
    "NotFoundError",
    "Paper",
    "RefusedError",
    "Related",
    "RelatedResults",
    "SearchResult",
    "SearchResults",
    "UsageError",
]
