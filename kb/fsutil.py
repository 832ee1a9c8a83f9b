"""Small file-system helpers every stage shares: content hashes, atomic writes, paths as users type them."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sha256_file(path: str | Path) -> str:
    """The content hash of a file, read in 1 MiB blocks (PDFs can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync_dir(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, keep_mode: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically: a temp file beside it, fsync, ``os.replace``.

    Readers see the old file or the new one, never half of either. An existing file keeps its mode
    (``keep_mode``); a symlink's target is replaced, not the link. A new file gets the umask's mode.
    """
    target = Path(path)
    if target.is_symlink() or target.exists():
        target = target.resolve()
    mode = stat.S_IMODE(target.stat().st_mode) if keep_mode and target.exists() else None
    parent = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".kb-tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask  # an ordinary new file (mkstemp makes it private)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(parent)


def rel_path(path: str, cwd: Path | None = None) -> str:
    """A path relative to the current directory when that is shorter, as users type them."""
    try:
        rel = os.path.relpath(path, cwd or Path.cwd())
    except ValueError:
        return path
    return rel if len(rel) <= len(path) else path


def json_path(path: str, cwd: Path | None) -> str:
    """A path in JSON output: relative to ``cwd`` when given (the CLI), else absolute (the API)."""
    return rel_path(path, cwd) if cwd is not None else path
