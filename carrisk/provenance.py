"""Provenance: which package versions and which data produced a result (bundles, CV JSON, benchmarks)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
from collections.abc import Sequence
from typing import Any

import pandas as pd

__all__ = ["RECORDED_PACKAGES", "data_fingerprint", "package_versions"]

#: Distributions whose versions every result records, by their names on PyPI (Python's own is added as ``python``).
RECORDED_PACKAGES = (
    "carrisk",
    "scikit-survival",
    "scikit-learn",
    "numpy",
    "pandas",
    "scipy",
    "joblib",
    "lifelines",
    "shap",
)


def package_versions(extra: Sequence[str] = ()) -> dict[str, str | None]:
    """Installed versions of :data:`RECORDED_PACKAGES` and ``extra`` packages, plus Python's.

    Parameters
    ----------
    extra : sequence of str
        More distributions to record (names as on PyPI).

    Returns
    -------
    dict
        ``{"python": "3.11.9", "carrisk": "0.1.0", ...}``; None for a package that is not installed.
    """
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in (*RECORDED_PACKAGES, *extra):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def data_fingerprint(records: pd.DataFrame) -> dict[str, Any]:
    """Rows, columns and a SHA-256 of the table's content (as CSV text), to tie results to their data."""
    digest = hashlib.sha256(records.to_csv(index=False).encode()).hexdigest()
    return {"rows": len(records), "columns": list(map(str, records.columns)), "sha256": digest}
