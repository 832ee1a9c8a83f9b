"""What every command shares: the app, the --index option, consoles, and error translation."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

app = typer.Typer(
    name="kb",
    help="A local, offline knowledge base for the research papers in your Markdown reading list.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class _Console(Console):
    """A rich Console that reports a closed pipe as BrokenPipeError instead of exiting.

    rich's own ``on_broken_pipe`` raises SystemExit(1), which would bypass ``run_command`` and make
    ``kb list | head -1`` fail; here the error reaches ``run_command``, which exits 0.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError("output closed")


# Results go to stdout, progress and messages to stderr; both plain (no colour) when piped.
out = _Console(highlight=False, soft_wrap=True)
err = _Console(stderr=True, highlight=False, soft_wrap=True)

IndexOpt = Annotated[
    Path | None,
    typer.Option("--index", help="Index directory [default: $KB_INDEX or ./index]", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
# The paper filters shared by list and export (kb.library.Filters).
TopicOpt = Annotated[str | None, typer.Option(help="Topic at any level (case-insensitive prefix).")]
ReadOpt = Annotated[bool | None, typer.Option("--read/--unread", help="Only read / unread papers.")]
YearOpt = Annotated[str | None, typer.Option(help="2019, 2018-2020, 2018-, -2020.")]
VenueOpt = Annotated[str | None, typer.Option(help="Venue contains this text.")]
HasPdfOpt = Annotated[bool | None, typer.Option("--has-pdf/--no-pdf", help="With / without a PDF.")]


class UsageProblem(Exception):
    """A user mistake in the arguments: exit code 2."""


class NotFound(Exception):
    """What the user asked for does not exist (a paper, a result): exit code 1."""


def index_dir(option: Path | None) -> Path:
    if option is not None:
        return option
    return Path(os.environ.get("KB_INDEX") or "index")


_DEBUG = {"on": bool(os.environ.get("KB_DEBUG"))}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback for unexpected errors.")] = False,
) -> None:
    if debug:
        _DEBUG["on"] = True


F = TypeVar("F", bound=Callable[..., Any])


def _code_for(exc: BaseException) -> int:
    from kb import store

    if isinstance(exc, UsageProblem):
        return 2
    if isinstance(exc, store.Locked):
        return 3
    return 1


def run_command(func: F) -> F:
    """Turn library errors into one line on stderr and an exit code; never show a traceback
    unless --debug (or KB_DEBUG=1) asks for one."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            try:
                result = func(*args, **kwargs)
            finally:
                # Output written with sys.stdout.write may still sit in the buffer: flush it here,
                # so a closed pipe is seen now and not at interpreter exit (exit code 120).
                sys.stdout.flush()
            return result
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            err.print("kb: interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # stdout closed early (e.g. `kb list | head -1`): the reader has what it wanted, so this
            # is a success. Point stdout at /dev/null so the final flush cannot fail again.
            _discard_stdout()
            raise typer.Exit(0) from None
        except SystemExit:
            raise
        except BaseException as exc:  # also a Rust panic from tantivy, which is no Exception
            known = _known(exc)
            if _DEBUG["on"]:
                traceback.print_exc()
            if known:
                err.print(f"kb: {exc}", markup=False)
            else:
                err.print(
                    f"kb: unexpected error: {type(exc).__name__}: {exc} (run with --debug for details)",
                    markup=False,
                )
            raise typer.Exit(_code_for(exc)) from None

    return wrapper  # type: ignore[return-value]


def _discard_stdout() -> None:
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _known(exc: BaseException) -> bool:
    from kb import store

    known: tuple[type[BaseException], ...] = (UsageProblem, NotFound, store.StoreError, OSError)
    try:
        from kb.ingest import IngestError

        known += (IngestError,)
    except ImportError:  # pragma: no cover
        pass
    try:
        from kb.embed import EmbeddingError

        known += (EmbeddingError,)
    except ImportError:  # pragma: no cover
        pass
    for name in (
        "kb.search:SearchError",
        "kb.related:RelatedError",
        "kb.mdedit:EditError",
        "kb.resolve:ResolveError",
        "kb.library:LibraryError",
        "kb.organize:OrganizeError",
    ):
        module, _, cls = name.partition(":")
        mod = sys.modules.get(module)
        if mod is not None and isinstance(exc, getattr(mod, cls, ())):
            return True
    return isinstance(exc, known)


def main() -> None:
    """Entry point of the `kb` console script."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("kb: interrupted")
        sys.exit(130)
