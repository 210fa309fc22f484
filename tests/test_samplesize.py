"""Sample sizes checked against the published worked examples of pmsampsize and pmvalsampsize."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from carrisk.cli import app
from carrisk.samplesize import development_sample_size, validation_sample_size

# pmsampsize (R, CRAN) 1.0.2-1.1.0, tests/testthat/test_surv.R, "Test 3.1" to "Test 3.9": pmsampsize(type="s",
# rsquared, parameters, rate, timepoint, meanfup) -> sample size of criteria 1, 2, 3 and the final, and events per
# parameter. Test 3.1 is the time-to-event example of Riley et al. (BMJ 2020;368:m441; Stat Med 2019;38:1276) with 25
# instead of its 30 parameters (the paper's own numbers: PUBLISHED_SURVIVAL_EXAMPLE below).
PMSAMPSIZE_SURVIVAL = [
    ((0.051, 25, 0.065, 2, 2.07), [4286, 875, 4286, 4286], [23.07, 4.71, 23.07, 23.07]),
    ((0.065, 25, 0.065, 2, 2.07), [3335, 868, 3335, 3335], [17.95, 4.67, 17.95, 17.95]),
    ((0.051, 50, 0.065, 2, 2.07), [8572, 1749, 8572, 8572], [23.07, 4.71, 23.07, 23.07]),
    ((0.051, 25, 0.1, 2, 2.07), [4286, 725, 4286, 4286], [35.49, 6, 35.49, 35.49]),
    ((0.051, 25, 0.065, 4, 2.07), [4286, 875, 4286, 4286], [23.07, 4.71, 23.07, 23.07]),
    ((0.051, 25, 0.065, 2, 4), [4286, 684, 4286, 4286], [44.57, 7.11, 44.57, 44.57]),
    ((0.06, 40, 0.08, 3, 5), [5798, 974, 5798, 5798], [57.98, 9.74, 57.98, 57.98]),
    ((0.03, 10, 0.09, 3, 3), [2950, 273, 2950, 2950], [79.65, 7.37, 79.65, 79.65]),
    ((0.3, 80, 0.03, 1, 5), [1974, 2279, 2279, 2279], [3.7, 4.27, 4.27, 4.27]),
]


# The same nine tests in pmsampsize 1.1.1-1.1.3 (2021-; "fixes issues with rounding leading to small differences in
# Max_Rsq and subsequently sample size calculations"): criterion 2 only, and with it the final size of test 3.9.
PMSAMPSIZE_SURVIVAL_CURRENT = [
    ((0.051, 25, 0.065, 2, 2.07), [4286, 866, 4286, 4286], [23.07, 4.66, 23.07, 23.07]),
    ((0.065, 25, 0.065, 2, 2.07), [3335, 859, 3335, 3335], [17.95, 4.62, 17.95, 17.95]),
    ((0.051, 50, 0.065, 2, 2.07), [8572, 1731, 8572, 8572], [23.07, 4.66, 23.07, 23.07]),
    ((0.051, 25, 0.1, 2, 2.07), [4286, 731, 4286, 4286], [35.49, 6.05, 35.49, 35.49]),
    ((0.051, 25, 0.065, 4, 2.07), [4286, 866, 4286, 4286], [23.07, 4.66, 23.07, 23.07]),
    ((0.051, 25, 0.065, 2, 4), [4286, 679, 4286, 4286], [44.57, 7.06, 44.57, 44.57]),
    ((0.06, 40, 0.08, 3, 5), [5798, 969, 5798, 5798], [57.98, 9.69, 57.98, 57.98]),
    ((0.03, 10, 0.09, 3, 3), [2950, 272, 2950, 2950], [79.65, 7.34, 79.65, 79.65]),
    ((0.3, 80, 0.03, 1, 5), [1974, 2272, 2272, 2272], [3.7, 4.26, 4.26, 4.26]),
]


@pytest.mark.parametrize("arguments, sizes, epp", PMSAMPSIZE_SURVIVAL)
def test_development_sample_size_equals_pmsampsize(arguments, sizes, epp):
    result = development_sample_size(*arguments)
    assert result.table["sample_size"].tolist() == sizes
    assert result.table["events_per_parameter"].tolist() == pytest.approx(epp, abs=1e-9)
    assert result.sample_size == sizes[-1]


@pytest.mark.parametrize("arguments, sizes, epp", PMSAMPSIZE_SURVIVAL_CURRENT)
def test_development_sample_size_equals_current_pmsampsize_without_its_old_rounding(arguments, sizes, epp):
    result = development_sample_size(*arguments, rounding="current")
    assert result.table["sample_size"].tolist() == sizes
    assert result.table["events_per_parameter"].tolist() == pytest.approx(epp, abs=1e-9)
    assert result.sample_size == sizes[-1]


def test_development_sample_size_of_the_published_time_to_event_example():
    # The worked example of Riley et al. (Stat Med 2019;38:1276; BMJ 2020;368:m441), also the pmsampsize help page's
    # survival example: recurrent venous thromboembolism, 30 candidate parameters, Cox-Snell R2 0.051, rate 0.065
    # per year, mean follow-up 2.07 years, risk by 2 years. The paper's abstract: "an EPP of at least 23". Criterion 1
    # decides (it has no intermediate rounding, so both roundings agree): 5143 patients, 692 events, EPP 23.07.
    for rounding in ("published", "current"):
        result = development_sample_size(0.051, 30, 0.065, 2, 2.07, rounding=rounding)
        assert result.sample_size == 5143
        assert round(result.details["events"]) == 692
        assert result.table["events_per_parameter"].iloc[-1] == 23.07
    with pytest.raises(ValueError, match="rounding"):
        development_sample_size(0.051, 30, 0.065, 2, 2.07, rounding="1.1")


def test_development_refuses_an_impossible_r_squared():
    with pytest.raises(ValueError, match="maximum possible Cox-Snell R-squared"):
        development_sample_size(0.9, 10, 0.01, 1, 1)


def test_validation_sample_size_equals_pmvalsampsize():
    # pmvalsampsize (R, CRAN) tests/testthat/test_bin.R, "Test 4.1": prevalence 0.018, C 0.8, O/E CI width 1,
    # LP ~ N(-5, 2.5): criterion 1 (O/E) 905, criterion 3 (C statistic) 4252 (closed form, exact here); criterion 2
    # (slope) 4501 from 1,000 random draws of the LP, here from the exact expectation (so within a few per cent).
    result = validation_sample_size(0.018, 0.8, oe_ci_width=1.0, lp_normal=(-5.0, 2.5))
    table = result.table.set_index("criterion")["sample_size"]
    assert table["1: O/E"] == 905
    assert table["3: C statistic"] == 4252
    assert table["2: calibration slope"] == pytest.approx(4501, rel=0.03)
    assert result.sample_size == table.max()


def test_samplesize_command_prints_the_criteria():
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["samplesize", "development", "--csrsquared", "0.051", "--parameters", "25", "--rate", "0.065",
         "--timepoint", "2", "--meanfup", "2.07"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "4286" in result.output and "Minimum sample size: 4286" in result.output
    current = runner.invoke(
        app,
        ["samplesize", "development", "--csrsquared", "0.3", "--parameters", "80", "--rate", "0.03",
         "--timepoint", "1", "--meanfup", "5", "--rounding", "current"],
    )  # fmt: skip
    assert current.exit_code == 0 and "Minimum sample size: 2272" in current.output, current.output
    result = runner.invoke(app, ["samplesize", "validation", "--prevalence", "0.45", "--cstatistic", "0.65"])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(app, ["samplesize", "validation", "--prevalence", "1.5", "--cstatistic", "0.65"])
    assert bad.exit_code == 2 and "prevalence" in bad.output
