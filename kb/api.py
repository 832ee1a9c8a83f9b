"""``kb.Library``: the one facade of kb, shared by the command line, the web server and Python users.

    import kb

    lib = kb.Library("index")                      # the index directory (created by ingest)
    lib.ingest(["paper/"])                         # PDFs + reading lists -> the index
    for r in lib.search("lip sync loss", limit=3).results:
        print(r.paper.title, r.hits[0].page)
    lib.related("StyleGAN").results[0].paper.title
    lib.mark(["SyncNet"], read=True)               # ticks the checkbox in the Markdown list

Every method returns dataclasses (``Paper``, ``SearchResults``, ``RelatedResults``, ``PaperDetails``,
``LibraryStatus``, ...), each with a ``to_json()`` that is the JSON form the CLI's ``--json`` prints
and the web API serves. Every error is a ``kb.KbError`` with a one-line message.

A Library keeps the live index generation open between calls and notices when an ingest (here or in
another process) has switched to a new one; the query model and the "related" vector space are
loaded once per generation. It is safe to share between threads that only read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kb.errors import KbError, NoIndexError, NotFoundError, UsageError

if TYPE_CHECKING:
    from kb.embed import Encoder
    from kb.fetch import FetchOutcome, FetchReport
    from kb.ingest import IngestReport, Progress
    from kb.listing import Filters, LibraryStatus, TopicNode
    from kb.models import Paper
    from kb.organize import AddReport, Export, MarkReport, PaperDetails
    from kb.related import RelatedResults, Space, Weights
    from kb.search import SearchResults, Tuning
    from kb.storage.store import Generation


def default_index_dir() -> Path:
    """``$KB_INDEX``, else ``./index``."""
    return Path(os.environ.get("KB_INDEX") or "index")


class Library:
    """A knowledge base: the index at ``index_dir`` and the reading lists and PDFs it was built from.

    ``encoder`` replaces the embedding model for ingest and queries alike (any object with
    ``version`` and ``encode(texts) -> unit vectors``; tests inject a fast fake one). ``tuning`` and
    ``weights`` set the search and related ranking knobs (the benchmarks sweep them).
    """

    def __init__(
        self,
        index_dir: str | os.PathLike[str] | None = None,
        *,
        encoder: Encoder | None = None,
        tuning: Tuning | None = None,
        weights: Weights | None = None,
    ) -> None:
        self.index_dir = Path(index_dir) if index_dir is not None else default_index_dir()
        self.encoder = encoder
        self.tuning = tuning
        self.weights = weights
        self._lock = threading.RLock()
        self._gen: Generation | None = None
        self._space: Space | None = None
        self._query_encoder: Encoder | None = None
        self._query_model: tuple[str, str] | None = None

    def __repr__(self) -> str:
        return f"Library({str(self.index_dir)!r})"

    # ------------------------------------------------------------------------------ the index

    def generation(self) -> Generation:
        """The live index generation, reopened when an ingest has switched to a newer one."""
        from kb.storage import store

        with self._lock:
            current = store.current_generation(self.index_dir)
            if self._gen is not None and (current is None or current.name != self._gen.name):
                self._gen.close()
                self._gen, self._space = None, None
            if self._gen is None:
                self._gen = store.open_generation(self.index_dir)
            return self._gen

    def close(self) -> None:
        with self._lock:
            if self._gen is not None:
                self._gen.close()
            self._gen, self._space = None, None

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ingest(
        self,
        folders: Sequence[str | os.PathLike[str]] | None = None,
        *,
        catalogs: Sequence[str | os.PathLike[str]] | None = None,
        extractor: str | None = None,
        rebuild: bool = False,
        embed: bool | None = None,
        wait: float = 600.0,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Read the folders' PDFs and reading lists into the index (incremental, crash-safe).

        Without ``folders``, ingest again what the last ingest of this index read (its folders,
        catalogs and extractor). ``catalogs`` names reading lists explicitly (default: every ``*.md``
        reading list under the folders). ``embed=False`` builds a keyword-only index.
        """
        from kb import extract
        from kb.ingest import IngestOptions, ingest, options_from_index

        if wait < 0:
            raise UsageError("--wait must be 0 or more seconds")
        if folders:
            options = IngestOptions(
                folders=[Path(f) for f in folders],
                index_dir=self.index_dir,
                catalogs=[Path(c) for c in catalogs] if catalogs else None,
                extractor=extractor or extract.DEFAULT_EXTRACTOR,
            )
        else:
            try:
                options = options_from_index(self.index_dir)
            except NoIndexError:
                raise UsageError("name the folder(s) of your library, e.g. `kb ingest paper/`") from None
            if catalogs:
                options.catalogs = [Path(c) for c in catalogs]
            options.extractor = extractor or options.extractor
        options.rebuild = rebuild
        options.wait_lock_s = wait
        if embed is not None:
            options.embed = embed
        return ingest(options, progress, encoder=self._ingest_encoder())

    def status(self) -> LibraryStatus:
        """Counts, files with problems, entries whose PDF is missing, PDFs in no reading list."""
        from kb.listing import library_status

        return library_status(self.generation())

    # ------------------------------------------------------------------------------ finding

    def search(
        self,
        query: str,
        *,
        mode: str = "hybrid",
        limit: int = 10,
        topic: str | None = None,
        read: bool | None = None,
        year: str | None = None,
        venue: str | None = None,
    ) -> SearchResults:
        """Papers matching ``query`` by words (``keyword``), meaning (``semantic``) or both (``hybrid``),
        each with its best passages (page, file, highlights). No match: an empty ``results``."""
        from kb.search import DEFAULT_TUNING, SearchOptions, search

        filters = _filters(topic=topic, read=read, year=year, venue=venue)
        options = SearchOptions(query=query, mode=mode.lower(), limit=limit, filters=filters)
        gen = self.generation()
        needs_vectors = options.mode != "keyword"
        encoder = self._encoder_for_queries(gen) if needs_vectors else None
        return search(gen, options, encoder=encoder, tuning=self.tuning or DEFAULT_TUNING)

    def related(
        self,
        query: str,
        *,
        text: bool = False,
        limit: int = 10,
        topic: str | None = None,
        year: str | None = None,
        unread: bool = False,
    ) -> RelatedResults:
        """The papers most like the one ``query`` names (alias, title, id, file, method name), or like
        ``query`` as free text (``text=True``), each with its reasons."""
        from kb.related import DEFAULT_WEIGHTS, related

        if limit < 1:
            raise UsageError("--limit must be at least 1")
        filters = _filters(topic=topic, year=year, read=False if unread else None)
        gen = self.generation()
        space = self._related_space(gen)
        encoder = self._encoder_for_queries(gen) if text else None
        return related(
            gen,
            query,
            limit=limit,
            filters=filters,
            text=text,
            weights=self.weights or DEFAULT_WEIGHTS,
            space=space,
            encoder=encoder,
        )

    def papers(
        self,
        *,
        topic: str | None = None,
        read: bool | None = None,
        year: str | None = None,
        venue: str | None = None,
        has_pdf: bool | None = None,
        sort: str = "catalog",
    ) -> list[Paper]:
        """The papers the filters accept, sorted (``catalog``, ``year``, ``title`` or ``added``)."""
        from kb.listing import sort_papers

        filters = _filters(topic=topic, read=read, year=year, venue=venue, has_pdf=has_pdf)
        return sort_papers([p for p in self.generation().papers() if filters.match(p)], sort)

    def paper(self, name: str, *, related: int = 3) -> PaperDetails:
        """Everything kb knows about the paper ``name`` resolves to, and its ``related`` nearest papers."""
        from kb.organize import show_paper

        gen = self.generation()
        return show_paper(gen, name, n_related=max(0, related), space=self._related_space(gen))

    def topics(self) -> TopicNode:
        """The topic tree (root node without a name) with paper counts and read progress."""
        from kb.listing import topic_tree

        return topic_tree(self.generation().papers())

    # ------------------------------------------------------------------------------ changing the list

    def mark(self, names: Sequence[str], read: bool = True, *, dry_run: bool = False) -> MarkReport:
        """Tick (``read=True``) or untick the checkbox of each named paper in its reading list, then
        re-ingest. Each name succeeds or fails on its own (``MarkReport.failed``)."""
        from kb.organize import mark

        encoder = self._ingest_encoder()
        self.close()  # the edit re-ingests: read the new generation afterwards
        return mark(self.index_dir, list(names), read, dry_run=dry_run, encoder=encoder)

    def add(
        self,
        pdf: str | os.PathLike[str],
        topic: str | Sequence[str],
        *,
        catalog: str | os.PathLike[str] | None = None,
        move: bool = False,
        title: str | None = None,
        alias: str | None = None,
        venue: str | None = None,
        year: int | None = None,
        dry_run: bool = False,
    ) -> AddReport:
        """Copy (or ``move``) a PDF into the library, add an unread entry under ``topic`` (``"GAN/StyleGAN"``
        or a list of levels) of a reading list, and re-ingest."""
        from kb.organize import add_pdf, split_topic

        parts = split_topic(topic) if isinstance(topic, str) else [t.strip() for t in topic if t.strip()]
        if not parts:
            raise UsageError(
                'the topic is empty: give a heading, e.g. --topic "GAN/StyleGAN and its derivative"'
            )
        encoder = self._ingest_encoder()
        self.close()
        return add_pdf(
            self.index_dir,
            Path(pdf),
            parts,
            catalog=Path(catalog) if catalog is not None else None,
            move=move,
            dry_run=dry_run,
            title=title,
            alias=alias,
            venue=venue,
            year=year,
            encoder=encoder,
        )

    def export(
        self,
        format: str = "bibtex",
        *,
        topic: str | None = None,
        read: bool | None = None,
        year: str | None = None,
        venue: str | None = None,
        has_pdf: bool | None = None,
    ) -> Export:
        """Citations of the papers the filters accept: ``bibtex``, ``csl-json``, ``csv`` or ``markdown``."""
        from kb.organize import export

        filters = _filters(topic=topic, read=read, year=year, venue=venue, has_pdf=has_pdf)
        return export(self.generation(), format.lower(), filters)

    def fetch(
        self,
        names: Sequence[str] = (),
        *,
        topic: str | None = None,
        limit: int | None = None,
        dry_run: bool = False,
        mirrors: Mapping[str, str] | None = None,
        on_outcome: Callable[[FetchOutcome], None] | None = None,
        progress: Progress | None = None,
    ) -> FetchReport:
        """Download the PDFs that entries link to but the library lacks (the one command that uses the
        network), write each ``[[PDF]]`` link into its entry, then re-ingest so they are searchable.

        ``names`` picks papers (default: every entry without a PDF, under ``topic``); ``limit`` caps the
        downloads; ``mirrors`` maps hosts to other base URLs (also ``$KB_FETCH_MIRRORS``);
        ``dry_run`` says per paper what it would fetch and why, without touching the network."""
        from kb.fetch import FetchOptions, fetch_missing, mirrors_from_env
        from kb.ingest import options_from_index
        from kb.resolve import ResolveError, resolve_paper

        if limit is not None and limit < 1:
            raise UsageError("--limit must be at least 1")
        gen = self.generation()
        filters = _filters(topic=topic)
        if names:
            chosen, missing = [], []
            for name in names:
                try:
                    chosen.append(resolve_paper(gen, name).paper)
                except ResolveError as exc:
                    missing.append(str(exc))
            if missing:
                raise NotFoundError("; ".join(missing))
            papers = [p for p in dict((p.id, p) for p in chosen).values() if filters.match(p)]
        else:
            papers = [p for p in gen.papers() if p.catalog is not None and not p.files and filters.match(p)]
        try:
            options = FetchOptions(mirrors={**mirrors_from_env(), **(mirrors or {})})
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        folders = options_from_index(self.index_dir).folders
        report = fetch_missing(gen, papers, library_folders=folders, options=options, dry_run=dry_run,
                               limit=limit, on_outcome=on_outcome)
        if report.counts["fetched"]:
            self.close()
            report.ingest = self.ingest(progress=progress)
        return report

    # ------------------------------------------------------------------------------ loaded once

    def _ingest_encoder(self) -> Encoder | None:
        """The encoder a (re-)ingest uses: the one given, else the one this index was built with when kb
        can make it (an index keeps its encoder), else None: the default model, loaded when needed."""
        if self.encoder is not None:
            return self.encoder
        from kb.embed import encoder_for_version
        from kb.storage import store

        try:
            gen = store.Generation(self.index_dir)
        except KbError:  # no index yet, or one that the ingest will rebuild anyway
            return None
        version = gen.settings.get("model_version", "")
        gen.close()
        return encoder_for_version(version)

    def _encoder_for_queries(self, gen: Generation) -> Encoder:
        if self.encoder is not None:
            return self.encoder
        from kb.embed import query_encoder

        key = (str(gen.model_dir()), gen.settings.get("model_version", ""))
        with self._lock:
            if self._query_encoder is None or self._query_model != key:
                self._query_encoder, self._query_model = query_encoder(gen), key
            return self._query_encoder

    def _related_space(self, gen: Generation) -> Space | None:
        """The vector space of ``related``, built once per generation; None for an index without vectors
        (``related`` then says so)."""
        from kb.related import RelatedError, Space

        with self._lock:
            if self._space is None or self._space.gen is not gen:
                try:
                    self._space = Space(gen)
                except RelatedError:
                    return None
            return self._space


def _filters(**kw: object) -> Filters:
    from kb.listing import Filters

    return Filters(**kw)  # type: ignore[arg-type]
