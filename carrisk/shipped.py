"""What ships inside carrisk: the default model bundle and the record documentation.

The repository keeps one copy of each at its top level, ``models/default`` (bundle and model card) and
``docs/records.md``. A built wheel carries them as ``carrisk/_shipped/default`` and ``carrisk/_shipped/records.md``
(copied by ``setup.py`` at build time), found here with :mod:`importlib.resources`; a source checkout or an editable
install has no such copy and reads the top-level files. Nothing here depends on what the default model is, so
``models/default`` can be rebuilt with another model class.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

__all__ = ["default_model_path", "load_default_model", "records_help"]

_SOURCE_ROOT = Path(__file__).resolve().parents[1]
_INSTALLED = {"model": "_shipped/default", "records": "_shipped/records.md"}
_IN_SOURCE_TREE = {"model": _SOURCE_ROOT / "models" / "default", "records": _SOURCE_ROOT / "docs" / "records.md"}


def _resource(kind: str) -> Path:
    """The installed copy of a shipped resource if there is one, else the source checkout's."""
    installed = resources.files("carrisk").joinpath(_INSTALLED[kind])
    if isinstance(installed, os.PathLike) and Path(installed).exists():  # a wheel unpacked on disk
        return Path(installed)
    source = _IN_SOURCE_TREE[kind]
    if source.exists():
        return source
    raise FileNotFoundError(
        2,
        f"carrisk's shipped {'default model' if kind == 'model' else 'record documentation'} is missing from this "
        "installation (reinstall carrisk from a wheel or a full source checkout)",
        str(installed),
    )


def default_model_path() -> Path:
    """The directory of the shipped default model bundle (synthetic training data; see its ``MODEL_CARD.md``).

    Returns
    -------
    pathlib.Path
        ``carrisk/_shipped/default`` inside an installed wheel, or ``models/default`` of a source checkout.

    Raises
    ------
    FileNotFoundError
        If neither exists (a broken installation).
    """
    return _resource("model")


def load_default_model(*, allow_version_mismatch: bool = False) -> object:
    """Load the shipped default model with :func:`carrisk.load_model`.

    Parameters
    ----------
    allow_version_mismatch : bool, default False
        Passed to :func:`carrisk.load_model`.

    Returns
    -------
    object
        The fitted model (an :class:`carrisk.EFSModel` or another carrisk model class), with its manifest as
        ``manifest_``.
    """
    from carrisk.bundle import load_model

    return load_model(default_model_path(), allow_version_mismatch=allow_version_mismatch)


def records_help() -> str:
    """The record documentation (``docs/records.md``): every column, its units, spellings and missing values.

    ``carrisk records-help`` prints it; error messages about records point there.
    """
    return _resource("records").read_text(encoding="utf-8")
