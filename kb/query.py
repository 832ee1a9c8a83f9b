"""Parsing what the user types after `kb search` into plain clauses.

kb parses queries itself instead of handing them to tantivy's query parser because:
- a typo or a stray quote must give a one-line message or a best-effort answer, never a parser error;
- a hyphenated word (``Therac-25``, ``lip-sync``) must match papers that write it with a space, a
  hyphen or a line break, so it becomes separate required-together terms plus a phrase *bonus*,
  not a strict phrase;
- Chinese needs phrase queries over the one-token-per-character ``*_zh`` fields;
- the same parse feeds both the keyword side (clauses) and the semantic side (``free_text``).

Syntax: words, ``"exact phrases"``, ``AND`` / ``OR`` / ``NOT`` or ``+word`` / ``-word``, and fields
``title:`` ``alias:`` ``note:`` ``topic:`` ``venue:`` ``author:`` ``text:`` ``year:2019``
``year:[2018 TO 2020]`` ``year:2018-2020`` ``read:yes|no``. Words are OR-ed (ranked by BM25) unless
marked required.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kb.errors import UsageError
from kb.stopwords import FUNCTION_WORDS

MAX_QUERY_CHARS = 2000
MAX_CLAUSES = 64

# Paper-index fields a ``name:`` prefix may target (``text`` is the PDF text in the passage index).
TEXT_FIELDS = {
    "title": "title",
    "alias": "alias",
    "note": "note",
    "topic": "topic",
    "venue": "venue",
    "author": "authors",
    "authors": "authors",
    "text": "text",
}
FILTER_FIELDS = ("year", "read")

STOP_WORDS = FUNCTION_WORDS

_TOKEN = re.compile(
    r"(?P<sign>[+-](?=\S))?"
    r"(?:(?P<field>[A-Za-z_]+):(?=\S))?"
    r'(?:"(?P<phrase>[^"]*)"|\[(?P<range>[^\]]*)\]|(?P<word>[^\s"]+))'
)


class QueryError(UsageError):
    """The query cannot be understood (a usage error: exit code 2)."""


@dataclass
class Clause:
    """One term, hyphenated word or phrase, with how it must occur.

    ``occur``: "should" (ranks), "must" (required), "not" (excluded). ``field`` None means every
    searchable field of the paper and its text.
    """

    text: str
    occur: str = "should"
    field: str | None = None
    phrase: bool = False


@dataclass
class ParsedQuery:
    raw: str
    clauses: list[Clause] = field(default_factory=list)
    year: tuple[int, int] | None = None
    read: bool | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def free_text(self) -> str:
        """What the query means in words, for the embedding model (no operators, no exclusions)."""
        return " ".join(c.text for c in self.clauses if c.occur != "not").strip()

    @property
    def positive(self) -> list[Clause]:
        return [c for c in self.clauses if c.occur != "not"]


def _year_range(value: str) -> tuple[int, int]:
    v = value.strip()
    m = re.fullmatch(r"(\d{4}|\*)\s+TO\s+(\d{4}|\*)", v, re.IGNORECASE)
    if m:
        lo = 0 if m.group(1) == "*" else int(m.group(1))
        hi = 9999 if m.group(2) == "*" else int(m.group(2))
        return lo, hi
    if re.fullmatch(r"\d{4}", v):
        return int(v), int(v)
    m = re.fullmatch(r"(\d{4})?\s*(?:-|\.\.)\s*(\d{4})?", v)
    if m and (m.group(1) or m.group(2)):
        return int(m.group(1) or 0), int(m.group(2) or 9999)
    raise QueryError(f"bad year {value!r}: use year:2019, year:2018-2020 or year:[2018 TO 2020]")


def _read_value(value: str) -> bool:
    v = value.strip().lower()
    if v in ("yes", "y", "true", "1"):
        return True
    if v in ("no", "n", "false", "0"):
        return False
    raise QueryError(f"bad read value {value!r}: use read:yes or read:no")


def parse(raw: str) -> ParsedQuery:
    """Parse a query string; raise QueryError for what cannot be given a sensible meaning."""
    text = raw.strip()
    if not text:
        raise QueryError('empty query: give some words to search for, e.g. kb search "lip sync"')
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"query too long ({len(text)} characters; at most {MAX_QUERY_CHARS})")
    q = ParsedQuery(raw=raw)
    if text.count('"') % 2:
        # Best effort: the last quote opened a phrase that never closed; read it to the end.
        q.warnings.append("unbalanced quote: reading the phrase to the end of the query")
        text = text + '"'
    text = re.sub(r"[()]", " ", text)

    pending: str | None = None  # occur forced on the next clause by AND / NOT
    for m in _TOKEN.finditer(text):
        word, phrase, rng, fname = m.group("word"), m.group("phrase"), m.group("range"), m.group("field")
        sign = m.group("sign")
        if word in ("AND", "OR", "NOT", "&&", "||") and not fname and not sign:
            if word in ("AND", "&&"):
                if q.clauses and q.clauses[-1].occur == "should":
                    q.clauses[-1].occur = "must"
                pending = "must"
            elif word == "NOT":
                pending = "not"
            continue
        occur = {"+": "must", "-": "not"}.get(sign or "", pending or "should")
        pending = None
        value = phrase if phrase is not None else (rng if rng is not None else word)
        if fname:
            name = fname.lower()
            if name == "year":
                q.year = _year_range(value)
                continue
            if name == "read":
                q.read = _read_value(value)
                continue
            if name not in TEXT_FIELDS:
                known = ", ".join(sorted({*TEXT_FIELDS, *FILTER_FIELDS} - {"authors"}))
                raise QueryError(f"unknown field {fname + ':'!r}; fields are {known}")
            fname = TEXT_FIELDS[name]
        elif rng is not None:
            value = rng
        value = value.strip()
        if not value or not re.search(r"\w", value):
            continue
        q.clauses.append(Clause(text=value, occur=occur, field=fname, phrase=phrase is not None))
        if len(q.clauses) >= MAX_CLAUSES:
            q.warnings.append(f"query cut to its first {MAX_CLAUSES} terms")
            break
    if not q.clauses and q.year is None and q.read is None:
        raise QueryError("nothing to search for in that query: give some words")
    if q.clauses and all(c.occur == "not" for c in q.clauses) and q.year is None and q.read is None:
        raise QueryError("the query only excludes words: say what to search for too")
    words = [w.lower() for c in q.positive if not c.phrase for w in re.findall(r"\w+", c.text)]
    if words and all(w in STOP_WORDS for w in words) and not any(c.phrase for c in q.positive):
        raise QueryError("the query has only common words (like 'the', 'of'): add a more specific word")
    # In a many-word query a stop word adds noise, not meaning (BM25 would still give it weight).
    q.clauses = [
        c
        for c in q.clauses
        if c.phrase
        or c.occur == "not"
        or not all(w.lower() in STOP_WORDS for w in re.findall(r"\w+", c.text))
    ]
    return q


def is_stop_word(word: str) -> bool:
    return word.lower() in STOP_WORDS
