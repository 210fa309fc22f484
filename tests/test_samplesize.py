"""Sample sizes checked against the published worked examples of pmsampsize and pmvalsampsize."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from carrisk.cli import app
from carrisk.samplesize import development_sample_size, validation_sample_size

# pmsampsize (R, CRAN), tests/testthat/test_surv.R, "Test 3.1" to "Test 3.9": pmsampsize(type="s", rsquared, parameters,
# rate, timepoint, meanfup) -> sample size of criteria 1, 2, 3 and the final, and events per parameter. Test 3.1 is
# the time-to-event example of Riley et al. (BMJ 2020;368:m441): R2 0.051, 25 parameters, rate 0.065, 2 years.
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


@pytest.mark.parametrize("arguments, sizes, epp", PMSAMPSIZE_SURVIVAL)
def test_development_sample_size_equals_pmsampsize(arguments, sizes, epp):
    result = development_sample_size(*arguments)
    assert result.table["sample_size"].tolist() == sizes
    assert result.table["events_per_parameter"].tolist() == pytest.approx(epp, abs=1e-9)
    assert result.sample_size == sizes[-1]


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
    result = runner.invoke(app, ["samplesize", "validation", "--prevalence", "0.45", "--cstatistic", "0.65"])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(app, ["samplesize", "validation", "--prevalence", "1.5", "--cstatistic", "0.65"])
    assert bad.exit_code == 2 and "prevalence" in bad.output
