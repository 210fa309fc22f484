"""Tests for carrisk.competing.outcomes: the first event's cause from the record's outcome columns."""

from __future__ import annotations

import pandas as pd
import pytest

from carrisk.competing.outcomes import CAUSES, HSCT_COLUMN, cause_names, derive_first_event
from carrisk.schema import RecordError
from carrisk.simulate import simulate_cohort


def records_with(outcomes: list[dict[str, object]]) -> pd.DataFrame:
    """Valid pre-infusion columns (from a simulated cohort) with the given outcome cells."""
    base = simulate_cohort(n=len(outcomes), seed=0, missing_rate=0.0).records.astype(object)
    for position, cells in enumerate(outcomes):
        for column, value in cells.items():
            base.loc[position, column] = value
    return base


CENSORED = {"efs_days": 400, "efs_event": 0, "day28_cr": 1, "relapse_phenotype": "none", "death": 0, "os_days": 400}
NO_CR = {"efs_days": 28, "efs_event": 1, "day28_cr": 0, "relapse_phenotype": "none", "death": 1, "os_days": 200}
CD19NEG = {
    "efs_days": 150,
    "efs_event": 1,
    "day28_cr": 1,
    "relapse_phenotype": "CD19 negative",
    "death": 0,
    "os_days": 300,
}
DEATH_IN_CR = {"efs_days": 90, "efs_event": 1, "day28_cr": 1, "relapse_phenotype": "", "death": 1, "os_days": 90}
EARLY_DEATH = {"efs_days": 12, "efs_event": 1, "day28_cr": "", "relapse_phenotype": "", "death": 1, "os_days": 12}


def test_each_rule_gives_its_cause_and_time():
    rows = [CENSORED, NO_CR, CD19NEG, DEATH_IN_CR, EARLY_DEATH, {**CD19NEG, "relapse_phenotype": "lineage switch"}]
    derived = derive_first_event(records_with(rows))
    assert derived["cause"].tolist() == [
        "censored",
        "no_cr",
        "cd19neg",
        "death_in_remission",
        "no_cr",
        "lineage_switch",
    ]
    assert derived["time_days"].tolist() == [400, 28, 150, 90, 12, 150]
    assert derived["cause_code"].tolist() == [0, 1, 3, 6, 1, 4]


@pytest.mark.parametrize(
    ("cells", "column"),
    [
        ({**CENSORED, "relapse_phenotype": "CD19+"}, "relapse_phenotype"),
        ({**CENSORED, "day28_cr": 0}, "efs_event"),
        ({**CENSORED, "death": 1}, "efs_event"),
        ({**NO_CR, "relapse_phenotype": "CD19-"}, "relapse_phenotype"),
        ({**DEATH_IN_CR, "death": 0}, "relapse_phenotype"),
        ({**DEATH_IN_CR, "os_days": 300}, "relapse_phenotype"),
        ({**CD19NEG, "os_days": 100}, "os_days"),
        ({**CD19NEG, "day28_cr": ""}, "day28_cr"),
    ],
)
def test_contradictory_outcomes_name_row_patient_and_column(cells, column):
    records = records_with([CENSORED, cells])
    with pytest.raises(RecordError) as err:
        derive_first_event(records)
    (problem,) = err.value.problems
    assert (problem.row, problem.column, problem.patient_id) == (2, column, records.loc[1, "patient_id"])


def test_every_simulated_patient_gets_a_cause_consistent_with_efs():
    records = simulate_cohort(n=600, seed=4).records
    derived = derive_first_event(records)
    events = records["efs_event"].astype(int).to_numpy() == 1
    assert ((derived["cause"] != "censored").to_numpy() == events).all()
    assert (derived["time_days"].to_numpy() == records["efs_days"].astype(float).to_numpy()).all()
    assert set(derived["cause"]) <= {*CAUSES, "censored"}


def test_transplant_handling_ignore_censor_competing():
    records = records_with([CD19NEG, CENSORED, CD19NEG])
    records[HSCT_COLUMN] = [100, 50, ""]
    ignore = derive_first_event(records)
    assert ignore["cause"].tolist() == ["cd19neg", "censored", "cd19neg"]
    censor = derive_first_event(records, hsct_handling="censor")
    assert censor["cause"].tolist() == ["censored", "censored", "cd19neg"]
    assert censor["time_days"].tolist() == [100, 50, 150]
    competing = derive_first_event(records, hsct_handling="competing")
    assert competing["cause"].tolist() == ["hsct", "hsct", "cd19neg"]
    assert competing["cause_code"].tolist() == [len(CAUSES) + 1, len(CAUSES) + 1, 3]
    assert cause_names("competing")[-1] == "hsct"


def test_bad_transplant_day_and_handling_are_clear_errors():
    records = records_with([CD19NEG])
    records[HSCT_COLUMN] = ["soon"]
    with pytest.raises(RecordError, match=HSCT_COLUMN):
        derive_first_event(records, hsct_handling="censor")
    with pytest.raises(ValueError, match="hsct_handling must be one of"):
        derive_first_event(records, hsct_handling="drop")
