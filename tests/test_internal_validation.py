"""Bootstrap optimism correction: the bookkeeping of Harrell's method, on a quick unpenalized Cox model."""

from __future__ import annotations

import numpy as np
import pytest

import carrisk
from carrisk.internal_validation import MEASURES, bootstrap_optimism


@pytest.mark.slow
def test_corrected_is_apparent_minus_the_mean_optimism_of_the_refits():
    cohort = carrisk.simulate_cohort(300, seed=9)
    y = carrisk.survival_target(cohort.records)
    result = bootstrap_optimism(cohort.records, y, "coxph", n_bootstrap=6, seed=2)
    summary = result.summary.set_index("measure")
    assert list(summary.index) == list(MEASURES)
    for measure in MEASURES:
        optimism = (result.refits[f"{measure}_apparent"] - result.refits[f"{measure}_test"]).mean()
        assert summary.loc[measure, "optimism"] == pytest.approx(optimism)
        assert summary.loc[measure, "corrected"] == pytest.approx(summary.loc[measure, "apparent"] - optimism)
    # a model fitted to its own resample ranks that resample better than the original data: optimism > 0
    assert summary.loc["harrell_c", "optimism"] > 0
    assert summary.loc["harrell_c", "n_bootstrap"] == 6
    assert np.isfinite(summary["corrected"]).all()
