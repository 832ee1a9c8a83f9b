"""Download the PDFs a reading list links to but the library lacks (the core of ``kb fetch``).

This is the only kb module that touches the network, and only when the user runs ``kb fetch``. It has
three parts, each usable alone:

* **Resolution** (pure, no network): ``resolve_link`` turns one link of an entry into a URL to fetch and
  the rule that gave it, or says why the link is no use; ``plan_fetch`` does that for papers, ordering
  the usable links by trust: a direct PDF link, arXiv, CVF open access, a GitHub-hosted PDF, then a
  publisher or DOI landing page (whose ``citation_pdf_url`` meta tag is read at fetch time). Only links
  that are the paper itself count: a ``[[Github]]``, ``[[翻译]]`` or ``[[Corrigendum]]`` link is not.
* **Download** (``FetchSession``): politely (one request at a time per host, a delay between requests
  to the same host, a ``User-Agent`` naming kb, a timeout, a size cap, http/https only, redirects
  followed by hand so every hop is checked, counted and mirrored), with a record of the hosts contacted.
  ``mirrors`` maps a host to another base URL and is applied to every URL before it is requested —
  the first one, ``citation_pdf_url`` results and redirects alike — so ``kb fetch --mirror
  arxiv.org=http://127.0.0.1:8000`` (or ``KB_FETCH_MIRRORS``) sends arXiv requests elsewhere; tests use
  the same option to point hosts at a local server.
* **Acceptance and saving** (``fetch_pdf``): only a real PDF (``%PDF`` header, readable by pdfium, page 1
  showing the entry's title) is kept; anything else is refused with a reason and nothing is written. A
  kept file is written to a temporary file beside the destination, fsynced, and linked into place without
  overwriting anything, so an interruption never leaves a partial PDF under the real name.

The standard library's urllib does the HTTP: it has everything needed (timeouts, streamed reads, manual
redirects, proxies from the environment) and adds no dependency to a command most runs never use.
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import tempfile
import threading
import time
import unicodedata
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from html.parser import HTMLParser
from http.client import HTTPException
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from kb import __version__
from kb.fsutil import fsync_dir, json_path
from kb.models import Extraction, Link, Paper

if TYPE_CHECKING:
    from kb.ingest import IngestReport
    from kb.storage.base import IndexReader

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_TIMEOUT_S = 30.0  # per connect / read: a server silent this long has failed
DEFAULT_TOTAL_S = 600.0  # a whole download (a 100 MB PDF at ~170 kB/s)
DEFAULT_DELAY_S = 1.0  # between two requests to the same host
# arXiv asks automated clients for at most one request every three seconds.
HOST_DELAYS: dict[str, float] = {"arxiv.org": 3.0, "export.arxiv.org": 3.0}
MAX_REDIRECTS = 5
MAX_HTML_BYTES = 5 * 1024 * 1024  # a landing page bigger than this is not read to its end
USER_AGENT = f"kb/{__version__} (personal paper library; kb fetch)"
ENV_MIRRORS = "KB_FETCH_MIRRORS"
# Page 1 must show the entry's title at least this well (rapidfuzz ratio, 0-100). Measured on the 71
# catalog entries of userlib and pwl-dev that have a PDF (tests/test_fetch.py): every paper whose page 1
# carries its title as text scores >= 96.5 against it; the best-scoring wrong PDF of any entry 70.9.
TITLE_THRESHOLD = 85.0

# Rules, in order of trust (a lower rank is tried first).
DIRECT, ARXIV, CVF, GITHUB, LANDING = "direct-pdf", "arxiv", "cvf", "github-file", "landing"
RULE_RANK = {DIRECT: 0, ARXIV: 1, CVF: 2, GITHUB: 3, LANDING: 4}

# Fetch outcomes.
FETCHED, PRESENT, NO_LINK, REFUSED, FAILED = "fetched", "present", "no-link", "refused", "failed"

# Labels of links that point at the paper itself (the title link is "paper").
PAPER_LABELS = frozenset({"pdf", "paper", "arxiv", "preprint", "doi", "full text", "fulltext"})

_ARXIV_ID = r"(?P<id>\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Za-z]{2})?/\d{7})(?P<v>v\d+)?"
_ARXIV_PATH = re.compile(rf"^/(?:abs|pdf|html|ps|format)/{_ARXIV_ID}(?:\.pdf)?/?$", re.IGNORECASE)
_ARXIV_DOI = re.compile(rf"^/10\.48550/arxiv\.{_ARXIV_ID}$", re.IGNORECASE)
_ARXIV_HOSTS = frozenset({"arxiv.org", "www.arxiv.org", "export.arxiv.org"})
_CVF_HOSTS = frozenset({"openaccess.thecvf.com", "www.cv-foundation.org"})
_GITHUB_BLOB = re.compile(r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+)/blob/(?P<rest>.+\.pdf)$", re.IGNORECASE)
_DOI_HOSTS = frozenset({"doi.org", "dx.doi.org", "www.doi.org"})
# Publishers and proceedings whose article pages carry a ``citation_pdf_url`` meta tag when the PDF is
# open (Google Scholar's inclusion guidelines ask for it). Matched as a host suffix.
_LANDING_HOSTS = (
    "dl.acm.org",
    "ieeexplore.ieee.org",
    "link.springer.com",
    "sciencedirect.com",
    "onlinelibrary.wiley.com",
    "journals.sagepub.com",
    "tandfonline.com",
    "academic.oup.com",
    "nature.com",
    "science.org",
    "pnas.org",
    "cambridge.org",
    "iopscience.iop.org",
    "epubs.siam.org",
    "ojs.aaai.org",
    "aaai.org",
    "ijcai.org",
    "proceedings.neurips.cc",
    "papers.nips.cc",
    "proceedings.mlr.press",
    "jmlr.org",
    "openreview.net",
    "aclanthology.org",
    "aclweb.org",
    "biorxiv.org",
    "medrxiv.org",
    "mdpi.com",
    "frontiersin.org",
    "plos.org",
    "hal.science",
    "semanticscholar.org",
)
# Sites that answer robots with a login or challenge page: not worth a request.
_LOGIN_HOSTS = ("researchgate.net", "academia.edu", "jstor.org", "scholar.google.com")
_POSTSCRIPT = re.compile(r"\.(?:ps|ps\.gz|ps\.z|eps|djvu)$", re.IGNORECASE)
_OJS_ARTICLE = re.compile(r"/index\.php/[^/]+/article/view/\d+", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------------
# Resolution (pure)


@dataclass(frozen=True)
class Resolution:
    """What one link of an entry gives: a URL to request and the rule that produced it, or why not.

    ``rule`` is ``None`` for a link that cannot lead to the PDF; ``url`` is the PDF URL, or for
    ``landing`` the page whose ``citation_pdf_url`` names the PDF.
    """

    link: Link
    rule: str | None
    url: str | None
    reason: str

    @property
    def usable(self) -> bool:
        return self.rule is not None


def _host(parts: object) -> str:
    return (getattr(parts, "hostname", None) or "").lower()


def _host_is(host: str, suffix: str) -> bool:
    return host == suffix or host.endswith("." + suffix)


def arxiv_id(url: str) -> str | None:
    """The arXiv id (with its version, if the link names one) of an arXiv or arXiv-DOI URL."""
    parts = urlsplit(url.strip())
    host = _host(parts)
    if host in _ARXIV_HOSTS:
        m = _ARXIV_PATH.match(parts.path)
    elif host in _DOI_HOSTS:
        m = _ARXIV_DOI.match(parts.path)
    else:
        m = None
    return m.group("id") + (m.group("v") or "") if m else None


def _not_usable(link: Link, why: str) -> Resolution:
    return Resolution(link, None, None, why)


def resolve_link(link: Link) -> Resolution:
    """Resolve one link to a PDF URL (or a landing page to read it from), never touching the network."""
    url = link.url.strip()
    label = link.label.strip().lower()
    if not url:
        return _not_usable(link, "empty link")
    scheme = url.split(":", 1)[0].lower() if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", url) else ""
    if not scheme:
        return _not_usable(link, "a local path (where the PDF belongs), not a download")
    if scheme not in ("http", "https"):
        return _not_usable(link, f"a {scheme}: link (only http and https are fetched)")
    if label not in PAPER_LABELS:
        return _not_usable(link, f"the [{link.label}] link is not the paper itself")
    parts = urlsplit(url)
    host, path = _host(parts), unquote(parts.path)
    if not host:
        return _not_usable(link, "a URL without a host")
    ax = arxiv_id(url)
    if ax:
        return Resolution(link, ARXIV, f"https://arxiv.org/pdf/{ax}", f"arXiv {ax}")
    if host in _CVF_HOSTS and "/html/" in path and path.lower().endswith(".html"):
        pdf = path.replace("/html/", "/papers/", 1)[: -len(".html")] + ".pdf"
        return Resolution(link, CVF, urlunsplit(("https", parts.netloc, pdf, "", "")), "CVF open access page")
    if host in ("github.com", "www.github.com"):
        m = _GITHUB_BLOB.match(parts.path)
        if m:
            raw = f"/{m['owner']}/{m['repo']}/raw/{m['rest']}"
            url = urlunsplit(("https", "github.com", raw, "", ""))
            return Resolution(link, GITHUB, url, "PDF in a GitHub repository")
        return _not_usable(link, "a GitHub page, not a paper")
    ps = _POSTSCRIPT.search(path)
    if ps:
        return _not_usable(link, f"a {ps.group(0)[1:].lower()} file, not a PDF")
    if any(_host_is(host, h) for h in _LOGIN_HOSTS):
        return _not_usable(link, f"{host} asks for a login")
    query = parts.query.lower()
    if path.lower().endswith(".pdf") or re.search(r"(?:^|&)type=pdf(?:&|$)", query):
        return Resolution(link, DIRECT, url, "direct PDF link")
    if host in _DOI_HOSTS:
        return Resolution(link, LANDING, url, "DOI: the publisher page's citation_pdf_url")
    if any(_host_is(host, h) for h in _LANDING_HOSTS) or "/doi/" in path.lower() or _OJS_ARTICLE.search(path):
        return Resolution(link, LANDING, url, f"{host} article page: its citation_pdf_url")
    if label == "pdf":
        return Resolution(link, DIRECT, url, "the link labelled PDF")
    return _not_usable(link, f"a web page on {host} (project page, blog or similar), not a PDF")


def resolve_links(links: Iterable[Link]) -> tuple[list[Resolution], list[Resolution]]:
    """The usable resolutions in order of trust (one per URL) and the unusable ones with their reasons."""
    usable: list[Resolution] = []
    unusable: list[Resolution] = []
    seen: set[str] = set()
    for res in map(resolve_link, links):
        if not res.usable:
            unusable.append(res)
        elif res.url not in seen:
            seen.add(res.url or "")
            usable.append(res)
    usable.sort(key=lambda r: RULE_RANK[r.rule or ""])  # stable: the entry's own order within a rule
    return usable, unusable


@dataclass
class FetchPlan:
    """What ``kb fetch`` would do for one paper, decided without the network.

    ``action`` is ``fetch`` (``candidates`` holds the URLs to try, best first), ``present`` (the
    library has a PDF of it) or ``no-link`` (``reason`` says why no link can give the PDF).
    """

    paper_id: str
    title: str
    action: str
    reason: str
    candidates: list[Resolution] = field(default_factory=list)
    skipped: list[Resolution] = field(default_factory=list)
    paper: Paper | None = field(default=None, repr=False, compare=False)

    @property
    def url(self) -> str | None:
        return self.candidates[0].url if self.candidates else None

    @property
    def rule(self) -> str | None:
        return self.candidates[0].rule if self.candidates else None

    def describe(self) -> str:
        """One line for ``kb fetch --dry-run``."""
        if self.action == "fetch":
            first = self.candidates[0]
            what = "read the PDF URL from" if first.rule == LANDING else "fetch"
            more = f" (+{len(self.candidates) - 1} more)" if len(self.candidates) > 1 else ""
            return f"{self.title}: {what} {first.url} [{first.rule}: {first.reason}]{more}"
        return f"{self.title}: {self.action}: {self.reason}"


def plan_paper(paper: Paper) -> FetchPlan:
    """The fetch plan of one paper (pure)."""
    if paper.files:
        return FetchPlan(paper.id, paper.title, PRESENT, f"has a PDF: {paper.files[0]}", paper=paper)
    usable, unusable = resolve_links(paper.links)
    if usable:
        first = usable[0]
        return FetchPlan(paper.id, paper.title, "fetch", first.reason, usable, unusable, paper)
    if not unusable:
        reason = "the entry has no links"
    else:
        reason = "; ".join(dict.fromkeys(f"{_short_url(r.link.url)}: {r.reason}" for r in unusable))
    return FetchPlan(paper.id, paper.title, NO_LINK, reason, [], unusable, paper)


def plan_fetch(papers: Iterable[Paper]) -> list[FetchPlan]:
    """Per paper, the URL it would fetch and why, or why it cannot (pure: ``kb fetch --dry-run``)."""
    return [plan_paper(p) for p in papers]


def _short_url(url: str, limit: int = 70) -> str:
    url = url.strip() or "()"
    return url if len(url) <= limit else url[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------------
# Where a fetched PDF goes


def _local_link_path(url: str) -> str | None:
    """The file path a local ``[[PDF]]`` link names (as ``kb ingest`` reads it), or None when the link
    is a URL, empty, or does not name a PDF (``./paper/https://…`` is a mangled URL, not a path)."""
    from kb.link import _is_local, _local_path

    if not url.strip() or not _is_local(url.strip()) or "://" in url.replace("file://", "", 1):
        return None
    path = _local_path(url.strip())
    return path if path.lower().endswith(".pdf") else None


def _inside(path: Path, folders: Iterable[Path]) -> bool:
    return any(path.is_relative_to(Path(os.path.abspath(f))) for f in folders)


_folder_cache: dict[tuple[str, int], Path | None] = {}


def _pdf_folder(catalog: Path) -> Path | None:
    """The folder holding most of the PDFs the catalog links to; when none of them is on disk yet, the
    folder most of its PDF links name (the user's layout); None for a list without PDF links."""
    from kb.catalog import parse_catalog

    try:
        key = (str(catalog), catalog.stat().st_mtime_ns)
    except OSError:
        return None
    if key not in _folder_cache:
        present: Counter[Path] = Counter()
        named: Counter[Path] = Counter()
        for entry in parse_catalog(catalog).entries:
            for link in entry.links:
                rel = _local_link_path(link.url) if link.label.strip().lower() == "pdf" else None
                if rel:
                    path = Path(os.path.abspath(catalog.parent / rel))
                    named[path.parent] += 1
                    if path.is_file():
                        present[path.parent] += 1
        best = (present or named).most_common(1)
        _folder_cache[key] = best[0][0] if best else None
    return _folder_cache[key]


def readable_name(paper: Paper, max_len: int = 100) -> str:
    """A file name (without ``.pdf``) from the paper's title: its words joined by ``_``."""
    title = unicodedata.normalize("NFKC", paper.title)
    words = re.findall(r"[\w][\w\-']*", title)
    name = ""
    for w in words:
        nxt = f"{name}_{w}" if name else w
        if len(nxt) > max_len:
            break
        name = nxt
    return name.strip("_-'") or paper.id


def destination_for(
    paper: Paper, catalog_path: Path | None = None, library_folders: Sequence[Path] = ()
) -> Path:
    """Where the fetched PDF of ``paper`` goes (absolute; folders are created only when it is saved).

    Where the entry's ``[[PDF]]`` link says, resolved against the catalog's folder, as long as that
    stays inside the catalog's folder or a library folder; otherwise ``<readable-name>.pdf`` in the
    folder holding most of the catalog's linked PDFs, else in ``paper/`` beside the catalog.
    """
    if catalog_path is None:
        if paper.catalog is None:
            raise ValueError(f"{paper.id}: no catalog entry to place its PDF beside")
        catalog_path = Path(paper.catalog.file)
    catalog = Path(os.path.abspath(catalog_path))
    allowed = [catalog.parent, *library_folders]
    for link in paper.links:
        rel = _local_link_path(link.url) if link.label.strip().lower() == "pdf" else None
        if rel:
            path = Path(os.path.abspath(catalog.parent / rel))
            if _inside(path, allowed):
                return path
    folder = _pdf_folder(catalog) or catalog.parent / "paper"
    return folder / f"{readable_name(paper)}.pdf"


def relative_link(dest: Path, catalog_path: Path) -> str:
    """``dest`` as a link written in the catalog: relative, ``/``-separated, ``./`` before a folder."""
    rel = Path(os.path.relpath(os.path.abspath(dest), os.path.abspath(Path(catalog_path).parent))).as_posix()
    return f"./{rel}" if "/" in rel and not rel.startswith("../") else rel


# ---------------------------------------------------------------------------------------------------
# Mirrors


def parse_mirrors(specs: Iterable[str]) -> dict[str, str]:
    """``["arxiv.org=http://127.0.0.1:8000"]`` -> ``{"arxiv.org": "http://127.0.0.1:8000"}``.

    Raises ``ValueError`` with a one-line message for a malformed entry.
    """
    mirrors: dict[str, str] = {}
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
        host, sep, target = spec.partition("=")
        host, target = host.strip().lower(), target.strip()
        parts = urlsplit(target)
        if not sep or not re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", host):
            raise ValueError(f"bad mirror {spec!r}: write HOST=URL, e.g. arxiv.org=http://127.0.0.1:8000")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"bad mirror {spec!r}: the URL must start with http:// or https://")
        mirrors[host] = target.rstrip("/")
    return mirrors


def mirrors_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``KB_FETCH_MIRRORS`` setting: ``HOST=URL`` entries separated by commas or spaces."""
    value = (environ if environ is not None else os.environ).get(ENV_MIRRORS, "")
    return parse_mirrors(re.split(r"[,\s]+", value))


def apply_mirror(url: str, mirrors: Mapping[str, str]) -> str:
    """``url`` with its host replaced by the mirror's base URL, when a mirror is set for the host."""
    if not mirrors:
        return url
    parts = urlsplit(url)
    base = mirrors.get(_host(parts))
    if base is None:
        return url
    b = urlsplit(base)
    return urlunsplit((b.scheme, b.netloc, b.path.rstrip("/") + (parts.path or "/"), parts.query, ""))


# ---------------------------------------------------------------------------------------------------
# Download


@dataclass
class FetchOptions:
    mirrors: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT_S
    total_timeout: float = DEFAULT_TOTAL_S
    max_bytes: int = DEFAULT_MAX_BYTES
    delay: float = DEFAULT_DELAY_S
    host_delays: dict[str, float] = field(default_factory=lambda: dict(HOST_DELAYS))
    max_redirects: int = MAX_REDIRECTS
    user_agent: str = USER_AGENT
    title_threshold: float = TITLE_THRESHOLD


class _Stop(Exception):
    """Ends one attempt: ``status`` is refused, failed or no-link; the message is the reason."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Response:
    url: str  # as resolved (before mirroring), after redirects
    fetched_from: str  # the URL actually requested last
    content_type: str
    body: bytes
    redirects: int


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand every 3xx back to the caller, which checks, counts and mirrors each hop itself."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


class FetchSession:
    """HTTP for ``kb fetch``: politeness per host, limits, mirrors and the record of hosts contacted.

    Safe to share between threads: requests to one host are serialised and spaced by the delay.
    """

    def __init__(self, options: FetchOptions | None = None) -> None:
        self.options = options or FetchOptions()
        self.contacted: dict[str, int] = {}  # host (as contacted, port included) -> requests
        self._locks: dict[str, threading.Lock] = {}
        self._next: dict[str, float] = {}
        self._guard = threading.Lock()
        self._opener = urllib.request.build_opener(_NoRedirect())

    def hosts(self) -> list[str]:
        """The hosts contacted so far, in the order first contacted."""
        return list(self.contacted)

    def _delay_for(self, host: str) -> float:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return self.options.host_delays.get(name, self.options.delay)

    def _request(self, url: str) -> tuple[int, Message, bytes]:
        """One request (no redirects followed): status, headers and the body read within the limits."""
        host = urlsplit(url).netloc.lower()
        with self._guard:
            lock = self._locks.setdefault(host, threading.Lock())
        with lock:
            wait = self._next.get(host, 0.0) - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            with self._guard:
                self.contacted[host] = self.contacted.get(host, 0) + 1
            try:
                return self._exchange(url)
            finally:
                self._next[host] = time.monotonic() + self._delay_for(host)

    def _exchange(self, url: str) -> tuple[int, Message, bytes]:
        opts = self.options
        req = urllib.request.Request(
            url,
            headers={
                "User-Agent": opts.user_agent,
                "Accept": "application/pdf, text/html;q=0.5, */*;q=0.1",
                "Accept-Encoding": "identity",
            },
        )
        host = urlsplit(url).netloc
        try:
            try:
                resp = self._opener.open(req, timeout=opts.timeout)
            except urllib.error.HTTPError as e:
                with contextlib.closing(e):
                    if 300 <= e.code < 400:
                        return e.code, e.headers, b""
                    raise _http_error(e.code, e.reason, host) from None
            with resp:
                return resp.status, resp.headers, self._read_body(resp)
        except _Stop:
            raise
        except TimeoutError:
            raise _Stop(FAILED, f"{host} did not answer within {opts.timeout:g}s") from None
        except urllib.error.URLError as e:
            why = e.reason
            if isinstance(why, TimeoutError):
                raise _Stop(FAILED, f"{host} did not answer within {opts.timeout:g}s") from None
            if isinstance(why, ssl.SSLError):
                raise _Stop(FAILED, f"{host}: TLS error ({why.reason or why})") from None
            raise _Stop(FAILED, f"cannot reach {host} ({_oneline(why)})") from None
        except (HTTPException, OSError) as e:
            raise _Stop(FAILED, f"{host}: connection broke ({_oneline(e)})") from None

    def _read_body(self, resp: object) -> bytes:
        opts = self.options
        headers: Message = resp.headers  # type: ignore[attr-defined]
        is_html = "html" in headers.get("Content-Type", "").lower()
        cap = min(opts.max_bytes, MAX_HTML_BYTES) if is_html else opts.max_bytes
        length = headers.get("Content-Length", "")
        if length.isdigit() and int(length) > opts.max_bytes:
            raise _Stop(REFUSED, f"too large: {_mb(int(length))} (the cap is {_mb(opts.max_bytes)})")
        deadline = time.monotonic() + opts.total_timeout
        body = bytearray()
        while True:
            chunk = resp.read1(64 * 1024)  # type: ignore[attr-defined]  # whatever has arrived
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > cap:
                if is_html:
                    return bytes(body[:cap])  # a landing page's head is all that is needed
                raise _Stop(REFUSED, f"too large: more than {_mb(opts.max_bytes)} (the cap)")
            if time.monotonic() > deadline:
                raise _Stop(FAILED, f"download took longer than {opts.total_timeout:g}s")

    def get(self, url: str) -> Response:
        """GET ``url`` (mirrored), following redirects to http(s) URLs only, at most ``max_redirects``."""
        logical, redirects = url, 0
        while True:
            actual = apply_mirror(logical, self.options.mirrors)
            if urlsplit(actual).scheme.lower() not in ("http", "https"):
                raise _Stop(REFUSED, f"not an http(s) URL: {_short_url(actual)}")
            status, headers, body = self._request(actual)
            if 300 <= status < 400:
                location = headers.get("Location")
                if not location:
                    raise _Stop(FAILED, f"HTTP {status} redirect without a Location")
                redirects += 1
                target = urljoin(actual, location.strip())
                if urlsplit(target).scheme.lower() not in ("http", "https"):
                    raise _Stop(REFUSED, f"redirected to a non-http(s) URL: {_short_url(target)}")
                if redirects > self.options.max_redirects:
                    raise _Stop(FAILED, f"more than {self.options.max_redirects} redirects")
                logical = target
                continue
            return Response(logical, actual, headers.get("Content-Type", ""), body, redirects)


def _http_error(code: int, reason: object, host: str) -> _Stop:
    text = f"HTTP {code} {reason}".strip() + f" from {host}"
    if code in (401, 402, 403, 407, 451):
        return _Stop(REFUSED, f"{text}: not open access, or the site refuses robots")
    if code == 429 or code >= 500:
        return _Stop(FAILED, f"{text}: try again later")
    return _Stop(REFUSED, text)


def _oneline(e: object) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg if len(msg) <= 100 else msg[:99] + "…"


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


# ---------------------------------------------------------------------------------------------------
# Landing pages


class _MetaPdf(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta":
            a = {k.lower(): (v or "") for k, v in attrs}
            if a.get("name", "").lower() == "citation_pdf_url" and a.get("content", "").strip():
                self.urls.append(a["content"].strip())


def citation_pdf_url(html: bytes | str, base: str) -> str | None:
    """The absolute URL of the first ``<meta name="citation_pdf_url">`` of a page, if it has one."""
    text = html.decode("utf-8", "replace") if isinstance(html, bytes) else html
    parser = _MetaPdf()
    with contextlib.suppress(Exception):  # malformed HTML: whatever was found before it counts
        parser.feed(text)
        parser.close()
    return urljoin(base, parser.urls[0]) if parser.urls else None


def _is_pdf(body: bytes) -> bool:
    return b"%PDF-" in body[:1024]


def _looks_html(resp: Response) -> bool:
    head = resp.body[:512].lstrip().lower()
    return "html" in resp.content_type.lower() or head.startswith(b"<!doctype html") or b"<html" in head


def _download_pdf(session: FetchSession, cand: Resolution) -> Response:
    """The PDF a candidate leads to: the URL itself, or the ``citation_pdf_url`` of the page it returns."""
    resp = session.get(cand.url or "")
    if _is_pdf(resp.body):
        return resp
    if not _looks_html(resp):
        kind = resp.content_type.split(";")[0].strip() or "unknown type"
        raise _Stop(REFUSED, f"not a PDF ({kind}, no %PDF header)")
    pdf_url = citation_pdf_url(resp.body, resp.url)
    if pdf_url is None:
        if cand.rule == LANDING:
            raise _Stop(NO_LINK, "the landing page offers no PDF (no citation_pdf_url)")
        raise _Stop(REFUSED, "not a PDF: an HTML page")
    if pdf_url == resp.url:
        raise _Stop(REFUSED, "not a PDF: an HTML page that names itself as the PDF")
    pdf = session.get(pdf_url)
    pdf.redirects += resp.redirects
    if not _is_pdf(pdf.body):
        kind = "an HTML page" if _looks_html(pdf) else "no %PDF header"
        raise _Stop(REFUSED, f"citation_pdf_url {_short_url(pdf_url)} is not a PDF ({kind})")
    return pdf


# ---------------------------------------------------------------------------------------------------
# Acceptance


@dataclass
class TitleCheck:
    score: float  # 0-100
    found: str | None  # the text on the PDF that matched best


def title_keys(ex: Extraction) -> list[tuple[str, str, str]]:
    """What page 1 may call the paper, as (text, comparable key, key of the main title before a colon):
    its metadata titles and runs of up to five of the lines above the abstract."""
    from kb.link import text_key

    cands = [c for c in (ex.meta.title, ex.meta.first_page_title) if c]
    lines: list[str] = []
    for line in ex.pages[0].split("\n") if ex.pages else []:
        if re.match(r"\s*abstract\b", line, re.IGNORECASE):
            break
        if text_key(line):
            lines.append(line.strip())
        if len(lines) >= 12:
            break
    for i in range(len(lines)):
        for j in range(i + 1, min(i + 5, len(lines)) + 1):
            cands.append(" ".join(lines[i:j]))
    # "Bitcoin" names "Bitcoin: A Peer-to-Peer Electronic Cash System": compare the main title too.
    return [(c, text_key(c), text_key(re.split(r":|\s[-–—]\s", c, maxsplit=1)[0])) for c in cands]


def title_match(title: str, ex: Extraction, keys: list[tuple[str, str, str]] | None = None) -> TitleCheck:
    """How well page 1 of an extracted PDF shows ``title`` (fuzzy; a subtitle may be left out).

    ``keys`` is ``title_keys(ex)`` when the caller already has it (comparing many titles to one PDF).
    """
    from rapidfuzz import fuzz

    from kb.link import text_key

    want = text_key(title)
    best = TitleCheck(0.0, None)
    for cand, key, main in keys if keys is not None else title_keys(ex):
        score = max(fuzz.ratio(want, key), fuzz.ratio(want, main))
        if score > best.score:
            best = TitleCheck(score, cand)
    return best


def check_pdf(path: Path, title: str, threshold: float = TITLE_THRESHOLD) -> str | None:
    """Why the PDF at ``path`` is not the paper titled ``title`` (None when it is)."""
    from kb.extract import extract_pdf

    ex = extract_pdf(path, max_pages=2, time_limit=60)
    if ex.status == "failed":
        return f"not a usable PDF: {ex.reason}"
    check = title_match(title, ex)
    if check.score >= threshold:
        return None
    if ex.status != "ok":
        return f"cannot check the title: page 1 has no usable text ({ex.status})"
    found = f"'{_short_url(check.found, 80)}'" if check.found else "no title"
    return f"another paper? page 1 shows {found} (title match {check.score:.0f}/100)"


# ---------------------------------------------------------------------------------------------------
# Saving


PART_SUFFIX = ".kb-fetch.part"
_STALE_PART_S = 3600.0


def _clean_stale_parts(folder: Path) -> None:
    """Remove temporary files a killed ``kb fetch`` left behind (older than an hour: not a live run's)."""
    now = time.time()
    with contextlib.suppress(OSError):
        for p in folder.glob(f".*{PART_SUFFIX}"):
            with contextlib.suppress(OSError):
                if now - p.stat().st_mtime > _STALE_PART_S:
                    p.unlink()


def save_checked(data: bytes, dest: Path, title: str, threshold: float = TITLE_THRESHOLD) -> None:
    """Write ``data`` to ``dest`` if it is the paper titled ``title``; raise ``_Stop`` otherwise.

    Written to a hidden temporary file in the destination folder, fsynced, checked, then linked to its
    name without replacing anything there; on refusal or interruption the temporary file and any folder
    created for it are removed again.
    """
    folder = dest.parent
    created = [p for p in [folder, *folder.parents] if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    _clean_stale_parts(folder)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.stem[:40]}.", suffix=PART_SUFFIX, dir=folder)
    tmp = Path(tmp_name)
    placed = False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        why = check_pdf(tmp, title, threshold)
        if why:
            raise _Stop(REFUSED, why)
        try:
            os.link(tmp, dest)  # fails if dest exists: never overwrite a file
        except FileExistsError:
            raise _Stop(PRESENT, f"{dest} appeared meanwhile; left as it is") from None
        except OSError:  # no hard links on this file system
            if dest.exists():
                raise _Stop(PRESENT, f"{dest} appeared meanwhile; left as it is") from None
            os.replace(tmp, dest)
        placed = True
        fsync_dir(folder)  # the file is in place; only its durability is at stake (best effort)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if not placed:
            for d in created:  # deepest first
                with contextlib.suppress(OSError):
                    d.rmdir()


# ---------------------------------------------------------------------------------------------------
# One paper


@dataclass
class FetchOutcome:
    """What ``fetch_pdf`` did for one paper.

    ``status``: ``fetched`` (saved at ``path``), ``present`` (a PDF was there already), ``no-link``
    (no link leads to a PDF), ``refused`` (got something that is not this paper's PDF, too big, access
    denied, not found), ``failed`` (network: timeout, connection, server error; worth retrying).
    ``reason`` is one line; ``attempts`` one line per URL tried.
    """

    paper_id: str
    status: str
    reason: str
    path: Path | None = None
    url: str | None = None  # where the PDF came from (before mirroring)
    size: int = 0  # bytes written
    host: str | None = None  # the host the PDF was downloaded from (as contacted)
    rule: str | None = None
    redirects: int = 0
    attempts: list[str] = field(default_factory=list)


_STATUS_PRIORITY = {FAILED: 0, REFUSED: 1, NO_LINK: 2}


def fetch_pdf(
    plan: FetchPlan,
    dest: Path,
    *,
    session: FetchSession | None = None,
    options: FetchOptions | None = None,
) -> FetchOutcome:
    """Download the paper of ``plan`` to ``dest``, trying its candidate URLs best first.

    Never raises for a network or content problem (the outcome says what happened); ``KeyboardInterrupt``
    passes through after removing any temporary file. Nothing is written unless the PDF is accepted.
    """
    session = session or FetchSession(options)
    dest = Path(os.path.abspath(dest))
    if plan.action == PRESENT:
        return FetchOutcome(plan.paper_id, PRESENT, plan.reason)
    if dest.exists():
        return FetchOutcome(plan.paper_id, PRESENT, f"{dest} exists", path=dest)
    if not plan.candidates:
        return FetchOutcome(plan.paper_id, NO_LINK, plan.reason)
    attempts: list[str] = []
    worst: _Stop | None = None
    for cand in plan.candidates:
        try:
            resp = _download_pdf(session, cand)
            save_checked(resp.body, dest, plan.title, session.options.title_threshold)
        except _Stop as stop:
            attempts.append(f"{cand.url}: {stop.status}: {stop.reason}")
            if stop.status == PRESENT:
                return FetchOutcome(plan.paper_id, PRESENT, stop.reason, path=dest, attempts=attempts)
            if worst is None or _STATUS_PRIORITY[stop.status] < _STATUS_PRIORITY[worst.status]:
                worst = stop
            continue
        attempts.append(f"{cand.url}: fetched")
        return FetchOutcome(
            plan.paper_id,
            FETCHED,
            f"{cand.rule}: {cand.reason}",
            path=dest,
            url=resp.url,
            size=len(resp.body),
            host=urlsplit(resp.fetched_from).netloc.lower(),
            rule=cand.rule,
            redirects=resp.redirects,
            attempts=attempts,
        )
    assert worst is not None
    reason = worst.reason if len(attempts) == 1 else "; ".join(attempts)
    return FetchOutcome(plan.paper_id, worst.status, reason, attempts=attempts)


def summarize(outcomes: Iterable[FetchOutcome]) -> dict[str, int]:
    """Counts per status, every status present (``fetched``, ``present``, ``no-link``, ``refused``,
    ``failed``), for the summary line of ``kb fetch``."""
    counts = dict.fromkeys((FETCHED, PRESENT, NO_LINK, REFUSED, FAILED), 0)
    for out in outcomes:
        counts[out.status] += 1
    return counts


def exit_code(outcomes: Iterable[FetchOutcome]) -> int:
    """0 when everything that could be fetched was, 1 when some download failed (worth a retry)."""
    return 1 if any(out.status == FAILED for out in outcomes) else 0


# ---------------------------------------------------------------------------------------------------
# The command: choose papers, fetch, link each PDF into its entry, ingest


@dataclass
class FetchReport:
    """What ``kb fetch`` did (or, with ``dry_run``, would do), paper by paper."""

    plans: list[FetchPlan]
    outcomes: list[FetchOutcome]
    linked: dict[str, str] = field(default_factory=dict)  # paper id -> [[PDF]] link written
    link_notes: dict[str, str] = field(default_factory=dict)  # paper id -> why no link was written
    hosts: dict[str, int] = field(default_factory=dict)  # host -> requests sent
    dry_run: bool = False
    ingest: IngestReport | None = None

    @property
    def counts(self) -> dict[str, int]:
        return summarize(self.outcomes)

    @property
    def exit_code(self) -> int:
        return exit_code(self.outcomes)

    def to_json(self, cwd: Path | None = None) -> dict:
        by_id = {o.paper_id: o for o in self.outcomes}
        papers = []
        for plan in self.plans:
            item: dict = {"id": plan.paper_id, "title": plan.title, "action": plan.action,
                          "url": plan.url, "rule": plan.rule, "reason": plan.reason}
            out = by_id.get(plan.paper_id)
            if out is not None:
                item.update(status=out.status, reason=out.reason, size=out.size,
                            path=json_path(str(out.path), cwd) if out.path else None,
                            link=self.linked.get(plan.paper_id))
            papers.append(item)
        return {"dry_run": self.dry_run, "papers": papers, "counts": self.counts, "hosts": self.hosts}


def fetch_missing(
    gen: IndexReader,
    papers: Sequence[Paper],
    *,
    library_folders: Sequence[Path],
    options: FetchOptions,
    dry_run: bool = False,
    limit: int | None = None,
    on_outcome: Callable[[FetchOutcome], None] | None = None,
) -> FetchReport:
    """Fetch the PDF of each paper that has none, and write its ``[[PDF]]`` link into its entry when
    the entry has none (byte-exact, as ``kb mark`` writes). The caller re-ingests afterwards.

    The catalogs' digests from ``gen`` guard every edit: a list the user saved meanwhile is not
    overwritten (that paper's note says so; its PDF stays where it was saved). ``limit`` caps the
    number of papers downloaded (the plans of all are reported)."""
    from kb import mdedit

    plans = plan_fetch(papers)
    report = FetchReport(plans=plans, outcomes=[], dry_run=dry_run)
    if dry_run:
        return report
    digests = {c.path: c.sha256 for c in gen.catalogs()}
    session = FetchSession(options)
    todo = [plan for plan in plans if plan.action == "fetch"]
    for plan in todo[:limit] if limit is not None else todo:
        paper = plan.paper
        catalog = Path(paper.catalog.file) if paper and paper.catalog else None
        dest = destination_for(paper, catalog, library_folders) if paper else None
        if dest is None:
            continue
        outcome = fetch_pdf(plan, dest, session=session)
        report.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
        if outcome.status != FETCHED or catalog is None or paper is None or paper.catalog is None:
            continue
        link = relative_link(dest, catalog)
        linked = [_local_link_path(lk.url) for lk in paper.links if lk.label.upper() == "PDF"]
        if any(p and os.path.abspath(catalog.parent / p) == str(dest) for p in linked):
            continue  # the entry already points at this path: nothing to write
        try:
            edit = mdedit.add_pdf_link(catalog, paper.catalog.line, link,
                                       expected_digest=digests.get(str(catalog)))
        except mdedit.PdfAlreadyLinked:
            report.link_notes[paper.id] = "its entry links a PDF elsewhere; kb links the file by its title"
            continue
        except mdedit.EditError as exc:
            report.link_notes[paper.id] = f"{exc} (the PDF is at {dest})"
            continue
        digests[str(catalog)] = edit.digest
        report.linked[paper.id] = link
    report.hosts = dict(session.contacted)
    return report
