"""Loading training data: carrisk record files, generic survival tables, and the public datasets of scikit-survival.

A table is read in *clinical mode* (the carrisk record schema, validated in full: a misspelled or missing column is
an error, never a reason to switch modes) unless the caller names an outcome column, which selects *generic mode*
(a time column, an event column, and covariates; known outcome columns are never covariates unless named).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from carrisk.features import FeatureSpec
from carrisk.schema import (
    EVENT_COLUMN,
    PREINFUSION_COLUMNS,
    TIME_COLUMN,
    RecordError,
    RecordProblem,
    read_records,
    survival_target,
    validate_records,
    validate_survival_table,
)
from carrisk.target import target_arrays

#: Public survival datasets shipped inside scikit-survival, with their outcome columns after loading.
PUBLIC_DATASETS = ("gbsg2", "whas500", "veterans", "aids", "flchain", "breast_cancer")


@dataclass
class SurvivalData:
    """A validated training table: raw records, the survival target, the feature spec and how it was read."""

    records: pd.DataFrame
    y: np.ndarray
    spec: FeatureSpec
    mode: str
    name: str = "data"

    @property
    def n_events(self) -> int:
        return int(self.y["event"].sum())


def load_survival_data(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    time_col: str | None = None,
    event_col: str | None = None,
    features: Sequence[str] | None = None,
    name: str | None = None,
) -> SurvivalData:
    """Read and validate a training table in clinical or generic mode.

    Parameters
    ----------
    source : path or DataFrame
        CSV/Parquet file or a DataFrame.
    time_col, event_col : str, optional
        Outcome columns. Naming either selects generic mode (the other defaults to ``time``/``event`` when
        present, else ``efs_days``/``efs_event``); without them the table must be carrisk records.
    features : sequence of str, optional
        Generic mode: the covariates to use (default: every other column except identifiers and known outcome
        or follow-up columns, each exclusion noted in ``spec.notes``).

    Raises
    ------
    RecordError
        Listing every invalid cell, or every missing record column (with the likely misspelling) in clinical
        mode.
    KeyError
        A named column is not in the table.
    ValueError
        ``features`` without an outcome column.
    """
    records = read_records(source)
    label = name or (str(source) if not isinstance(source, pd.DataFrame) else "data")
    if time_col is None and event_col is None:
        if features is not None:
            raise ValueError(
                "features apply to generic mode only; name the outcome columns too (--time-col and --event-col)"
            )
        missing = [c for c in PREINFUSION_COLUMNS if c not in records.columns]
        if len(missing) > len(PREINFUSION_COLUMNS) // 2:
            raise RecordError(
                [
                    RecordProblem(
                        None,
                        None,
                        None,
                        None,
                        f"the carrisk record columns (missing {len(missing)} of {len(PREINFUSION_COLUMNS)}: "
                        f"{', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); for any other survival "
                        "table choose generic mode by naming the outcome columns with --time-col and --event-col",
                    )
                ],
                label,
            )
        validate_records(records, outcomes="required", source=label)
        spec = FeatureSpec()
        return SurvivalData(records, survival_target(records, spec.time_col, spec.event_col), spec, "clinical", label)
    time_col = time_col or ("time" if "time" in records.columns else TIME_COLUMN)
    event_col = event_col or ("event" if "event" in records.columns else EVENT_COLUMN)
    for column in (time_col, event_col):
        if column not in records.columns:
            raise KeyError(
                f"{label}: no column {column!r}; name the outcome columns with --time-col/--event-col "
                f"(columns: {', '.join(map(str, records.columns))})"
            )
    validate_survival_table(records, time_col, event_col, source=label)
    spec = FeatureSpec.generic(records, time_col, event_col, features=features)
    return SurvivalData(records, survival_target(records, time_col, event_col), spec, "generic", label)


def load_public_dataset(name: str) -> pd.DataFrame:
    """A public survival dataset from scikit-survival as one table with ``time`` and ``event`` columns.

    Known pitfalls are handled here: flchain's ``chapter`` column (cause of death, filled in exactly when the
    patient died) leaks the outcome and is dropped; its 3 rows with time 0 are kept (every carrisk model accepts
    time 0). Categorical columns keep pandas' ``category`` dtype (their levels as text), so that
    :meth:`~carrisk.features.FeatureSpec.generic` one-hot encodes them even where the levels are digit codes
    (aids ``raceth``, flchain ``flc.grp``), as scikit-survival's own encoders do.
    """
    from sksurv import datasets

    loaders = {
        "gbsg2": datasets.load_gbsg2,
        "whas500": datasets.load_whas500,
        "veterans": datasets.load_veterans_lung_cancer,
        "aids": datasets.load_aids,
        "flchain": datasets.load_flchain,
        "breast_cancer": datasets.load_breast_cancer,
    }
    if name not in loaders:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(PUBLIC_DATASETS)}")
    X, y = loaders[name]()
    table = X.copy()
    if name == "flchain":
        table = table.drop(columns=["chapter"])
    for column in table.columns:
        if table[column].dtype == object:
            table[column] = table[column].astype("category")
    event, time = target_arrays(y)
    table["time"] = time
    table["event"] = event.astype(int)
    return table.reset_index(drop=True)
