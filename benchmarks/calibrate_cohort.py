"""Fit the free parameters of the cohort simulator to the published moments and write simulation_params.json.

Usage::

    .venv/bin/python benchmarks/calibrate_cohort.py            # fit and write carrisk/data/simulation_params.json
    .venv/bin/python benchmarks/calibrate_cohort.py --no-fit   # write the starting values only

The expectation over replicates of n=420 is taken on one large cohort (``N_EXPECTATION`` covariate draws with a
fixed seed, i.e. common random numbers) with the outcome model averaged analytically
(:func:`carrisk.simulate.cohort_moments`), so every moment is a smooth function of the outcome parameters and
``scipy.optimize.least_squares`` can solve for them. Stages, each a least-squares problem on residuals scaled by
the tolerance of its targets:

1. age Beta(a, b) to the published median and IQR;
2. CD19 dim/partial intercept and exposure effect to 13.3 % exposed / 6.5 % naive;
3. day-28 CR intercept and blinatumomab-group effects to 93.5 % naive / 92.9 % responders / 64.5 % nonresponders;
4. the four cause-specific baseline rates, the blinatumomab-group relapse hazard ratios and the late-relapse
   multiplier to 6-month EFS per group, the relapse phenotype shares, the relapse fraction and 12-month EFS.

The fit is then checked on one realised cohort of ``N_EXPECTATION`` patients with Kaplan-Meier estimates (as the
study would compute them) and the achieved moments are stored in the JSON with the targets.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize, special

from benchmarks.cohort_validation import cohort_statistics
from carrisk.simulate import cohort_moments, simulate_cohort
from carrisk.units import DAY28_DAYS, DAYS_PER_MONTH, SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS, TWO_YEARS_DAYS

REPO = Path(__file__).resolve().parents[1]
PARAMS_PATH = REPO / "carrisk" / "data" / "simulation_params.json"
SEED = 20240601
N_EXPECTATION = 200_000

# Published targets. tolerance = the allowed |simulated mean - value|; ci = published 95 % CI where printed.
TARGETS: dict[str, dict[str, Any]] = {
    "cr_rate_nonresponder": {"value": 20 / 31, "tolerance": 0.02, "source": "Myers 2022 abstract: 20/31"},
    "cr_rate_responder": {"value": 39 / 42, "tolerance": 0.02, "source": "Myers 2022 abstract: 39/42"},
    "cr_rate_naive": {"value": 317 / 339, "tolerance": 0.02, "source": "Myers 2022 abstract: 317/339"},
    "efs_6mo_nonresponder": {
        "value": 0.273,
        "ci": [0.136, 0.430],
        "tolerance": 0.03,
        "source": "Myers 2022 abstract (KM)",
    },
    "efs_6mo_responder": {
        "value": 0.669,
        "ci": [0.506, 0.789],
        "tolerance": 0.03,
        "source": "Myers 2022 abstract (KM)",
    },
    "efs_6mo_naive": {
        "value": 0.726,
        "ci": [0.675, 0.770],
        "tolerance": 0.03,
        "source": "Myers 2022 abstract (KM)",
    },
    "cd19_dim_partial_exposed": {"value": 0.133, "tolerance": 0.02, "source": "Myers 2022 abstract"},
    "cd19_dim_partial_naive": {"value": 0.065, "tolerance": 0.02, "source": "Myers 2022 abstract"},
    "relapse_share_cd19pos": {"value": 83 / 166, "tolerance": 0.05, "source": "Lamble 2023: 83/166"},
    "relapse_share_cd19neg": {"value": 68 / 166, "tolerance": 0.05, "source": "Lamble 2023: 68/166"},
    "relapse_share_lineage_switch": {"value": 12 / 166, "tolerance": 0.05, "source": "Lamble 2023: 12/166"},
    "relapse_fraction": {
        "value": 166 / 420,
        "tolerance": 0.05,
        "source": "Lamble 2023: 166/420 (depends on follow-up; aimed at roughly)",
    },
    "efs_12mo_overall": {
        "value": 0.55,
        "range": [0.50, 0.60],
        "tolerance": 0.05,
        "source": "anchor: ELIANA 50 %, real-world 52.4 %; required 50-60 %",
    },
    "death_in_remission_fraction": {
        "value": 0.07,
        "tolerance": 0.03,
        "source": "assumption (not published): non-relapse mortality after CAR ~5-10 % keeps long-term EFS ~40 %",
    },
    "age_median": {"value": 12.7, "tolerance": 0.5, "source": "Myers 2022 abstract"},
    "age_q25": {"value": 7.1, "tolerance": 0.5, "source": "Myers 2022 abstract"},
    "age_q75": {"value": 17.5, "tolerance": 0.5, "source": "Myers 2022 abstract"},
    "blina_exposed": {"value": 77 / 420, "tolerance": 0.02, "source": "Myers 2022 abstract: 77/420"},
    "evaluable_fraction": {
        "value": 412 / 420,
        "tolerance": 0.01,
        "source": "Myers 2022 abstract: 412/420 evaluable for CAR response (fixed by non_evaluable_prob)",
    },
}

# Every parameter with its starting value and, for the assumed ones, the one-line reason.
ASSUMED: dict[str, tuple[Any, str]] = {
    "age_min_years": (1.0, "published range of the cohort"),
    "age_max_years": (30.0, "published range of the cohort"),
    "age_reference_years": (12.7, "centre of the age effect = published median"),
    "sex_male_prob": (0.57, "usual male excess in paediatric B-ALL"),
    "car_product_probs": (
        {"tisagenlecleucel": 0.40, "chop_penn": 0.27, "scri_plat02": 0.20, "nci_cd28": 0.13},
        "tisagenlecleucel most common; CHOP/Penn, SCRI PLAT-02, NCI CD28 trials share the rest",
    ),
    "blina_exposed_prob": (77 / 420, "published: 77/420 exposed"),
    "blina_response_prob": (42 / 73, "published: 42/73 evaluable exposed responded"),
    "blina_unknown_response_share": (4 / 77, "published: 73 of 77 exposed evaluable"),
    "kmt2a_prob_naive": (0.10, "~10 % KMT2A-r in paediatric R/R B-ALL"),
    "kmt2a_prob_exposed": (0.20, "abstract: exposed more often KMT2A-rearranged"),
    "kmt2a_not_tested_share": (0.04, "messy records: a few patients never tested"),
    "kmt2a_status_blank_share": (0.20, "messy records: fusion given only in the cytogenetics text"),
    "hsct_prob_naive": (0.38, "below ELIANA's 61 % (trial after multiple relapses); includes first relapses"),
    "hsct_prob_exposed": (0.55, "abstract: exposed more often had a prior transplant"),
    "hsct_second_share": (0.12, "second allogeneic transplants are uncommon"),
    "hsct_months_median": (14.0, "relapse after transplant typically within 1-2 years"),
    "hsct_months_sdlog": (0.8, "wide spread of time since transplant"),
    "marrow_high_prob_naive": (0.40, "gives high burden ~45 % overall with CNS3/EMD"),
    "marrow_high_prob_responder": (0.25, "blinatumomab responders come to CAR with less disease"),
    "marrow_high_prob_nonresponder": (0.65, "blinatumomab nonresponders carry refractory disease"),
    "marrow_undetectable_share": (0.50, "John 2025: >0-<5 % blasts in ~20 % of patients"),
    "marrow_high_log10_mean": (1.6, "median ~40 % among >= 5 %; >= 50 % blasts in ~12 % (John 2025: 12-18 %)"),
    "marrow_high_log10_sd": (0.4, "as above"),
    "marrow_mrd_log10_mean": (-0.7, "MRD-positive marrows centred at ~0.2 % blasts"),
    "marrow_mrd_log10_sd": (0.7, "MRD levels span 0.01-5 %"),
    "cns3_prob": (0.04, "CNS3 at infusion is uncommon"),
    "cns2_prob": (0.08, "CNS2 at infusion is uncommon"),
    "emd_prob": (0.06, "non-CNS extramedullary disease is uncommon"),
    "prior_relapses_probs": ([0.12, 0.45, 0.30, 0.10, 0.03], "mostly first or second relapse; 12 % refractory"),
    "down_syndrome_prob": (0.04, "DS enriched in R/R B-ALL (~2-3 % of ALL)"),
    "inotuzumab_prob_naive": (0.06, "inotuzumab rarely used in children before 2019"),
    "inotuzumab_prob_exposed": (0.20, "heavily pretreated patients more often received both"),
    "cd19_logor_nonresponder_extra": (0.8, "CD19 modulation concentrates in blinatumomab nonresponders"),
    "cd19_logor_high_burden": (0.5, "dim/partial expression is detectable only with measurable disease"),
    "cd19_partial_share": (0.5, "dim and partial about equally frequent"),
    "cr_logor_high_burden": (-1.0, "Myers 2022: high burden -> inferior response"),
    "cr_logor_cd19_dim_partial": (-0.8, "antigen-low blasts escape CAR"),
    "cr_logor_kmt2a": (-0.5, "KMT2A-r: more primary failures (lineage switch at day 28)"),
    "cr_logor_inotuzumab": (-0.4, "John 2025: prior inotuzumab worse"),
    "loghr_blina_nonresponder_cd19neg_extra": (0.5, "Lamble 2023: blinatumomab nonresponse -> CD19-negative"),
    "loghr_mrd_positive_relapse": (0.3, "residual MRD raises relapse modestly vs undetectable"),
    "loghr_high_burden_cd19pos": (0.5, "Myers 2022: high burden independent EFS risk"),
    "loghr_high_burden_cd19neg": (0.9, "Lamble 2023 / Dourthe 2021: burden drives CD19-negative relapse"),
    "loghr_high_burden_lineage_switch": (0.3, "more disease, more chance of lineage escape"),
    "loghr_high_burden_death": (0.2, "more toxicity (CRS) with high burden"),
    "loghr_cd19_dim_partial_cd19pos": (0.2, "Myers 2022: dim/partial -> lower RFS"),
    "loghr_cd19_dim_partial_cd19neg": (1.0, "pre-existing CD19-low clones -> antigen-negative escape"),
    "loghr_cd19_dim_partial_lineage_switch": (0.3, "antigen-low blasts escape"),
    "loghr_kmt2a_cd19pos": (0.0, "no published effect on CD19-positive relapse"),
    "loghr_kmt2a_cd19neg": (0.3, "John 2025: KMT2A worse overall"),
    "loghr_kmt2a_lineage_switch": (2.2, "Lamble 2023: KMT2A drives lineage switch (HR ~9)"),
    "loghr_age_per_10y_cd19pos": (0.0, "no published age effect"),
    "loghr_age_per_10y_cd19neg": (0.3, "Lamble 2023: older age -> CD19-negative relapse"),
    "loghr_age_per_10y_lineage_switch": (-0.3, "lineage switch concentrated in infant/young KMT2A-r"),
    "loghr_age_per_10y_death": (0.3, "older patients: more treatment-related mortality"),
    "loghr_41bb_cd19pos": (-0.4, "4-1BB persists longer: fewer CD19-positive relapses than CD28"),
    "loghr_41bb_cd19neg": (0.6, "Lamble 2023: 4-1BB construct -> CD19-negative relapse"),
    "loghr_41bb_lineage_switch": (0.0, "no published effect"),
    "loghr_prior_hsct_cd19pos": (0.15, "prior HSCT: modest effect on relapse"),
    "loghr_prior_hsct_cd19neg": (0.15, "prior HSCT: modest effect on relapse"),
    "loghr_prior_hsct_lineage_switch": (0.15, "prior HSCT: modest effect on relapse"),
    "loghr_prior_hsct_death": (0.4, "second transplant after CAR carries higher mortality"),
    "loghr_inotuzumab_cd19pos": (0.2, "John 2025: prior inotuzumab worse"),
    "loghr_inotuzumab_cd19neg": (0.3, "John 2025: prior inotuzumab worse"),
    "loghr_inotuzumab_lineage_switch": (0.0, "no published effect"),
    "loghr_inotuzumab_death": (0.3, "hepatotoxicity / VOD risk at later transplant"),
    "loghr_down_syndrome_death": (0.9, "Down syndrome: higher treatment-related mortality"),
    "hazard_edges_days": (
        [DAY28_DAYS, 3 * DAYS_PER_MONTH, SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS, TWO_YEARS_DAYS],
        "intervals: day 28-3 mo, 3-6 mo, 6-12 mo, 1-2 y, > 2 y",
    ),
    "hazard_shape_cd19pos": ([1.0, 1.0, 0.7, 0.35, 0.05], "CD19+ relapses early, with loss of persistence"),
    "hazard_shape_cd19neg": ([0.5, 1.0, 0.9, 0.4, 0.05], "CD19- escape takes a few months to emerge"),
    "hazard_shape_lineage_switch": ([2.0, 1.0, 0.3, 0.1, 0.02], "lineage switch is early (often by day 28-90)"),
    "hazard_shape_death": ([1.0, 1.0, 0.8, 0.5, 0.15], "toxicity and transplant-related deaths in year 1"),
    "unclassified_relapse_share": (3 / 166, "Lamble 2023: 3 of 166 relapses unclassified"),
    "non_evaluable_prob": (
        8 / 420,
        "published: 412 of 420 evaluable for CAR response (early death before day 28; own random stream)",
    ),
    "os_median_days_after_relapse": (300.0, "poor salvage after post-CAR relapse"),
    "os_median_days_after_no_cr": (150.0, "primary refractory disease after CAR"),
    "accrual_start": ("2012-01-01", "study window 2012-2019"),
    "accrual_end": ("2019-12-31", "study window 2012-2019"),
    "data_cutoff": ("2020-06-30", "administrative cut-off after the last infusion"),
    "ltfu_rate_per_year": (0.04, "modest loss to follow-up"),
}

FREE_START: dict[str, float] = {
    "age_beta_a": 1.6,
    "age_beta_b": 2.3,
    "cd19_intercept": -3.0,
    "cd19_logor_exposed": 0.5,
    "cr_intercept": 3.3,
    "cr_logor_blina_nonresponder": -1.5,
    "cr_logor_blina_responder": 0.0,
    "hazard_log_rate_cd19pos": np.log(0.35),
    "hazard_log_rate_cd19neg": np.log(0.3),
    "hazard_log_rate_lineage_switch": np.log(0.03),
    "hazard_log_rate_death": np.log(0.05),
    "loghr_blina_nonresponder": 0.8,
    "loghr_blina_responder": 0.2,
    "hazard_late_multiplier": 1.0,
}

STAGES: list[tuple[str, list[str], list[str]]] = [
    (
        "CD19 dim/partial",
        ["cd19_intercept", "cd19_logor_exposed"],
        ["cd19_dim_partial_exposed", "cd19_dim_partial_naive"],
    ),
    (
        "day-28 CR",
        ["cr_intercept", "cr_logor_blina_nonresponder", "cr_logor_blina_responder"],
        ["cr_rate_naive", "cr_rate_responder", "cr_rate_nonresponder"],
    ),
    (
        "EFS hazards",
        [
            "hazard_log_rate_cd19pos",
            "hazard_log_rate_cd19neg",
            "hazard_log_rate_lineage_switch",
            "hazard_log_rate_death",
            "loghr_blina_nonresponder",
            "loghr_blina_responder",
            "hazard_late_multiplier",
        ],
        [
            "efs_6mo_naive",
            "efs_6mo_responder",
            "efs_6mo_nonresponder",
            "relapse_share_cd19pos",
            "relapse_share_cd19neg",
            "relapse_share_lineage_switch",
            "relapse_fraction",
            "efs_12mo_overall",
            "death_in_remission_fraction",
        ],
    ),
]


def starting_params() -> dict[str, Any]:
    """All parameters at their assumed or starting values."""
    params = {name: value for name, (value, _reason) in ASSUMED.items()}
    params.update({name: float(value) for name, value in FREE_START.items()})
    return params


def fit_age(params: dict[str, Any]) -> None:
    """Beta(a, b) on [age_min, age_max] through the published quartiles (exact 3-point least squares)."""
    span = params["age_max_years"] - params["age_min_years"]
    probs = np.array([0.25, 0.5, 0.75])
    targets = (np.array([7.1, 12.7, 17.5]) - params["age_min_years"]) / span

    def residuals(log_ab: np.ndarray) -> np.ndarray:
        a, b = np.exp(log_ab)
        return (special.betaincinv(a, b, probs) - targets) * span

    start = np.log([params["age_beta_a"], params["age_beta_b"]])
    solution = optimize.least_squares(residuals, start, xtol=1e-12, ftol=1e-12)
    params["age_beta_a"], params["age_beta_b"] = (float(v) for v in np.exp(solution.x))


def fit_stage(params: dict[str, Any], names: list[str], targets: list[str], label: str) -> None:
    """Least squares of (moment - target) / tolerance over ``names``; updates ``params`` in place."""
    lower = [0.05 if name == "hazard_late_multiplier" else -np.inf for name in names]
    upper = [10.0 if name == "hazard_late_multiplier" else np.inf for name in names]

    def residuals(values: np.ndarray) -> np.ndarray:
        trial = dict(params)
        trial.update(zip(names, (float(v) for v in values), strict=True))
        moments = cohort_moments(trial, n=N_EXPECTATION, seed=SEED)
        return np.array([(moments[t] - TARGETS[t]["value"]) / TARGETS[t]["tolerance"] for t in targets])

    started = time.perf_counter()
    start = np.clip([params[name] for name in names], np.array(lower) + 1e-6, np.array(upper) - 1e-6)
    solution = optimize.least_squares(
        residuals, start, bounds=(lower, upper), diff_step=1e-4, xtol=1e-8, ftol=1e-10, max_nfev=200
    )
    params.update(zip(names, (float(v) for v in solution.x), strict=True))
    print(
        f"stage {label}: cost {solution.cost:.4g}, {solution.nfev} evaluations, "
        f"{time.perf_counter() - started:.1f} s, status {solution.status}"
    )


def realised_check(params: dict[str, Any]) -> dict[str, float]:
    """Moments of one realised canonical cohort of N_EXPECTATION patients, with Kaplan-Meier EFS."""
    cohort = simulate_cohort(N_EXPECTATION, seed=SEED + 1, messy=False, params=params)
    return cohort_statistics(cohort.records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-fit", action="store_true", help="write the starting values without fitting")
    parser.add_argument("--output", type=Path, default=PARAMS_PATH)
    args = parser.parse_args()

    started = time.perf_counter()
    params = starting_params()
    if not args.no_fit:
        fit_age(params)
        for label, names, targets in STAGES:
            fit_stage(params, names, targets, label)
    expected = cohort_moments(params, n=N_EXPECTATION, seed=SEED)
    realised = realised_check(params)
    elapsed = time.perf_counter() - started

    print(f"\n{'target':32s} {'published':>9s} {'expected':>9s} {'realised':>9s} {'tol':>6s}")
    for name, target in TARGETS.items():
        exp_value = expected.get(name, realised.get(name, np.nan))
        print(
            f"{name:32s} {target['value']:9.4f} {exp_value:9.4f} {realised.get(name, np.nan):9.4f} "
            f"{target['tolerance']:6.3f}"
        )
    print(f"\ncalibration took {elapsed:.1f} s")

    document = {
        "description": "Parameters of carrisk.simulate, fitted to Myers et al. JCO 2022 and Lamble et al. 2023.",
        "fitted_on": dt.date.today().isoformat(),
        "script": "benchmarks/calibrate_cohort.py",
        "seed": SEED,
        "n_expectation": N_EXPECTATION,
        "fitted": not args.no_fit,
        "runtime_seconds": round(elapsed, 1),
        "free_parameters": list(FREE_START),
        "parameters": params,
        "assumptions": {name: reason for name, (_value, reason) in ASSUMED.items()},
        "targets": TARGETS,
        "achieved_expected": expected,
        "achieved_realised_km": realised,
    }
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
