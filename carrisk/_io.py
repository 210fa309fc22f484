"""Safe file writes: atomic (a crash never leaves a half-written file) and spreadsheet-safe CSV."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the final file the usual permissions
    try:
        yield tmp_path
        with open(tmp_path, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def unwritable_reason(path: str | os.PathLike[str]) -> str | None:
    """Why nothing can be created at ``path``: its nearest existing parent is a file or not writable (else None)."""
    ancestor = Path(os.path.abspath(path)).parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a file, not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{ancestor} is not writable"
    return None


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file, fsync, rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


#: Leading characters that make a spreadsheet read a text cell as a formula (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NEEDS_QUOTES = re.compile(r'[",\x00-\x1f\x7f]')


def neutralise_cell(text: str) -> str:
    """Prefix a single quote to text that a spreadsheet would read as a formula (leading ``= + - @ \\t \\r``)."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _csv_field(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "" if math.isnan(value) else repr(float(value))
    text = neutralise_cell(str(value))
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_text(frame: pd.DataFrame, *, header: bool = True) -> str:
    """Render ``frame`` (without its index) as spreadsheet-safe CSV text.

    Numbers are written as numbers (floats by their shortest round-trip form, missing as an empty cell); every
    text cell, header included, is neutralised with :func:`neutralise_cell` and quoted when it holds a comma, a
    double quote or any control character, so that no cell is read as a formula or splits a row.
    """
    lines = []
    if header:
        lines.append(",".join(_csv_field(str(c)) for c in frame.columns))
    columns = [list(map(_csv_field, frame[c].tolist())) for c in frame.columns] if len(frame.columns) else []
    lines.extend(",".join(row) for row in zip(*columns))
    return "".join(line + "\n" for line in lines)


def write_csv(path: str | os.PathLike[str], frame: pd.DataFrame, *, index: bool = False) -> Path:
    """Write ``frame`` atomically as spreadsheet-safe CSV (see :func:`csv_text`); ``index=True`` keeps the index."""
    return atomic_write_text(path, csv_text(frame.reset_index() if index else frame))


@contextlib.contextmanager
def csv_stream(path: str | os.PathLike[str]) -> Iterator[Callable[[pd.DataFrame], None]]:
    """Write a CSV in chunks, atomically: yields ``write(chunk)``; the header is written with the first chunk.

    The file appears at ``path`` only when the block finishes without an error.
    """
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        started = False

        def write(chunk: pd.DataFrame) -> None:
            nonlocal started
            handle.write(csv_text(chunk, header=not started))
            started = True

        yield write


@contextlib.contextmanager
def json_array_stream(path: str | os.PathLike[str]) -> Iterator[Callable[[list[Any]], None]]:
    """Write a JSON array in chunks, atomically: yields ``write(items)``; the file is one valid JSON array."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write("[")
        first = True

        def write(items: list[Any]) -> None:
            nonlocal first
            for item in items:
                handle.write(("\n" if first else ",\n") + json.dumps(item, allow_nan=True))
                first = False

        yield write
        handle.write("\n]\n")


_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
MAX_FILENAME_STEM = 100


def safe_filename(directory: str | os.PathLike[str], stem: str, suffix: str, taken: set[str] | None = None) -> Path:
    """A path inside ``directory`` for a file named after data (e.g. a ``patient_id``).

    Every character outside ``A-Z a-z 0-9 . _ -`` becomes ``_``, leading dots are dropped, the stem is cut to
    100 characters, and a ``-2``, ``-3``... suffix keeps names unique within ``taken`` (which is updated). The
    result is checked to resolve inside ``directory``.

    Raises
    ------
    ValueError
        If the path would leave ``directory`` (cannot happen after sanitising; checked all the same).
    """
    base = _UNSAFE_FILENAME.sub("_", stem).lstrip(".")[:MAX_FILENAME_STEM] or "unnamed"
    name, counter = base, 1
    while taken is not None and name.lower() in taken:
        counter += 1
        name = f"{base}-{counter}"
    if taken is not None:
        taken.add(name.lower())
    root = Path(directory).resolve()
    path = root / f"{name}{suffix}"
    if path.resolve().parent != root:
        raise ValueError(f"file name {stem!r} would leave the output directory {directory}")
    return path
