"""Case-mix of a cohort in clinical variables, and how two cohorts differ.

A model's bundle records the case-mix of its training patients (:func:`case_mix_summary`, stored in the
manifest as ``training_case_mix``), so that a centre evaluating the model on its own patients can see how they
differ without the training data (:func:`case_mix_differences`). Categorical variables are summarised by the
share of each level, numeric ones by mean, standard deviation and share missing.

The standardized difference of a share is ``(p1 - p0) / sqrt((p1 (1 - p1) + p0 (1 - p0)) / 2)`` and of a
mean ``(m1 - m0) / sqrt((s1^2 + s0^2) / 2)`` (Austin 2009 [1]_); |d| > 0.1 is the usual flag of a meaningful
imbalance.

References
----------
.. [1] Austin, P. C. (2009). "Balance diagnostics for comparing the distribution of baseline covariates between
       treatment groups in propensity-score matched samples". Statistics in Medicine, 28(25), 3083-3107.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["case_mix_differences", "case_mix_summary"]

IMBALANCE_THRESHOLD = 0.1


def _is_numeric(column: pd.Series) -> bool:
    values = pd.to_numeric(column, errors="coerce")
    present = column.notna()
    return bool(present.any()) and bool(values[present].notna().all()) and column[present].nunique() > 2


def case_mix_summary(clinical: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Summarise each clinical variable of a cohort.

    Parameters
    ----------
    clinical : DataFrame
        One row per patient, one column per clinical variable in canonical values (as
        ``ClinicalFeatures.categorize`` returns them).

    Returns
    -------
    dict
        Variable -> ``{"kind": "numeric", "n": .., "mean": .., "sd": .., "missing": share}`` or
        ``{"kind": "categorical", "n": .., "shares": {level: share}}`` (missing values are the level
        ``"missing"``). Plain JSON types.
    """
    summary: dict[str, dict[str, Any]] = {}
    for name in clinical.columns:
        column = clinical[name]
        n = len(column)
        if _is_numeric(column):
            values = pd.to_numeric(column, errors="coerce").astype(float)
            present = values.dropna()
            summary[str(name)] = {
                "kind": "numeric",
                "n": int(n),
                "mean": float(present.mean()) if len(present) else float("nan"),
                "sd": float(present.std(ddof=1)) if len(present) > 1 else float("nan"),
                "missing": float(1.0 - len(present) / n) if n else float("nan"),
            }
        else:
            levels = column.map(lambda v: "missing" if v is None or v != v else str(v))
            shares = levels.value_counts(normalize=True).sort_index()
            summary[str(name)] = {
                "kind": "categorical",
                "n": int(n),
                "shares": {str(level): float(share) for level, share in shares.items()},
            }
    return summary


def _share_difference(p1: float, p0: float) -> float:
    pooled = np.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2.0)
    return float((p1 - p0) / pooled) if pooled > 0 else 0.0


def case_mix_differences(training: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Table of differences between two case-mix summaries (training first, then the new cohort).

    Parameters
    ----------
    training, new : dict
        Outputs of :func:`case_mix_summary`.

    Returns
    -------
    DataFrame
        One row per (variable, level) present in either cohort: ``variable``, ``level`` (``"mean"`` or
        ``"missing"`` for numeric variables), ``training``, ``new``, ``difference`` (new - training) and
        ``standardized_difference``, sorted by variable. Variables present in only one summary are left out.
    """
    rows: list[dict[str, Any]] = []
    for name in sorted(set(training) & set(new)):
        old, cur = training[name], new[name]
        if old["kind"] == "numeric" and cur["kind"] == "numeric":
            pooled = np.sqrt((old["sd"] ** 2 + cur["sd"] ** 2) / 2.0)
            smd = (cur["mean"] - old["mean"]) / pooled if pooled > 0 else 0.0
            rows.append({"variable": name, "level": "mean", "training": old["mean"], "new": cur["mean"], "smd": smd})
            rows.append(
                {
                    "variable": name,
                    "level": "missing",
                    "training": old["missing"],
                    "new": cur["missing"],
                    "smd": _share_difference(cur["missing"], old["missing"]),
                }
            )
            continue
        old_shares = old.get("shares", {})
        new_shares = cur.get("shares", {})
        for level in sorted(set(old_shares) | set(new_shares)):
            p0, p1 = float(old_shares.get(level, 0.0)), float(new_shares.get(level, 0.0))
            rows.append({"variable": name, "level": level, "training": p0, "new": p1, "smd": _share_difference(p1, p0)})
    table = pd.DataFrame(rows, columns=["variable", "level", "training", "new", "smd"])
    table.insert(4, "difference", table["new"] - table["training"])
    return table.rename(columns={"smd": "standardized_difference"})
