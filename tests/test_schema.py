"""The record schema reports every problem at once, with row, patient, column, value and expectation."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from carrisk.cli import app
from carrisk.schema import RECORD_COLUMNS, RecordError, read_records, survival_target, validate_records


def test_example_records_are_valid_and_complete(example_records):
    assert list(example_records.columns) == list(RECORD_COLUMNS)
    assert 10 <= len(example_records) <= 20
    validate_records(example_records, outcomes="required")


def test_every_problem_is_reported_in_one_call(example_records):
    bad = example_records.copy()
    bad.loc[1, "patient_id"] = bad.loc[0, "patient_id"]
    bad.loc[2, "age_years"] = "45"
    bad.loc[3, "marrow_blasts_pct"] = "150%"
    bad.loc[4, "efs_days"] = "-3"
    bad.loc[5, "efs_event"] = "2"
    bad.loc[6, "cd19_expression"] = "purple"
    bad = bad.drop(columns=["sex"])
    with pytest.raises(RecordError) as info:
        validate_records(bad, outcomes="required")
    found = {(p.row, p.column) for p in info.value.problems}
    assert {
        (None, "sex"),
        (1, "patient_id"),
        (2, "patient_id"),
        (3, "age_years"),
        (4, "marrow_blasts_pct"),
        (5, "efs_days"),
        (6, "efs_event"),
        (7, "cd19_expression"),
    } <= found
    problem = next(p for p in info.value.problems if p.column == "cd19_expression")
    assert problem.patient_id == "EX-07" and problem.value == "purple" and "dim" in problem.expected
    assert "purple" in str(info.value)


def test_outcomes_optional_at_prediction(example_records):
    validate_records(example_records.drop(columns=["efs_days", "efs_event"]), outcomes="optional")
    with pytest.raises(RecordError, match="efs_days"):
        validate_records(example_records.drop(columns=["efs_days"]), outcomes="required")


def test_missing_required_value_is_an_error(example_records):
    bad = example_records.copy()
    bad.loc[0, "efs_days"] = np.nan
    with pytest.raises(RecordError, match="must not be missing"):
        validate_records(bad, outcomes="required")


def test_response_without_exposure_is_a_contradiction(example_records):
    bad = example_records.copy()
    bad.loc[0, "blina_response"] = "CR"  # EX-01 is blina_exposed = no
    with pytest.raises(RecordError, match="blina_exposed"):
        validate_records(bad)


def test_survival_target_from_records(example_records):
    y = survival_target(example_records)
    assert y.dtype.names == ("event", "time")
    assert y["time"][0] == 730 and not y["event"][0]
    assert y["event"].sum() == (example_records["efs_event"] == "1").sum()


def test_read_records_keeps_text(tmp_path):
    path = tmp_path / "r.csv"
    pd.DataFrame({"patient_id": ["007"], "marrow_blasts_pct": ["12%"]}).to_csv(path, index=False)
    frame = read_records(path)
    assert frame.loc[0, "patient_id"] == "007" and frame.loc[0, "marrow_blasts_pct"] == "12%"


def test_validate_cli_exit_codes(tmp_path, example_records):
    runner = CliRunner()
    good = tmp_path / "good.csv"
    example_records.to_csv(good, index=False)
    result = runner.invoke(app, ["validate", str(good)])
    assert result.exit_code == 0 and "valid, 15 records" in result.output
    bad = tmp_path / "bad.csv"
    broken = example_records.copy()
    broken.loc[2, "age_years"] = "45"
    broken.loc[4, "cns_status"] = "CNS9"
    broken.to_csv(bad, index=False)
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert "age_years" in result.output and "CNS9" in result.output
    result = runner.invoke(app, ["validate", str(tmp_path / "missing.csv")])
    assert result.exit_code == 2
