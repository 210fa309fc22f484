"""Tests for carrisk.competing.study and its place in ``carrisk reproduce``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from matplotlib.figure import Figure

from carrisk.competing import aalen_johansen, derive_first_event, gray_test
from carrisk.competing.outcomes import CAUSES
from carrisk.competing.study import competing_risks_analysis
from carrisk.features import BlinatumomabStatus
from carrisk.reproduce import reproduce_study
from carrisk.simulate import simulate_cohort


@pytest.fixture(scope="module")
def records():
    return simulate_cohort(n=600, seed=5).records


@pytest.fixture(scope="module")
def analysis(records):
    return competing_risks_analysis(records)


def test_causes_add_up_to_one_minus_kaplan_meier_efs(records, analysis):
    efs = records["efs_days"].astype(float)
    event = records["efs_event"].astype(int)
    km = KaplanMeierFitter().fit(efs, event)
    total = analysis.cif.xs(("all", "all"), level=["grouping", "group"])["cif_12mo"].sum()
    assert total == pytest.approx(1 - float(km.survival_function_at_times(365.25).iloc[0]), abs=1e-12)


def test_group_rows_are_the_aalen_johansen_of_that_group(records, analysis):
    status = BlinatumomabStatus().fit(records).categorize(records)["blina_status"].to_numpy()
    events = derive_first_event(records)
    mask = status == "nonresponder"
    direct = aalen_johansen(events["time_days"][mask], events["cause_code"][mask], CAUSES).at([182.625])
    row = analysis.cif.loc[("blina_status", "nonresponder", "cd19neg")]
    expected = direct.set_index("cause").loc["cd19neg"]
    assert (row["n"], row["cif_6mo"], row["cif_6mo_ci_high"]) == (mask.sum(), expected["cif"], expected["ci_high"])
    study = np.isin(status, ("naive", "responder", "nonresponder"))
    gray = gray_test(events["time_days"][study], events["cause_code"][study], status[study], 3)
    assert analysis.gray.loc[("blina_status", "cd19neg"), "p"] == pytest.approx(gray.p_value, abs=1e-15)


def test_regressions_use_the_lamble_covariates(analysis):
    table = analysis.regression
    assert set(table.xs(("fine_gray", "cd19neg"), level=["model", "cause"]).index) == {
        "high_burden",
        "blina_nonresponder",
        "age_per_10y",
        "construct_41bb",
    }
    assert "kmt2a_rearranged" in table.xs(("fine_gray", "lineage_switch"), level=["model", "cause"]).index
    assert set(table.index.get_level_values("model")) == {"fine_gray", "cause_specific_cox"}
    # The simulator's KMT2A log-HR for lineage switch is 2.2: the interval sits well above 1.
    assert table.loc[("cause_specific_cox", "lineage_switch", "kmt2a_rearranged"), "ci_low"] > 1


def test_report_is_json_and_plot_has_a_panel_per_group(analysis):
    payload = json.loads(json.dumps(analysis.to_dict(), allow_nan=False))
    assert payload["causes"] == list(CAUSES)
    assert {row["cause"] for row in payload["cif"]} == set(CAUSES)
    figure = analysis.plot()
    assert isinstance(figure, Figure) and len(figure.axes) == 4


def test_reproduce_prints_incidence_lines_and_labels_crude_counts(records):
    report = reproduce_study(records)
    text = report.to_text()
    assert "Relapses after CAR (crude counts)" in text
    assert "12-month cumulative incidence of CD19-negative relapse (Aalen-Johansen): naive" in text
    assert "Fine-Gray subdistribution HR" in text
    assert report.to_dict()["competing_risks"]["hsct_handling"] == "ignore"
