"""Unknown or rarely seen clinical levels: marginalise the prediction over the levels training did see.

A patient whose blinatumomab response is "not evaluable" (``exposed_unknown``), whose CD19 expression or KMT2A
status is unknown, has one of the known levels in truth; the model cannot say which. Encoding such a record as
the reference level (what an unseen one-hot level becomes) silently predicts a blinatumomab-exposed patient as if
naive. Instead, when the level was not seen in training, or seen fewer than :data:`MIN_LEVEL_PATIENTS` times (too
few for an estimate of its own), the prediction is the mixture over the candidate levels

``S(t | x) = sum_l w_l S(t | x with level l)``, ``w_l`` = the share of level ``l`` among training patients (of the
levels compatible with what is known: "exposed, response unknown" mixes responder and nonresponder only).

This is the law of total probability with the training distribution of the unknown variable as its
distribution, i.e. assuming that it is independent of the patient's other covariates (a simplification: in the
study blinatumomab nonresponders have high burden more often). Shapley values are linear in the game, so the
SHAP values of the mixture are the same mixture of each variant's SHAP values and still add up to the prediction.
The output names what was assumed (``assumptions`` column of :meth:`carrisk.EFSModel.predict_efs`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = [
    "MIN_LEVEL_PATIENTS",
    "level_counts",
    "marginalisation_plan",
    "marginalised",
    "mixture_interval",
    "quiet_encoder",
    "reference_level_notes",
    "warn_scored_as_reference",
]

#: A candidate level weighing less than this is left out of a marginalised patient's interval (see
#: :func:`mixture_interval`).
INTERVAL_MIN_WEIGHT = 0.025

#: A level seen in fewer training patients than this is marginalised like an unseen one.
MIN_LEVEL_PATIENTS = 10

#: (variable, level) -> the record cells that encode that level (applied to a copy of the patient's record).
LEVEL_CELLS: dict[tuple[str, str], dict[str, Any]] = {
    ("blina_status", "naive"): {"blina_exposed": "no", "blina_response": np.nan},
    ("blina_status", "responder"): {"blina_exposed": "yes", "blina_response": "CR"},
    ("blina_status", "nonresponder"): {"blina_exposed": "yes", "blina_response": "NR"},
    ("cd19", "bright"): {"cd19_expression": "bright"},
    ("cd19", "dim_or_partial"): {"cd19_expression": "dim"},
    ("cd19", "dim"): {"cd19_expression": "dim"},
    ("cd19", "partial"): {"cd19_expression": "partial"},
    ("kmt2a", "rearranged"): {"kmt2a_status": "rearranged"},
    ("kmt2a", "not_rearranged"): {"kmt2a_status": "not rearranged"},
}
#: (variable, level to marginalise) -> the levels it can be, when not every level is possible.
COMPATIBLE_LEVELS: dict[tuple[str, str], tuple[str, ...]] = {
    ("blina_status", "exposed_unknown"): ("responder", "nonresponder"),
}
#: Levels that stand for "not known" and are marginalised when rare or unseen.
UNKNOWN_LEVELS: dict[str, tuple[str, ...]] = {
    "blina_status": ("exposed_unknown", "unknown"),
    "cd19": ("unknown",),
    "kmt2a": ("unknown", "not_tested"),
}


def level_counts(categorized: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Training patients per level of each marginalisable variable (from ``ClinicalFeatures.categorize``)."""
    return {
        variable: {str(k): int(v) for k, v in categorized[variable].value_counts().items()}
        for variable in UNKNOWN_LEVELS
        if variable in categorized
    }


def _candidates(variable: str, level: str, counts: Mapping[str, int]) -> dict[str, float]:
    """Candidate levels and their weights (training shares among the compatible, well-represented levels)."""
    allowed = COMPATIBLE_LEVELS.get((variable, level))
    options = {
        known: n
        for known, n in counts.items()
        if (variable, known) in LEVEL_CELLS
        and n >= MIN_LEVEL_PATIENTS
        and (allowed is None or known in allowed)
        and known not in UNKNOWN_LEVELS[variable]
    }
    total = sum(options.values())
    return {known: n / total for known, n in options.items()} if total else {}


def marginalisation_plan(
    records: pd.DataFrame, categorized: pd.DataFrame, counts: Mapping[str, Mapping[str, int]] | None
) -> tuple[pd.DataFrame, sparse.csr_matrix, list[str]]:
    """Add one row per candidate level for every record whose level must be marginalised.

    Parameters
    ----------
    records : DataFrame
        The patients' records (index 0..n-1).
    categorized : DataFrame
        Their canonical levels (``ClinicalFeatures.categorize(records)``).
    counts : mapping or None
        Training patients per level (:func:`level_counts`); None (an older model) leaves every record as it is.

    Returns
    -------
    expanded : DataFrame
        ``records`` followed by the variants of the marginalised patients (every combination of candidate levels
        when several of a patient's variables are marginalised).
    weights : sparse (n, len(expanded)) matrix
        Row i holds patient i's weights over the expanded rows (each row sums to 1): a prediction for the patients
        is ``weights @ prediction_of_expanded_rows``. Unaffected patients weigh 1 on their own row.
    assumptions : list of str
        What was assumed for each patient ("" when nothing was).
    """
    n = len(records)
    owner, column, share = list(range(n)), list(range(n)), [1.0] * n
    extra: list[pd.Series] = []
    assumptions = [""] * n
    affected = np.zeros(n, dtype=bool)
    if counts is not None:
        for variable, levels in UNKNOWN_LEVELS.items():
            if variable in categorized and variable in counts:
                rare = [lv for lv in levels if counts[variable].get(lv, 0) < MIN_LEVEL_PATIENTS]
                affected |= categorized[variable].astype(str).isin(rare).to_numpy()
    for i in np.flatnonzero(affected):
        variants: list[tuple[pd.Series, float]] = [(records.iloc[i], 1.0)]
        notes = []
        for variable, levels in UNKNOWN_LEVELS.items():
            if counts is None or variable not in categorized or variable not in counts:
                continue
            level = str(categorized.iloc[i][variable])
            seen = counts[variable].get(level, 0)
            options = _candidates(variable, level, counts[variable]) if level in levels else {}
            if seen >= MIN_LEVEL_PATIENTS or not options:
                continue
            variants = [
                (_set(record, variable, known), w * p) for record, w in variants for known, p in options.items()
            ]
            mix = ", ".join(f"{known} {p:.0%}" for known, p in options.items())
            notes.append(f"{variable} {level!r} ({seen} training patients): EFS averaged over {mix} (training shares)")
        if not notes:
            continue
        share[i] = 0.0
        for record, weight in variants:
            owner.append(int(i))
            column.append(n + len(extra))
            share.append(weight)
            extra.append(record)
        assumptions[i] = "; ".join(notes)
    expanded = pd.concat([records, pd.DataFrame(extra)], ignore_index=True) if extra else records
    weights = sparse.csr_matrix((share, (owner, column)), shape=(n, len(expanded)))
    return expanded, weights, assumptions


def marginalised(
    records: pd.DataFrame,
    features: Any,
    counts: Mapping[str, Mapping[str, int]] | None,
    predict: Callable[[pd.DataFrame], np.ndarray],
) -> np.ndarray:
    """``predict`` of each record with its rare or unseen unknown levels marginalised, as ``predict_efs`` does.

    Parameters
    ----------
    records : DataFrame
        The patients' records.
    features : ClinicalFeatures
        The fitted feature step (its ``categorize`` gives the canonical levels).
    counts : mapping or None
        Training patients per level (:func:`level_counts` of the *training* records; None leaves every record
        as it is).
    predict : callable
        Records -> per-record predictions of shape (n,) or (n, k), e.g. survival probabilities at fixed times.

    Returns
    -------
    ndarray
        ``weights @ predict(expanded)`` with the plan of :func:`marginalisation_plan`: the mixture over the
        known levels for an affected patient, its own prediction for every other one.
    """
    frame = records.reset_index(drop=True)
    expanded, weights, _ = marginalisation_plan(frame, features.categorize(frame), counts)
    # only the rows that carry weight are predicted: an affected patient's own row (weight 0) would make the
    # encoder warn that its unknown level is scored as the reference level, which is not what happens
    used = np.flatnonzero(np.asarray(abs(weights).sum(axis=0)).ravel() > 0)
    return np.asarray(weights[:, used] @ np.asarray(predict(expanded.iloc[used]), dtype=float))


def mixture_interval(
    weights: sparse.csr_matrix, lo: np.ndarray, hi: np.ndarray, min_weight: float = INTERVAL_MIN_WEIGHT
) -> tuple[np.ndarray, np.ndarray]:
    """95% intervals of the patients of a marginalisation plan from the intervals of its expanded rows.

    A patient with one row keeps that row's interval. For a marginalised patient the true EFS is that of one of
    its candidate levels, not their average: the interval spans the intervals of every candidate weighing at
    least ``min_weight`` (2.5 %: a rarer level can be left out at the 95 % level). Averaging the bounds instead
    (``weights @ lo``) gives an interval around the mixture that excludes the true EFS whenever the levels differ
    much; in the truth benchmark it covered the true EFS of 51 % of such patients.

    Parameters
    ----------
    weights : sparse (n, m) matrix
        Patients' weights over the expanded rows (:func:`marginalisation_plan`).
    lo, hi : (m,) or (m, k) arrays
        The expanded rows' interval bounds.

    Returns
    -------
    lo, hi : (n,) or (n, k) arrays
    """
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    csr = sparse.csr_matrix(weights)
    out_lo = np.empty((csr.shape[0], *lo.shape[1:]))
    out_hi = np.empty_like(out_lo)
    for i in range(csr.shape[0]):
        row = slice(csr.indptr[i], csr.indptr[i + 1])
        columns, shares = csr.indices[row], csr.data[row]
        kept = columns[shares >= min(min_weight, shares.max())]
        out_lo[i], out_hi[i] = lo[kept].min(axis=0), hi[kept].max(axis=0)
    return out_lo, out_hi


def _set(record: pd.Series, variable: str, level: str) -> pd.Series:
    out = record.copy()
    for column, value in LEVEL_CELLS[(variable, level)].items():
        if column in out.index:
            out[column] = value
    return out


def reference_level_notes(features: Any, categorized: pd.DataFrame, assumptions: list[str]) -> list[str]:
    """Add a note for every level the model never saw that was scored as its variable's reference level.

    A level outside :data:`UNKNOWN_LEVELS` (e.g. CD19 ``negative`` when no training patient had it) has no
    known-level mixture that would be defensible, so the encoder scores it as the reference level; the output says
    so instead of hiding it.
    """
    out = list(assumptions)
    for _, builder in getattr(features, "builders_", []):
        for variable, levels in getattr(builder, "categories_", {}).items():
            if variable not in categorized or not levels:
                continue
            values = categorized[variable].astype(str).to_numpy()
            for i in np.flatnonzero(~np.isin(values, levels)):
                if variable in UNKNOWN_LEVELS and values[i] in UNKNOWN_LEVELS[variable] and out[i]:
                    continue  # marginalised above
                note = f"{variable} {values[i]!r} was not seen in training: scored as the reference level {levels[0]!r}"
                out[i] = f"{out[i]}; {note}" if out[i] else note
    return out


@contextlib.contextmanager
def quiet_encoder() -> Iterator[None]:
    """Silence the encoder's "encoded as the reference level" warning while encoding a marginalisation plan's rows.

    It is wrong for a marginalised patient (whose unknown level is never scored as the reference level) and, for a
    level really scored as the reference level, the caller reports it per patient instead (``assumptions``, or
    :func:`warn_scored_as_reference`).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*were not seen in training", category=UserWarning)
        yield


def warn_scored_as_reference(features: Any, categorized: pd.DataFrame, assumptions: list[str]) -> None:
    """One UserWarning per level that was scored as its reference level (for outputs without ``assumptions``)."""
    notes = reference_level_notes(features, categorized, assumptions)
    assumed = {part for note in assumptions for part in note.split("; ")}
    scored = {part for note in notes for part in note.split("; ")} - assumed - {""}
    for message in sorted(scored):
        warnings.warn(message, UserWarning, stacklevel=3)
