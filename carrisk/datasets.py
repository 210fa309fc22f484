"""Loading training data: carrisk record files, generic survival tables, and the public datasets of scikit-survival.

A table is read in *clinical mode* when it has every column of the carrisk record schema, and in *generic mode*
(a time column, an event column, and covariates) otherwise or when the caller names the time column.
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
        Outcome columns. Naming ``time_col`` (or a table without the record schema's columns) selects generic
        mode; defaults there are ``time`` and ``event``.
    features : sequence of str, optional
        Generic mode: the covariates to use (default: every other column, identifiers excluded with a note).

    Raises
    ------
    RecordError
        Listing every invalid cell.
    """
    records = read_records(source)
    label = name or (str(source) if not isinstance(source, pd.DataFrame) else "data")
    clinical = time_col is None and features is None and set(PREINFUSION_COLUMNS) <= set(records.columns)
    if clinical:
        validate_records(records, outcomes="required", source=label)
        spec = FeatureSpec(event_col=event_col or EVENT_COLUMN)
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
