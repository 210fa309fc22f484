"""Feature builders: messy clinical records -> a numeric design matrix.

Each builder is a scikit-learn transformer over the raw record columns it needs. :class:`ClinicalFeatures`,
configured by a :class:`FeatureSpec`, combines them into the full design matrix and is the one default that every
model pipeline uses. Categorical variables are one-hot encoded against a reference level (the first level of the
variable's ordering seen in training); missing categorical cells form their own ``unknown`` level, missing numbers
stay NaN and are imputed later, inside the cross-validation fold. Unparseable cells raise :class:`RecordError`
naming the row, patient and column (or, with ``on_unknown="unknown"``, become missing with a warning).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from carrisk import parsing
from carrisk.schema import ID_COLUMN, OUTCOME_COLUMNS, PREINFUSION_COLUMNS, RecordError, RecordProblem

#: Floor added before taking log10 of the marrow blast percentage: the flow-MRD detection limit (0.01 %).
LOG_BLASTS_FLOOR_PCT = parsing.MRD_DETECTION_LIMIT_PCT
#: Blast percentage a marrow code stands for: the geometric middle of its range.
MARROW_CODE_BLASTS_PCT = {"M2": math.sqrt(5.0 * 25.0), "M3": math.sqrt(25.0 * 100.0)}


class _Cells:
    """Parse record cells while collecting every problem with its row, patient and column."""

    def __init__(self, records: pd.DataFrame, on_unknown: str) -> None:
        if on_unknown not in ("raise", "unknown"):
            raise ValueError(f"on_unknown must be 'raise' or 'unknown', got {on_unknown!r}")
        self.records = records
        self.on_unknown = on_unknown
        self.problems: list[RecordProblem] = []
        self.ids = records[ID_COLUMN].tolist() if ID_COLUMN in records.columns else [None] * len(records)

    def column(self, name: str) -> list[Any]:
        if name not in self.records.columns:
            raise KeyError(f"column {name!r} is required by the feature builders but is not in the records")
        return self.records[name].tolist()

    def parse(self, parser: Callable[..., Any], *columns: str, blame: str | None = None) -> list[Any]:
        """Apply ``parser`` row by row to the given columns; a failing cell yields None and a recorded problem."""
        values = [self.column(c) for c in columns]
        out = []
        for position, cells in enumerate(zip(*values)):
            try:
                out.append(parser(*cells))
            except parsing.UnparseableValue as err:
                column = blame or columns[0]
                patient = self.ids[position]
                patient = None if parsing.is_missing(patient) else str(patient)
                shown = cells[columns.index(column)] if column in columns else cells[0]
                self.problems.append(RecordProblem(position + 1, patient, column, shown, str(err)))
                out.append(None)
        return out

    def finish(self, builder: str) -> None:
        if not self.problems:
            return
        error = RecordError(self.problems, source=f"records ({builder})")
        if self.on_unknown == "raise":
            raise error
        warnings.warn(f"treated as missing/unknown: {error}", UserWarning, stacklevel=3)


def _log_blasts(pct: float | None) -> float:
    return math.nan if pct is None else math.log10(pct + LOG_BLASTS_FLOOR_PCT)


class _RecordTransformer(TransformerMixin, BaseEstimator):
    """Base for builders: subclasses define ``_columns(records) -> dict[name, list]`` and ``_categorical``."""

    on_unknown: str
    #: Output name -> ordered levels (first = preferred reference) for categorical outputs.
    _levels: dict[str, Sequence[str]] = {}

    def _columns(self, cells: _Cells) -> dict[str, list[Any]]:
        raise NotImplementedError

    def _canonical(self, records: pd.DataFrame) -> dict[str, list[Any]]:
        if not isinstance(records, pd.DataFrame):
            raise TypeError(f"{type(self).__name__} expects a pandas DataFrame of records, got {type(records)}")
        cells = _Cells(records.reset_index(drop=True), self.on_unknown)
        columns = self._columns(cells)
        cells.finish(type(self).__name__)
        return columns

    def fit(self, X: pd.DataFrame, y: Any = None) -> _RecordTransformer:
        """Learn which categorical levels occur (the first in clinical order becomes the reference)."""
        canonical = self._canonical(X)
        self.categories_: dict[str, list[str]] = {}
        for name, levels in self._levels.items():
            seen = {v for v in canonical[name] if v is not None}
            unknown_levels = sorted(seen - set(levels))
            self.categories_[name] = [lv for lv in levels if lv in seen] + unknown_levels
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(X.columns)
        self.output_names_ = self._output_names(canonical)
        return self

    def _output_names(self, canonical: dict[str, list[Any]]) -> list[str]:
        names = []
        for name in canonical:
            if name in self._levels:
                names += [f"{name}_{level}" for level in self.categories_[name][1:]]
            else:
                names.append(name)
        return names

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Encode records as a float matrix (one-hot for categories, NaN for missing numbers)."""
        check_is_fitted(self, "categories_")
        canonical = self._canonical(X)
        blocks = []
        for name, values in canonical.items():
            if name in self._levels:
                levels = self.categories_[name]
                unseen = sorted({v for v in values if v is not None and v not in levels})
                if unseen:
                    warnings.warn(
                        f"{name}: level(s) {unseen} were not seen in training and are encoded as the reference "
                        f"level {levels[0] if levels else None!r}",
                        UserWarning,
                        stacklevel=2,
                    )
                for level in levels[1:]:
                    blocks.append([1.0 if v == level else 0.0 for v in values])
            else:
                blocks.append([math.nan if v is None else float(v) for v in values])
        return np.array(blocks, dtype=float).T.reshape(len(X), len(blocks))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the encoded columns."""
        check_is_fitted(self, "categories_")
        return np.asarray(self.output_names_, dtype=object)

    def categorize(self, records: pd.DataFrame) -> pd.DataFrame:
        """The canonical (human-readable) value of each variable, one row per record, before encoding."""
        canonical = self._canonical(records)
        return pd.DataFrame(canonical, index=records.index)


class BlinatumomabStatus(_RecordTransformer):
    """Prior blinatumomab: ``naive`` (reference), ``responder``, ``nonresponder``, ``exposed_unknown``.

    From ``blina_exposed`` and ``blina_response``: responder = CR/CRi including MRD-level response to the most
    recent course; nonresponder = no CR (PR, NR, refractory, PD, SD); exposed without an evaluable response =
    ``exposed_unknown``; exposure not recorded = ``unknown``.
    """

    _levels = {"blina_status": parsing.BLINA_STATUSES}

    def __init__(self, on_unknown: str = "raise") -> None:
        self.on_unknown = on_unknown

    def _columns(self, cells: _Cells) -> dict[str, list[Any]]:
        exposed = cells.parse(parsing.parse_yes_no, "blina_exposed")
        response = cells.parse(parsing.parse_blina_response, "blina_response")
        raw_exposed = cells.column("blina_exposed")
        status = []
        for position, (flag, answer) in enumerate(zip(exposed, response)):
            if flag is False and answer is not None:
                cells.problems.append(
                    RecordProblem(
                        position + 1,
                        cells.ids[position],
                        "blina_response",
                        answer,
                        f"no response when blina_exposed is {raw_exposed[position]!r}",
                    )
                )
                status.append("unknown")
            elif flag is False:
                status.append("naive")
            elif answer is not None:
                status.append(answer)
            else:
                status.append("exposed_unknown" if flag else "unknown")
        return {"blina_status": status}


class DiseaseBurden(_RecordTransformer):
    """Pre-infusion disease burden: categories and the continuous marrow blast percentage on a log scale.

    ``high`` = >= 5 % marrow blasts (M2/M3) or CNS3 or non-CNS extramedullary disease; otherwise
    ``low_mrd_positive`` (detectable, < 5 %), ``undetectable`` (reference), ``low_mrd_unknown`` (M1 marrow code),
    ``unknown`` (no marrow result). ``marrow_blasts_log10`` = log10(blasts % + 0.01); a marrow code stands for
    the geometric middle of its range (M2, 5-25 % -> 11.2 %; M3, 25-100 % -> 50 %), M1 (< 5 %, spanning several
    MRD decades) and missing cells stay NaN and are imputed inside the fold.
    """

    _levels = {"disease_burden": ("undetectable", "low_mrd_positive", "low_mrd_unknown", "high", "unknown")}

    def __init__(self, on_unknown: str = "raise") -> None:
        self.on_unknown = on_unknown

    def _columns(self, cells: _Cells) -> dict[str, list[Any]]:
        marrow = cells.parse(parsing.parse_marrow_blasts, "marrow_blasts_pct")
        cns = cells.parse(parsing.parse_cns_status, "cns_status")
        emd = cells.parse(parsing.parse_yes_no, "extramedullary_disease")
        burden = []
        for parsed, cns_level, extramedullary in zip(marrow, cns, emd):
            marrow_level = parsed[1] if parsed else None
            high = marrow_level == "high" or cns_level == "CNS3" or extramedullary is True
            burden.append("high" if high else (marrow_level or "unknown"))
        raw = cells.column("marrow_blasts_pct")
        log_blasts = [
            _log_blasts(p[0] if p and p[0] is not None else MARROW_CODE_BLASTS_PCT.get(str(v).strip().upper()))
            for p, v in zip(marrow, raw)
        ]
        return {
            "disease_burden": burden,
            "marrow_blasts_log10": [None if math.isnan(v) else v for v in log_blasts],
        }


class CD19Expression(_RecordTransformer):
    """Pre-infusion CD19 by flow cytometry: bright (reference) / dim / partial / negative / unknown.

    With ``grouping="published"`` (default) dim and partial are merged into the published risk group
    ``dim_or_partial``; ``grouping="levels"`` keeps all four levels. The flag ``cd19_dim_or_partial`` is also
    available from :meth:`categorize`.
    """

    def __init__(self, grouping: str = "published", on_unknown: str = "raise") -> None:
        self.grouping = grouping
        self.on_unknown = on_unknown

    @property
    def _levels(self) -> dict[str, Sequence[str]]:  # type: ignore[override]
        if self.grouping == "levels":
            return {"cd19": ("bright", "dim", "partial", "negative", "unknown")}
        return {"cd19": ("bright", "dim_or_partial", "negative", "unknown")}

    def _columns(self, cells: _Cells) -> dict[str, list[Any]]:
        if self.grouping not in ("published", "levels"):
            raise ValueError(f"grouping must be 'published' or 'levels', got {self.grouping!r}")
        levels = cells.parse(parsing.parse_cd19, "cd19_expression")
        if self.grouping == "published":
            levels = ["dim_or_partial" if v in ("dim", "partial") else v for v in levels]
        return {"cd19": [v or "unknown" for v in levels]}


class KMT2ARearrangement(_RecordTransformer):
    """KMT2A (MLL) rearrangement: not_rearranged (reference) / rearranged / not_tested / unknown.

    Read from ``kmt2a_status``; when that is blank, from the ``cytogenetics`` text (t(4;11)(q21;q23), KMT2A-AFF1,
    KMT2A::MLLT1, MLL-r, 11q23 rearranged, ...). "Not tested" stays distinct from a negative test.
    """

    _levels = {"kmt2a": parsing.KMT2A_LEVELS[1:2] + parsing.KMT2A_LEVELS[:1] + parsing.KMT2A_LEVELS[2:]}

    def __init__(self, on_unknown: str = "raise") -> None:
        self.on_unknown = on_unknown

    def _columns(self, cells: _Cells) -> dict[str, list[Any]]:
        status = cells.parse(parsing.parse_kmt2a, "kmt2a_status", "cytogenetics", blame="kmt2a_status")
        return {"kmt2a": [v or "unknown" for v in status]}


class PriorTransplant(_RecordTransformer):
    """Prior allogeneic transplant: any (0/1), count, and months since the last one (NaN when none)."""

    _levels: dict[str, Sequence[str]] = {}

    def __init__(self, on_unknown: str = "raise") -> None:
        self.on_unknown = on_unknown

    def _columns(self, cells: _Cells) -> dict[str, list[Any]]:
        count = cells.parse(parsing.parse_count, "prior_hsct_count")
        months = cells.parse(lambda v: parsing.parse_number(v, minimum=0), "months_since_last_hsct")
        any_hsct = [None if c is None else float(c > 0) for c in count]
        months = [m if c != 0 else None for c, m in zip(count, months)]
        return {"prior_hsct_any": any_hsct, "prior_hsct_count": count, "months_since_last_hsct": months}


_YES_NO_COVARIATES = ("down_syndrome", "prior_inotuzumab")
_COVARIATE_LEVELS: dict[str, Sequence[str]] = {
    "sex": ("M", "F", "unknown"),
    "car_product": (*parsing.CAR_PRODUCTS, "unknown"),
    "cns_status": (*parsing.CNS_LEVELS, "unknown"),
}


class Covariates(_RecordTransformer):
    """The usual covariates plus any extra columns named in a feature spec.

    Clinical covariates (when ``clinical=True``): age, sex, CAR product (NCI's is the only CD28-costimulated
    construct; the others are 4-1BB), prior relapses, CNS status, Down syndrome, prior inotuzumab.
    ``numeric`` columns are parsed as numbers; ``categorical`` columns are one-hot encoded on the levels seen
    in training (the first level in sorted order is the reference; missing -> ``unknown``).
    """

    def __init__(
        self,
        clinical: bool = True,
        numeric: Sequence[str] = (),
        categorical: Sequence[str] = (),
        on_unknown: str = "raise",
    ) -> None:
        self.clinical = clinical
        self.numeric = numeric
        self.categorical = categorical
        self.on_unknown = on_unknown

    @property
    def _levels(self) -> dict[str, Sequence[str]]:  # type: ignore[override]
        levels = dict(_COVARIATE_LEVELS) if self.clinical else {}
        levels.update({c: () for c in self.categorical})
        return levels

    def _columns(self, cells: _Cells) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        if self.clinical:
            out["age_years"] = cells.parse(lambda v: parsing.parse_number(v, minimum=0, maximum=40), "age_years")
            out["sex"] = [v or "unknown" for v in cells.parse(parsing.parse_sex, "sex")]
            out["car_product"] = [v or "unknown" for v in cells.parse(parsing.parse_car_product, "car_product")]
            out["prior_relapses"] = cells.parse(parsing.parse_count, "prior_relapses")
            out["cns_status"] = [v or "unknown" for v in cells.parse(parsing.parse_cns_status, "cns_status")]
            for name in _YES_NO_COVARIATES:
                flags = cells.parse(parsing.parse_yes_no, name)
                out[name] = [None if f is None else float(f) for f in flags]
        for name in self.numeric:
            out[name] = cells.parse(lambda v: parsing.parse_number(v, allow_bool=True), name)
        for name in self.categorical:
            out[name] = ["unknown" if parsing.is_missing(v) else str(v).strip() for v in cells.column(name)]
        return out


#: Columns that hold an outcome or follow-up in carrisk records and common survival tables.
KNOWN_OUTCOME_COLUMNS = frozenset(
    {*OUTCOME_COLUMNS, "time", "event", "status", "fstat", "lenfol", "futime", "fustat", "vital_status", "cause"}
)
#: Name tokens (split at ``_``, ``.``, ``-``, spaces) that mark an outcome or follow-up column.
_OUTCOME_TOKENS = frozenset(
    {
        "os",
        "efs",
        "pfs",
        "rfs",
        "dfs",
        "death",
        "died",
        "dead",
        "deceased",
        "relapse",
        "recurrence",
        "progression",
        "censor",
        "censored",
        "censoring",
        "followup",
        "fu",
        "survival",
        "survived",
        "vital",
        "outcome",
        "event",
        "events",
    }
)


def looks_like_outcome(column: Any) -> bool:
    """Whether a column name marks an outcome or follow-up (``os_days``, ``death``, ``day28_cr``, ``time_to_relapse``).

    Used by generic mode so that a table's other outcomes never become covariates silently: the known outcome
    columns of the record schema and common survival tables, and any name with an outcome token (``os``,
    ``efs``, ``death``, ``relapse``, ``censor``, ``followup``, ``survival``, ``event``...). ``prior_relapses``
    (a pre-infusion count) has no such token and is kept.
    """
    name = str(column).strip().lower()
    tokens = set(re.split(r"[^a-z0-9]+", name))
    return name in KNOWN_OUTCOME_COLUMNS or bool(tokens & _OUTCOME_TOKENS)


@dataclass(frozen=True)
class FeatureSpec:
    """What goes into the design matrix, and which columns hold the outcome.

    Parameters
    ----------
    clinical : bool
        Use the clinical builders of the carrisk record schema (blinatumomab, burden, CD19, KMT2A, transplant,
        covariates). False for a generic survival table.
    numeric, categorical : tuple of str
        Extra columns: numbers, and categories to one-hot encode.
    time_col, event_col : str
        Outcome columns (days, and 1 = event / 0 = censored).
    id_col : str or None
        Identifier column, never a feature.
    cd19_grouping : {"published", "levels"}
        Dim and partial merged (the published risk group) or kept apart.
    """

    clinical: bool = True
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    time_col: str = "efs_days"
    event_col: str = "efs_event"
    id_col: str | None = ID_COLUMN
    cd19_grouping: str = "published"
    notes: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def generic(
        cls,
        table: pd.DataFrame,
        time_col: str,
        event_col: str,
        features: Sequence[str] | None = None,
        id_col: str | None = None,
        max_levels: int = 50,
    ) -> FeatureSpec:
        """Infer a spec for any survival table: numeric columns as numbers, text columns as categories.

        A column with pandas' ``category`` dtype is a category even when its levels are digits (e.g. a race
        code 1-5), as scikit-survival's bundled datasets mark them. A CSV has no dtypes: there, name such a
        column in ``features`` with the suffix ``:category`` (``"raceth:category"``) to one-hot encode it.

        Without ``features``, every column other than the time, event and id columns is a covariate, except a
        column that looks like an identifier (text, unique on every row, or named ``id``/``*_id``/``pid``) or like
        an outcome or follow-up column (see :func:`looks_like_outcome`): those are excluded with a note in
        ``notes``, and used only when named in ``features``.
        """
        for column in (time_col, event_col):
            if column not in table.columns:
                raise KeyError(f"column {column!r} not found; available: {list(table.columns)}")
        notes: list[str] = []
        forced = set()
        if features is not None:
            features = [str(f).strip() for f in features]
            forced = {f.removesuffix(":category") for f in features if f.endswith(":category")}
            features = [f.removesuffix(":category") for f in features]
        candidates = (
            list(features)
            if features is not None
            else [c for c in table.columns if c not in (time_col, event_col, id_col)]
        )
        missing = [c for c in candidates if c not in table.columns]
        if missing:
            raise KeyError(f"feature column(s) {missing} not found; available: {list(table.columns)}")
        numeric, categorical = [], []
        for column in candidates:
            values = table[column]
            as_number = pd.to_numeric(values.replace("", np.nan), errors="coerce")
            text_share = float((as_number.isna() & values.notna() & (values.astype(str).str.strip() != "")).mean())
            looks_like_id = str(column).lower() in ("id", "pid") or str(column).lower().endswith("_id")
            if features is None and looks_like_outcome(column):
                notes.append(
                    f"column {column!r} looks like an outcome or follow-up column and is not used as a feature "
                    "(name it in --features to use it)"
                )
                continue
            if features is None and (looks_like_id or (text_share > 0 and values.nunique() == len(values) > 20)):
                notes.append(f"column {column!r} looks like an identifier and is not used as a feature")
                id_col = id_col or column
                continue
            if column in forced or isinstance(values.dtype, pd.CategoricalDtype):
                categorical.append(str(column))
            elif text_share == 0:
                numeric.append(str(column))
            elif values.nunique() > max_levels:
                raise ValueError(
                    f"column {column!r} is text with {values.nunique()} distinct values (more than {max_levels}); "
                    "name the features to use with --features, or drop it"
                )
            else:
                categorical.append(str(column))
        return cls(
            clinical=False,
            numeric=tuple(numeric),
            categorical=tuple(categorical),
            time_col=time_col,
            event_col=event_col,
            id_col=id_col,
            notes=tuple(notes),
        )

    @property
    def mode(self) -> str:
        """``clinical`` (the carrisk record schema) or ``generic`` (any survival table)."""
        return "clinical" if self.clinical else "generic"

    def describe(self) -> dict[str, Any]:
        """What a result records about its features: the mode, outcome columns and the exact raw feature list."""
        return {
            "mode": self.mode,
            "time_col": self.time_col,
            "event_col": self.event_col,
            "id_col": self.id_col,
            "features": list(self.input_columns),
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "notes": list(self.notes),
        }

    @property
    def input_columns(self) -> tuple[str, ...]:
        """Raw columns the builders read."""
        clinical = tuple(c for c in PREINFUSION_COLUMNS if c != ID_COLUMN)
        return (clinical if self.clinical else ()) + self.numeric + self.categorical

    def builders(self, on_unknown: str = "raise") -> list[tuple[str, _RecordTransformer]]:
        """The (name, transformer) list that builds the design matrix."""
        steps: list[tuple[str, _RecordTransformer]] = []
        if self.clinical:
            steps += [
                ("blina", BlinatumomabStatus(on_unknown=on_unknown)),
                ("burden", DiseaseBurden(on_unknown=on_unknown)),
                ("cd19", CD19Expression(grouping=self.cd19_grouping, on_unknown=on_unknown)),
                ("kmt2a", KMT2ARearrangement(on_unknown=on_unknown)),
                ("hsct", PriorTransplant(on_unknown=on_unknown)),
            ]
        steps.append(("covariates", Covariates(self.clinical, self.numeric, self.categorical, on_unknown=on_unknown)))
        return steps


DEFAULT_SPEC = FeatureSpec()

#: Encoded column prefix -> the clinical variable it belongs to (for explanations).
_VARIABLE_OF_OUTPUT = {
    "blina_status": "blina_status",
    "disease_burden": "disease_burden",
    "marrow_blasts_log10": "marrow_blasts_pct",
    "cd19": "cd19_expression",
    "kmt2a": "kmt2a",
    "prior_hsct_any": "prior_hsct",
    "prior_hsct_count": "prior_hsct",
    "months_since_last_hsct": "prior_hsct",
    "car_product": "car_product",
}


class ClinicalFeatures(TransformerMixin, BaseEstimator):
    """Build the full design matrix from raw records, as configured by a :class:`FeatureSpec`.

    Parameters
    ----------
    spec : FeatureSpec or None
        What to build; None means the default clinical spec.
    on_unknown : {"raise", "unknown"}
        Unparseable cells raise a :class:`RecordError` listing every one of them (row, patient_id, column,
        value), or become missing/``unknown`` with a warning listing them.

    Attributes
    ----------
    builders_ : list of (name, transformer)
        The fitted builders.
    feature_groups_ : dict
        Encoded column -> clinical variable it came from (one-hot columns of one variable share a group).
    """

    def __init__(self, spec: FeatureSpec | None = None, on_unknown: str = "raise") -> None:
        self.spec = spec
        self.on_unknown = on_unknown

    def _spec(self) -> FeatureSpec:
        return self.spec if self.spec is not None else DEFAULT_SPEC

    def _run(self, X: pd.DataFrame, fit: bool) -> list[np.ndarray]:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"ClinicalFeatures expects a pandas DataFrame of records, got {type(X).__name__}")
        missing = [c for c in self._spec().input_columns if c not in X.columns]
        if missing:
            raise RecordError(
                [RecordProblem(None, None, c, None, "this column, used by the feature spec") for c in missing]
            )
        problems: list[RecordProblem] = []
        blocks = []
        for _, builder in self.builders_:
            try:
                if fit:
                    builder.fit(X)
                blocks.append(builder.transform(X))
            except RecordError as err:
                problems += err.problems
        if problems:
            problems.sort(key=lambda p: (p.row or 0, p.column or ""))
            raise RecordError(problems, source="records")
        return blocks

    def fit(self, X: pd.DataFrame, y: Any = None) -> ClinicalFeatures:
        """Fit every builder on the training records."""
        self.builders_ = self._spec().builders(self.on_unknown)
        self._run(X, fit=True)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(X.columns)
        names = self.get_feature_names_out()
        self.feature_groups_ = {name: self._group_of(name) for name in names}
        return self

    def _group_of(self, output: str) -> str:
        for prefix, variable in _VARIABLE_OF_OUTPUT.items():
            if self._spec().clinical and (output == prefix or output.startswith(prefix + "_")):
                return variable
        for _, builder in self.builders_:
            for name in getattr(builder, "categories_", {}):
                if output.startswith(f"{name}_") and output[len(name) + 1 :] in builder.categories_[name]:
                    return name
        return output

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Encode records into the design matrix (float; NaN only where a number is missing)."""
        check_is_fitted(self, "builders_")
        blocks = self._run(X, fit=False)
        return np.hstack(blocks) if blocks else np.empty((len(X), 0))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the design-matrix columns."""
        check_is_fitted(self, "builders_")
        return np.concatenate([b.get_feature_names_out() for _, b in self.builders_]).astype(object)

    def categorize(self, X: pd.DataFrame) -> pd.DataFrame:
        """Canonical, human-readable value of every clinical variable (used in tables and explanations)."""
        builders = self.builders_ if hasattr(self, "builders_") else self._spec().builders(self.on_unknown)
        return pd.concat([b.categorize(X) for _, b in builders], axis=1)


def build_design_matrix(
    records: pd.DataFrame, spec: FeatureSpec | None = None, on_unknown: str = "raise"
) -> pd.DataFrame:
    """Fit :class:`ClinicalFeatures` on ``records`` and return the encoded design matrix as a DataFrame."""
    return ClinicalFeatures(spec, on_unknown).set_output(transform="pandas").fit_transform(records)
