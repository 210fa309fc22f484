"""Plots of a :class:`~carrisk.explain.ShapResult`: waterfall, beeswarm, bar and dependence, written as PNG files."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from carrisk.explain.result import ShapResult
from carrisk.units import DAYS_PER_MONTH


def _pyplot() -> Any:
    """pyplot on the non-interactive Agg backend (plots are only ever written to files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_atomic(fig: Any, path: str | os.PathLike) -> Path:
    """Write ``fig`` as PNG to a temporary file beside ``path``, then rename it into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-", suffix=".png")
    os.close(handle)
    try:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        os.replace(tmp, target)
    finally:
        _pyplot().close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def _output_label(result: ShapResult) -> str:
    if result.output in ("survival", "cumulative_hazard") and result.times is not None and np.ndim(result.times) == 0:
        days = float(result.times)
        name = "EFS" if result.output == "survival" else "cumulative hazard"
        return f"{name} at {days / DAYS_PER_MONTH:.0f} months ({days:g} days)"
    return result.output.replace("_", " ")


def _two_dimensional(result: ShapResult) -> ShapResult:
    if result.has_time_axis:
        raise ValueError("The result has a time axis; select a horizon first, e.g. result.select_time(182.625).")
    return result


def plot_waterfall(
    result: ShapResult,
    row: int,
    path: str | os.PathLike,
    max_display: int = 10,
    raw_values: Sequence[Any] | None = None,
    label: str | None = None,
) -> Path:
    """Waterfall of one patient: baseline, each variable's push, and the final prediction.

    Parameters
    ----------
    result : ShapResult
        A 2-d result (one horizon), e.g. ``explainer.shap_values(X, "survival", 182.625)``.
    row : int
        Patient (row position) to draw.
    path : path-like
        PNG file to write (atomically).
    max_display : int, default 10
        Variables shown; the rest are summed into one bar.
    raw_values : sequence, optional
        Values to print beside the variable names (e.g. unscaled clinical values), one per feature.
    label : str, optional
        How to name the patient in the title (e.g. the patient_id); default "Patient <row>".

    Returns
    -------
    Path
    """
    import shap

    plt = _pyplot()
    result = _two_dimensional(result)
    explanation = result.to_explanation(row)
    if result.output == "survival":  # in percentage points, as the command line and the page say it
        explanation.values = explanation.values * 100
        explanation.base_values = explanation.base_values * 100
    if raw_values is not None:
        if len(raw_values) != len(result.feature_names):
            raise ValueError(f"raw_values needs {len(result.feature_names)} entries, got {len(raw_values)}.")
        explanation.display_data = np.asarray(raw_values, dtype=object)
    plt.figure()
    shap.plots.waterfall(explanation, max_display=max_display, show=False)
    fig = plt.gcf()
    unit = ", %" if result.output == "survival" else ""
    fig.suptitle(f"{label or f'Patient {row}'}: {_output_label(result)}{unit}", y=1.02)
    return _save_atomic(fig, path)


def plot_beeswarm(result: ShapResult, path: str | os.PathLike, max_display: int = 15) -> Path:
    """Beeswarm of SHAP values per variable, coloured by the variable's value.

    Parameters
    ----------
    result : ShapResult
        A 2-d result.
    path : path-like
        PNG file to write.
    max_display : int, default 15

    Returns
    -------
    Path
    """
    import shap

    return _summary_plot(shap.plots.beeswarm, result, path, max_display, "SHAP values (grey: categories, no order)")


def _summary_plot(plot: Any, result: ShapResult, path: str | os.PathLike, max_display: int, title: str) -> Path:
    plt = _pyplot()
    explanation = _two_dimensional(result).to_explanation()
    plt.figure()
    plot(explanation, max_display=max_display, show=False)
    fig = plt.gcf()
    fig.suptitle(f"{title}: {_output_label(result)}")
    return _save_atomic(fig, path)


def plot_bar(result: ShapResult, path: str | os.PathLike, max_display: int = 15) -> Path:
    """Bar chart of mean absolute SHAP value per variable.

    Parameters
    ----------
    result : ShapResult
        A 2-d result.
    path : path-like
        PNG file to write.
    max_display : int, default 15

    Returns
    -------
    Path
    """
    import shap

    return _summary_plot(shap.plots.bar, result, path, max_display, "Mean |SHAP|")


def plot_dependence(
    result: ShapResult,
    feature: str,
    path: str | os.PathLike,
    xlabel: str | None = None,
    symlog_below: float | None = None,
) -> Path:
    """SHAP value of one variable against its value, across patients.

    Parameters
    ----------
    result : ShapResult
        A 2-d result.
    feature : str
        Variable to draw.
    path : path-like
        PNG file to write.
    xlabel : str, optional
        Axis label for the variable's values (default: its name).
    symlog_below : float, optional
        A numeric variable's axis is logarithmic from this value and linear below it (matplotlib's "symlog"),
        e.g. marrow blasts in % from 0 (undetectable) to 100.

    Returns
    -------
    Path
    """
    result = _two_dimensional(result)
    if feature not in result.feature_names:
        raise ValueError(f"Unknown feature {feature!r}; choose one of {result.feature_names}.")
    j = result.feature_names.index(feature)
    column = result.data[feature]
    numeric = pd.to_numeric(column, errors="coerce")
    missing = int(column.isna().sum())
    fig, ax = _pyplot().subplots(figsize=(6, 4))
    if numeric.notna().sum() == column.notna().sum() > 0:  # a number for every patient with a value
        shown = numeric.notna().to_numpy()
        ax.scatter(numeric[shown], result.values[shown, j], s=12, alpha=0.7)
        if symlog_below is not None:
            ax.set_xscale("symlog", linthresh=symlog_below)
            ax.set_xlim(left=min(-0.2 * symlog_below, float(numeric.min())))
        if missing:
            xlabel = f"{xlabel or feature}; {missing} patient(s) without a value not shown"
    else:
        categories = pd.Categorical(column.astype(str))
        jitter = np.random.default_rng(0).uniform(-0.15, 0.15, size=len(column))
        ax.scatter(categories.codes + jitter, result.values[:, j], s=12, alpha=0.7)
        ax.set_xticks(range(len(categories.categories)), categories.categories, rotation=30, ha="right")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel(xlabel or feature)
    ax.set_ylabel(f"SHAP value ({_output_label(result)})")
    return _save_atomic(fig, path)
