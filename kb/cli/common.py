"""What every command shares: the app, the --index option, consoles, and error translation."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from kb.errors import KbError

if TYPE_CHECKING:
    from kb.api import Library

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
# The paper filters shared by list and export (kb.listing.Filters).
TopicOpt = Annotated[str | None, typer.Option(help="Topic at any level (case-insensitive prefix).")]
ReadOpt = Annotated[bool | None, typer.Option("--read/--unread", help="Only read / unread papers.")]
YearOpt = Annotated[str | None, typer.Option(help="2019, 2018-2020, 2018-, -2020.")]
VenueOpt = Annotated[str | None, typer.Option(help="Venue contains this text.")]
HasPdfOpt = Annotated[bool | None, typer.Option("--has-pdf/--no-pdf", help="With / without a PDF.")]


def index_dir(option: Path | None) -> Path:
    from kb.api import default_index_dir

    return option if option is not None else default_index_dir()


def library(option: Path | None) -> Library:
    """The ``kb.Library`` a command works on (``--index``, else ``$KB_INDEX``, else ``./index``)."""
    from kb.api import Library

    return Library(index_dir(option))


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback for unexpected errors.")] = False,
) -> None:
    """--debug is the documented KB_DEBUG=1 switch, for this process (and what it starts)."""
    if debug:
        os.environ["KB_DEBUG"] = "1"


def _debug() -> bool:
    return bool(os.environ.get("KB_DEBUG"))


F = TypeVar("F", bound=Callable[..., Any])


def run_command(func: F) -> F:
    """The one place errors become messages: a ``KbError`` (or an OS error) is one line on stderr and
    its exit code; anything else is an unexpected error, with a traceback only under --debug."""

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
        except (KbError, OSError) as exc:
            if _debug():
                traceback.print_exc()
            err.print(f"kb: {exc}", markup=False)
            raise typer.Exit(exc.exit_code if isinstance(exc, KbError) else 1) from None
        except BaseException as exc:  # also a Rust panic from tantivy, which is no Exception
            if _debug():
                traceback.print_exc()
            err.print(
                f"kb: unexpected error: {type(exc).__name__}: {exc} (run with --debug for details)",
                markup=False,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _discard_stdout() -> None:
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def main() -> None:
    """Entry point of the `kb` console script."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("kb: interrupted")
        sys.exit(130)
