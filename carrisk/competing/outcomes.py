"""The first event's cause, derived from the outcome columns of a carrisk record.

Every patient ends in exactly one of the states of :data:`CAUSES` (a first event of that cause at ``time_days``)
or is censored. The rules, in ``docs/records.md`` too:

=====================  ========================================================================================
cause                  outcome columns
=====================  ========================================================================================
``no_cr``              ``efs_event`` 1, ``day28_cr`` 0; or ``day28_cr`` blank with a death at ``efs_days`` < 28
                       (died before the response assessment: no CR by day 28, the study's EFS definition)
``cd19pos``            ``efs_event`` 1, ``day28_cr`` 1, ``relapse_phenotype`` CD19+
``cd19neg``            ... CD19-
``lineage_switch``     ... lineage switch
``unclassified``       ... unclassified
``death_in_remission`` ``efs_event`` 1, ``day28_cr`` 1, ``relapse_phenotype`` none or blank, ``death`` 1 and
                       ``os_days`` within :data:`SAME_DAY_TOLERANCE_DAYS` of ``efs_days``
censored               ``efs_event`` 0
=====================  ========================================================================================

Contradictions are errors that name the row, the patient and the column to fix (:class:`carrisk.schema.RecordError`):
a censored patient with a relapse phenotype, no CR by day 28 or a death at or before ``efs_days``; an event
without CR and with a relapse phenotype; an event in CR that is neither a relapse nor a death at ``efs_days``;
``os_days`` before ``efs_days``; a missing ``day28_cr`` for an event that is not an early death.

Consolidative transplant after CAR (optional ``hsct_after_car_days`` column, days from infusion, blank = none)
is handled as ``hsct_handling`` says: ``ignore`` (default, as Myers et al. 2022: recorded, not an event),
``censor`` (follow-up ends at the transplant) or ``competing`` (the transplant is a competing first event,
cause ``hsct``). A transplant only matters when it comes before the first event or censoring.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from carrisk import parsing
from carrisk.schema import ID_COLUMN, RecordError, RecordProblem, validate_records, with_file_lines

#: First-event causes, in the order used for codes (code = position + 1; 0 = censored).
CAUSES: tuple[str, ...] = (
    "no_cr",
    "cd19pos",
    "cd19neg",
    "lineage_switch",
    "unclassified",
    "death_in_remission",
)
#: The cause a consolidative transplant becomes with ``hsct_handling="competing"`` (appended after CAUSES).
HSCT_CAUSE = "hsct"
CENSORED = "censored"
CAUSE_LABELS = {
    "no_cr": "no CR by day 28",
    "cd19pos": "CD19-positive relapse",
    "cd19neg": "CD19-negative relapse",
    "lineage_switch": "lineage switch",
    "unclassified": "unclassified relapse",
    "death_in_remission": "death in remission",
    HSCT_CAUSE: "consolidative HSCT",
}
HSCT_COLUMN = "hsct_after_car_days"
HSCT_HANDLINGS = ("ignore", "censor", "competing")
#: A death recorded this close to ``efs_days`` is the EFS event itself (times are rounded to 0.1 day).
SAME_DAY_TOLERANCE_DAYS = 0.5
DAY28_DAYS = 28.0

_CAUSE_OF_PHENOTYPE = {
    "CD19+": "cd19pos",
    "CD19-": "cd19neg",
    "lineage switch": "lineage_switch",
    "unclassified": "unclassified",
}


def cause_names(hsct_handling: str = "ignore") -> tuple[str, ...]:
    """The causes an outcome table derived with ``hsct_handling`` can hold, in code order."""
    return (*CAUSES, HSCT_CAUSE) if hsct_handling == "competing" else CAUSES


def derive_first_event(records: pd.DataFrame, *, hsct_handling: str = "ignore") -> pd.DataFrame:
    """Each patient's first event and its cause (or censoring) from the record's outcome columns.

    Parameters
    ----------
    records : DataFrame
        Records with the outcome columns of ``docs/records.md`` (and optionally ``hsct_after_car_days``).
    hsct_handling : {"ignore", "censor", "competing"}, default "ignore"
        What a consolidative transplant before the first event does: nothing (the study's choice), end
        follow-up (censor), or count as a competing first event (cause ``hsct``).

    Returns
    -------
    DataFrame
        Same rows and order: ``patient_id``, ``time_days`` (first event or censoring), ``cause`` (one of
        :func:`cause_names` or ``"censored"``) and ``cause_code`` (0 = censored, else position in
        :func:`cause_names` + 1).

    Raises
    ------
    ValueError
        If ``hsct_handling`` is not one of the three choices.
    carrisk.schema.RecordError
        If an outcome cell is invalid or the outcome columns contradict each other; every problem is listed
        with its row, patient and the column to fix.
    """
    if hsct_handling not in HSCT_HANDLINGS:
        raise ValueError(f"hsct_handling must be one of {', '.join(HSCT_HANDLINGS)}; got {hsct_handling!r}.")
    frame = records.reset_index(drop=True)
    validate_records(frame, outcomes="required")
    ids = frame[ID_COLUMN].astype(str).to_numpy()
    problems: list[RecordProblem] = []
    times = np.empty(len(frame))
    causes = np.empty(len(frame), dtype=object)
    for position, row in enumerate(frame.itertuples(index=False)):
        outcome = _parse_outcome(row._asdict())
        time, cause, problem = _first_event(outcome)
        if problem is not None:
            column, value, expected = problem
            problems.append(RecordProblem(position + 1, ids[position], column, value, expected))
            continue
        times[position], causes[position] = time, cause
    if HSCT_COLUMN in frame.columns and hsct_handling != "ignore":
        hsct = _hsct_days(frame, ids, problems)
        before = np.isfinite(hsct) & (hsct < times)
        times = np.where(before, hsct, times)
        causes[before] = HSCT_CAUSE if hsct_handling == "competing" else CENSORED
    if problems:
        raise RecordError(with_file_lines(problems, records), "outcome columns")
    names = cause_names(hsct_handling)
    code = np.array([0 if c == CENSORED else names.index(c) + 1 for c in causes], dtype=int)
    return pd.DataFrame({ID_COLUMN: ids, "time_days": times, "cause": causes, "cause_code": code})


def _parse_outcome(row: dict[str, Any]) -> dict[str, Any]:
    phenotype = parsing.parse_relapse_phenotype(row["relapse_phenotype"])
    return {
        "efs_days": parsing.parse_number(row["efs_days"]),
        "efs_event": parsing.parse_binary(row["efs_event"]),
        "day28_cr": parsing.parse_binary(row["day28_cr"]),
        "phenotype": phenotype,
        "raw_phenotype": row["relapse_phenotype"],
        "death": parsing.parse_binary(row["death"]),
        "os_days": parsing.parse_number(row["os_days"]),
    }


def _first_event(o: dict[str, Any]) -> tuple[float, str, tuple[str, Any, str] | None]:
    """(time, cause, problem); ``problem`` is (column, value, what was expected) for a contradiction."""
    efs_days = float(o["efs_days"])
    relapse = o["phenotype"] in _CAUSE_OF_PHENOTYPE
    os_days, died = o["os_days"], o["death"] == 1
    if os_days is not None and os_days < efs_days - SAME_DAY_TOLERANCE_DAYS:
        return (
            efs_days,
            "",
            ("os_days", os_days, f"os_days >= efs_days ({efs_days:g}): death or last contact ends both"),
        )
    died_at_efs = died and os_days is not None and abs(os_days - efs_days) <= SAME_DAY_TOLERANCE_DAYS
    if o["efs_event"] == 0:
        if relapse:
            return (
                efs_days,
                "",
                (
                    "relapse_phenotype",
                    o["raw_phenotype"],
                    "none or blank when efs_event is 0 (a relapse is an EFS event)",
                ),
            )
        if o["day28_cr"] == 0:
            return efs_days, "", ("efs_event", 0, "1 when day28_cr is 0 (no CR by day 28 is an EFS event)")
        if died_at_efs:
            return (
                efs_days,
                "",
                ("efs_event", 0, f"1: death is recorded at os_days {os_days:g} = efs_days (death is an EFS event)"),
            )
        return efs_days, CENSORED, None
    if o["day28_cr"] is None:
        if died_at_efs and efs_days < DAY28_DAYS and not relapse:
            return efs_days, "no_cr", None
        return (
            efs_days,
            "",
            ("day28_cr", None, "0 or 1 for a patient with an EFS event (blank only for a death before day 28)"),
        )
    if o["day28_cr"] == 0:
        if relapse:
            return (
                efs_days,
                "",
                (
                    "relapse_phenotype",
                    o["raw_phenotype"],
                    "none or blank when day28_cr is 0 (relapse needs a remission)",
                ),
            )
        return efs_days, "no_cr", None
    if relapse:
        return efs_days, _CAUSE_OF_PHENOTYPE[o["phenotype"]], None
    if died_at_efs:
        return efs_days, "death_in_remission", None
    return (
        efs_days,
        "",
        (
            "relapse_phenotype",
            o["raw_phenotype"],
            "a phenotype (CD19+, CD19-, lineage switch, unclassified) for an EFS event in CR without a death at "
            "efs_days; write 'unclassified' if the phenotype is not known",
        ),
    )


def _hsct_days(frame: pd.DataFrame, ids: Sequence[str], problems: list[RecordProblem]) -> np.ndarray:
    values = np.full(len(frame), np.nan)
    for position, raw in enumerate(frame[HSCT_COLUMN]):
        try:
            number = parsing.parse_number(raw, minimum=0)
        except parsing.UnparseableValue:
            problems.append(RecordProblem(position + 1, ids[position], HSCT_COLUMN, raw, "days >= 0, blank if none"))
            continue
        if number is not None:
            values[position] = number
    return values


__all__ = [
    "CAUSES",
    "CAUSE_LABELS",
    "CENSORED",
    "HSCT_CAUSE",
    "HSCT_COLUMN",
    "HSCT_HANDLINGS",
    "cause_names",
    "derive_first_event",
]
