"""Sample size for developing a survival prediction model and for validating one externally.

Development (Riley et al. 2019, 2020 [1]_ [2]_): the minimum number of patients so that (1) the expected uniform
shrinkage of the predictor effects is small (>= ``shrinkage``, 0.9), (2) the apparent and adjusted Nagelkerke
R-squared differ by at most 0.05, and (3) the overall event risk by ``timepoint`` is estimated precisely; computed
exactly as the R package ``pmsampsize`` does for ``type="s"``. By default (``rounding="published"``) with the
intermediate rounding of versions 1.0.2-1.1.0 (2019-2021; the maximum R-squared to 2 decimals and criterion 2's
shrinkage to 3), with which Riley et al. computed their published worked examples; ``rounding="current"`` drops
that rounding, as ``pmsampsize`` 1.1.1 and later (2021-) do. The two differ only in criterion 2 (e.g. 875 vs 866
patients in the package's test 3.1), and so in the final size only where criterion 2 decides it.

External validation (Riley et al. 2021 [3]_, as ``pmvalsampsize`` for a binary outcome): the minimum number of
patients for a precise observed/expected ratio (criterion 1) and C statistic (criterion 3), and for the
calibration slope (criterion 2) given a normal distribution of the linear predictor (expected information computed
on a fine quantile grid instead of ``pmvalsampsize``'s random draws). Applied to EFS by a horizon, the outcome is
"event by the horizon", which assumes every patient is followed to the horizon or has the event before it; with
censoring before the horizon, divide the result by the share expected to be followed that long.

References
----------
.. [1] Riley, R. D., Snell, K. I. E., Ensor, J., et al. (2019). "Minimum sample size for developing a multivariable
       prediction model: PART II - binary and time-to-event outcomes". Statistics in Medicine, 38(7), 1276-1296.
.. [2] Riley, R. D., Ensor, J., Snell, K. I. E., et al. (2020). "Calculating the sample size required for
       developing a clinical prediction model". BMJ, 368, m441.
.. [3] Riley, R. D., Debray, T. P. A., Collins, G. S., et al. (2021). "Minimum sample size for external validation
       of a clinical prediction model with a binary outcome". Statistics in Medicine, 40(19), 4230-4251.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

__all__ = ["SampleSize", "development_sample_size", "validation_sample_size"]

Z_95 = 1.96  # as in pmsampsize / pmvalsampsize


@dataclass
class SampleSize:
    """A sample-size calculation: ``table`` has one row per criterion and the final answer last."""

    table: pd.DataFrame
    sample_size: int
    details: dict[str, Any]

    def to_text(self) -> str:
        return self.table.to_string(index=False) + f"\n\nMinimum sample size: {self.sample_size} patients"


def _shrinkage_n(parameters: int, r2: float, shrinkage: float) -> int:
    return math.ceil(parameters / ((shrinkage - 1) * math.log(1 - r2 / shrinkage)))


def development_sample_size(
    csrsquared: float,
    parameters: int,
    rate: float,
    timepoint: float,
    meanfup: float,
    *,
    shrinkage: float = 0.9,
    rounding: str = "published",
) -> SampleSize:
    """Minimum sample size to develop a survival prediction model (Riley et al. 2019/2020; ``pmsampsize``).

    Parameters
    ----------
    csrsquared : float
        Anticipated Cox-Snell R-squared of the model (e.g. from a previous model).
    parameters : int
        Number of candidate predictor parameters (every one-hot column and spline term counts).
    rate : float
        Overall event rate per unit of time (e.g. per year).
    timepoint : float
        Time of interest for the event risk, same unit as ``rate``.
    meanfup : float
        Anticipated mean follow-up, same unit.
    shrinkage : float, default 0.9
        Target expected uniform shrinkage.
    rounding : {"published", "current"}, default "published"
        "published": round the maximum R-squared to 2 decimals and criterion 2's shrinkage to 3, as
        ``pmsampsize`` 1.0.2-1.1.0 did (the version of the published worked examples); "current": no intermediate
        rounding, as ``pmsampsize`` >= 1.1.1.

    Returns
    -------
    SampleSize
        ``table`` columns ``criterion``, ``sample_size``, ``shrinkage``, ``events_per_parameter``; details hold
        ``max_r2``, the event risk by ``timepoint`` with its 95% interval at the final size, and the events.

    Raises
    ------
    ValueError
        For values out of range, or an R-squared above the maximum possible for this event rate.
    """
    if not 0 < csrsquared < 1 or parameters < 1 or rate <= 0 or timepoint <= 0 or meanfup <= 0:
        raise ValueError(
            "need 0 < csrsquared < 1, parameters >= 1 and positive rate, timepoint and meanfup; got "
            f"csrsquared={csrsquared}, parameters={parameters}, rate={rate}, timepoint={timepoint}, meanfup={meanfup}"
        )
    if rounding not in ("published", "current"):
        raise ValueError(f"rounding must be 'published' or 'current', got {rounding!r}")
    published = rounding == "published"
    n_reference = 10000  # pmsampsize's arbitrary reference size for the maximum R-squared
    events_reference = math.ceil(rate * meanfup * n_reference)
    ln_l_null = events_reference * math.log(events_reference / n_reference) - events_reference
    max_r2 = 1 - math.exp(2 * ln_l_null / n_reference)
    if published:
        max_r2 = round(max_r2, 2)
    if max_r2 < csrsquared or csrsquared >= shrinkage:
        raise ValueError(
            f"csrsquared {csrsquared} is larger than the maximum possible Cox-Snell R-squared ({max_r2}) for an event "
            f"rate of this size (Riley et al. 2019, equation 23), or not below the target shrinkage {shrinkage}"
        )
    n1 = _shrinkage_n(parameters, csrsquared, shrinkage)
    shrinkage_2 = csrsquared / (csrsquared + 0.05 * max_r2)
    if published:
        shrinkage_2 = round(shrinkage_2, 3)
    n2 = _shrinkage_n(parameters, csrsquared, shrinkage_2)
    n3 = max(n1, n2)
    person_time = round(meanfup * n3, 1)
    upper = 1 - math.exp(-(rate + Z_95 * math.sqrt(rate / person_time)) * timepoint)
    lower = 1 - math.exp(-(rate - Z_95 * math.sqrt(rate / person_time)) * timepoint)
    risk = 1 - math.exp(-rate * timepoint)
    final = max(n1, n2, n3)
    shrinkage_final = max(shrinkage, shrinkage_2)

    def epp(n: int) -> float:
        return round(n * rate * meanfup / parameters, 2)

    table = pd.DataFrame(
        {
            "criterion": [
                "1: expected shrinkage",
                "2: small optimism in R-squared",
                "3: precise overall risk",
                "final",
            ],
            "sample_size": [n1, n2, n3, final],
            "shrinkage": [round(value, 3) for value in (shrinkage, shrinkage_2, shrinkage_final, shrinkage_final)],
            "events_per_parameter": [epp(n1), epp(n2), epp(n3), epp(final)],
        }
    )
    details = {
        "rounding": rounding,
        "max_r2": max_r2,
        "events": final * rate * meanfup,
        "risk_at_timepoint": round(risk, 3),
        "risk_interval": [round(lower, 3), round(upper, 3)],
        "risk_margin_of_error": upper - risk,
        "person_time": round(meanfup * final, 1),
    }
    return SampleSize(table, final, details)


def _oe_standard_error(oe: float, width: float, increment: float = 0.0001) -> float:
    """Smallest SE of ln(O/E), in steps of ``increment`` (as pmvalsampsize), whose 95% CI of O/E is >= ``width``."""
    se, current = 0.0, 0.0
    while current < width:
        se += increment
        current = math.exp(math.log(oe) + Z_95 * se) - math.exp(math.log(oe) - Z_95 * se)
    return se


def validation_sample_size(
    prevalence: float,
    cstatistic: float,
    *,
    oe: float = 1.0,
    oe_ci_width: float = 0.2,
    cstat_ci_width: float = 0.1,
    slope_ci_width: float = 0.2,
    lp_normal: tuple[float, float] | None = None,
) -> SampleSize:
    """Minimum sample size to validate a model externally (Riley et al. 2021; ``pmvalsampsize``, binary outcome).

    Parameters
    ----------
    prevalence : float
        Anticipated outcome proportion (for EFS: the event probability by the horizon).
    cstatistic : float
        Anticipated C statistic.
    oe : float, default 1
        Anticipated observed/expected ratio.
    oe_ci_width : float, default 0.2
        Target width of the 95% CI of O/E.
    cstat_ci_width : float, default 0.1
        Target width of the 95% CI of the C statistic.
    slope_ci_width : float, default 0.2
        Target width of the 95% CI of the calibration slope (only with ``lp_normal``).
    lp_normal : (mean, sd), optional
        Normal distribution of the model's linear predictor (logit scale) in the validation population.

    Returns
    -------
    SampleSize
        One row per criterion (``criterion``, ``sample_size``, ``standard_error``, ``ci_width``) and the final.
    """
    if not 0 < prevalence < 1 or not 0.5 <= cstatistic < 1 or oe <= 0:
        raise ValueError(
            f"need 0 < prevalence < 1, 0.5 <= cstatistic < 1 and oe > 0; got prevalence={prevalence}, "
            f"cstatistic={cstatistic}, oe={oe}"
        )
    se_oe = _oe_standard_error(oe, oe_ci_width)
    n1 = math.ceil((1 - prevalence) / (prevalence * se_oe**2))
    size = np.arange(1, 1_000_001, dtype=float)
    c = cstatistic
    with np.errstate(invalid="ignore"):
        var_c = (
            c
            * (1 - c)
            * (1 + (size / 2 - 1) * (1 - c) / (2 - c) + ((size / 2 - 1) * c) / (1 + c))
            / (size**2 * prevalence * (1 - prevalence))
        )
        width = 2 * Z_95 * np.sqrt(var_c)
    n3 = int(size[np.flatnonzero(width <= cstat_ci_width)[0]])
    rows = [
        ("1: O/E", n1, se_oe, oe_ci_width),
        ("3: C statistic", n3, float(np.sqrt(var_c[n3 - 1])), cstat_ci_width),
    ]
    if lp_normal is not None:
        mean, sd = lp_normal
        grid = stats.norm.ppf((np.arange(200_000) + 0.5) / 200_000, loc=mean, scale=sd)
        weight = special.expit(grid) * (1 - special.expit(grid))
        i00, i01, i11 = weight.mean(), (grid * weight).mean(), (grid * grid * weight).mean()
        se_slope = slope_ci_width / (2 * Z_95)
        n2 = math.ceil(i00 / (se_slope**2 * (i00 * i11 - i01**2)))
        rows.insert(1, ("2: calibration slope", n2, se_slope, slope_ci_width))
    final = max(row[1] for row in rows)
    table = pd.DataFrame(rows, columns=["criterion", "sample_size", "standard_error", "ci_width"])
    table.loc[len(table)] = ["final", final, float("nan"), float("nan")]
    return SampleSize(table, final, {"events": final * prevalence, "prevalence": prevalence})
