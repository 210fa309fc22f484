"""Truth benchmark: every candidate model scored against the simulator's known per-patient EFS.

    python -m benchmarks --only truth            # full: 20 replicate cohorts of n=420 + learning curve
    python -m benchmarks --quick --only truth    # quick: 3 replicates, small learning curve (< 3 minutes)
    python -m benchmarks.truth [--quick]         # the same, this part only

Each replicate r draws a training cohort ``simulate_cohort(420, seed=20_000 + r)``, fits every candidate (seed r)
and predicts 6- and 12-month EFS for one independent test cohort (``simulate_cohort(N_TEST, seed=777_777)``,
outcomes dropped), whose true EFS is known. Reported, as the mean over replicates: RMSE and MAE against the true
EFS at 6 and 12 months, mean error (predicted - true) in each blinatumomab group, burden group, CD19 dim/partial
vs not and the blinatumomab x burden cells, Harrell's C of the predicted 12-month risk on the test cohort's
observed EFS next to the oracle C (the true risk's), and for the candidates with intervals the share of test
patients whose true EFS lies inside the 95% interval and the mean width. The oracle row predicts the truth; the
``oracle_form`` row is a practical ceiling: the generating model's own form (logistic day-28 CR on its six CR
covariates times a Cox model after CR on every covariate of the cause-specific hazards) refitted by unpenalised
maximum likelihood on each training cohort's *true* covariates (latent blinatumomab group, high burden, CD19
dim/partial, ...; no missing values), which no model of the recorded data can beat except by chance.
A learning curve repeats the main candidates and the ceiling at n = 200, 420, 1,000 and 2,000 (RMSE and
Harrell's C; fewer replicates, said in the JSON).
Writes ``results/truth.json``, ``results/truth.md``, ``results/truth_scatter.png`` and
``results/truth_learning_curve.png``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sksurv.linear_model import CoxPHSurvivalAnalysis

from benchmarks import _common
from carrisk import simulate_cohort, survival_target
from carrisk._io import atomic_write_text
from carrisk.bootstrap import INTERVAL_PENALTY_DIVISOR, bootstrap_interval, bootstrap_refits
from carrisk.features import ClinicalFeatures
from carrisk.metrics import harrell_c
from carrisk.models import check_survival_target, make_pipeline, step_survival
from carrisk.schema import OUTCOME_COLUMNS, SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS
from carrisk.simulate import oracle_concordance
from carrisk.tuning import final_pipeline, tuned_model
from carrisk.two_part import RESPONSE_DAY
from carrisk.unseen import level_counts, marginalisation_plan, mixture_interval

TRAIN_SEED_BASE = 20_000
TEST_SEED = 777_777
N_TRAIN = 420
HORIZONS = {"6mo": SIX_MONTHS_DAYS, "12mo": TWELVE_MONTHS_DAYS}
BLINA_GROUPS = ("naive", "responder", "nonresponder")
#: The shipped model's target: every blinatumomab group's mean error within this on an independent cohort.
SHIPPED_GROUP_TARGET = 0.06
DEFAULT_CANDIDATE = "average"

#: name -> (description, factory(seed) of an unfitted model taking raw records)
CANDIDATES: dict[str, tuple[str, Callable[[int], Any]]] = {
    "rsf": (
        "random survival forest, out-of-bag tuned by Harrell's C (the old default)",
        lambda r: tuned_model("rsf", random_state=r),
    ),
    "rsf_all_features": (
        "random survival forest, every feature at each split, leaf 5, 500 trees",
        lambda r: make_pipeline("rsf", random_state=r, max_features=None, min_samples_leaf=5, n_estimators=500),
    ),
    "coxnet": ("elastic-net Cox tuned by inner-CV Harrell's C", lambda r: tuned_model("coxnet", random_state=r)),
    "coxph": ("Cox model, all covariates, no penalty", lambda r: make_pipeline("coxph")),
    "coxnet_cv": (
        "elastic-net Cox, penalty by CV deviance, prespecified weights",
        lambda r: make_pipeline("coxnet_cv", random_state=r),
    ),
    "two_part_equal": (
        "two-part (CR logistic x post-CR Cox), penalties by CV log-loss/deviance, every column weight 1",
        lambda r: make_pipeline("two_part", random_state=r, penalty_weights={}),
    ),
    "two_part": (
        "two-part (CR logistic x post-CR Cox), penalties by CV log-loss/deviance, prespecified weights",
        lambda r: make_pipeline("two_part", random_state=r),
    ),
    "stacked": (
        "stack of coxnet_cv and two_part, convex weights by out-of-fold integrated Brier score",
        lambda r: make_pipeline("stacked", random_state=r),
    ),
    "average": (
        "fixed 50/50 average of the coxnet_cv and two_part survival curves (make_pipeline('average'))",
        lambda r: make_pipeline("average", random_state=r),
    ),
}
#: The practical ceiling: the generating form refitted by maximum likelihood on the true covariates.
ORACLE_FORM = "oracle_form"
ORACLE_FORM_DESCRIPTION = (
    "ceiling: generating form (logistic CR x Cox after CR) refitted by unpenalised ML on the true covariates"
)
#: Interval variants measured: candidate -> {variant: (method, penalty divisor)}; refits of the final estimator.
#: ``percentile``: the model's own bootstrap; ``unshrunk``: percentile at 1/100 of the penalties, clamped to
#: contain the point (the previous shipped interval); ``centred``: the spread of refits at 1/10 of the penalties
#: moved onto the point (shipped); ``centred_30``: the same at 1/30.
INTERVALS: dict[str, dict[str, tuple[str, float]]] = {
    "average": {
        "percentile": ("percentile", 1.0),
        "centred": ("centred", INTERVAL_PENALTY_DIVISOR),
        "centred_30": ("centred", 30.0),
    },
    "two_part": {
        "percentile": ("percentile", 1.0),
        "unshrunk": ("percentile", 100.0),
        "centred": ("centred", INTERVAL_PENALTY_DIVISOR),
    },
    "coxnet_cv": {"percentile": ("percentile", 1.0), "centred": ("centred", INTERVAL_PENALTY_DIVISOR)},
    "coxph": {"percentile": ("percentile", 1.0)},
}
INTERVAL_VARIANTS = ("percentile", "unshrunk", "centred", "centred_30")
SHIPPED_INTERVAL = "centred"
LEARNING_CANDIDATES = ("average", "coxnet", ORACLE_FORM)
#: One training cohort this large shows each model's limit on the recorded data (estimation error ~0): what is
#: left of its error is misspecification and the information the records do not carry (unknown responses,
#: missing cells), which no model of the records can remove.
LIMIT_N = 50_000
LIMIT_CANDIDATES = (DEFAULT_CANDIDATE, ORACLE_FORM)


def _test_cohort(n: int) -> tuple[Any, Any, np.ndarray]:
    cohort = simulate_cohort(n, seed=TEST_SEED)
    features = cohort.records.drop(columns=[c for c in OUTCOME_COLUMNS if c in cohort.records])
    return cohort, features, cohort.truth[["true_efs_6mo", "true_efs_12mo"]].to_numpy()


#: The generating model's day-28 CR covariates (the first columns of :func:`true_covariates`).
CR_COVARIATES = ("nonresponder", "responder", "high_burden", "cd19_dim_partial", "kmt2a", "inotuzumab")


def true_covariates(n: int, seed: int) -> np.ndarray:
    """The covariates of the generating model for ``simulate_cohort(n, seed)``, without missing values.

    Columns: :data:`CR_COVARIATES`, then prior transplant, MRD-positive (0 < blasts < 5 %), age / 10, a 4-1BB
    construct and Down syndrome (the cause-specific hazards' covariates). The latent groups come from the
    cohort's truth table, the rest from its clean records (``messy=False`` describes the same patients).
    """
    cohort = simulate_cohort(n, seed=seed, messy=False)
    records, truth = cohort.records, cohort.truth
    blasts = records["marrow_blasts_pct"].to_numpy(dtype=float)
    columns = [
        truth["true_blina_group"] == "nonresponder",
        truth["true_blina_group"] == "responder",
        truth["true_high_burden"],
        truth["true_cd19_dim_partial"],
        truth["true_kmt2a"],
        records["prior_inotuzumab"],
        records["prior_hsct_count"] > 0,
        (blasts > 0) & (blasts < 5),
        records["age_years"] / 10.0,
        records["car_product"] != "nci_cd28",
        records["down_syndrome"],
    ]
    return np.column_stack([np.asarray(c, dtype=float) for c in columns])


def oracle_form_survival(
    covariates: np.ndarray, y: np.ndarray, test_covariates: np.ndarray, times: np.ndarray
) -> np.ndarray:
    """The generating model's form refitted by maximum likelihood; S(times) of the test rows.

    ``S(t) = p_CR(x) * S_post(t | x)`` from day 28: unpenalised logistic regression of day-28 CR on the
    :data:`CR_COVARIATES` (as the simulator's CR model), and an unpenalised Cox model with Breslow baseline for
    EFS after CR on all covariates (the simulator's four cause-specific hazards summed; their sum is close to,
    not exactly, proportional). Who is in which part: as :class:`carrisk.two_part.TwoPartSurvival`.
    """
    event, time = check_survival_target(y)
    no_cr = event & (time <= RESPONSE_DAY)
    after = time > RESPONSE_DAY
    known = no_cr | after
    k = len(CR_COVARIATES)
    cr = LogisticRegression(C=np.inf, max_iter=1_000).fit(covariates[known, :k], ~no_cr[known])
    post = CoxPHSurvivalAnalysis(ties="breslow").fit(covariates[after], y[after])
    curves = post.predict_survival_function(test_covariates, return_array=True)
    s_post = step_survival(post.unique_times_, curves, times)
    p_cr = cr.predict_proba(test_covariates[:, :k])[:, 1]
    return np.where(times < RESPONSE_DAY, 1.0, p_cr[:, None] * s_post)


def fit_replicate(
    r: int,
    n_train: int,
    names: tuple[str, ...],
    test_features: Any,
    n_bootstrap: int,
    comparison_intervals: bool = True,
    test_covariates: np.ndarray | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Fit the named candidates on replicate r and predict the test cohort (point, and intervals where measured).

    :data:`ORACLE_FORM` among ``names`` needs ``test_covariates`` (:func:`true_covariates` of the test cohort).
    """
    warnings.simplefilter("ignore")
    cohort = simulate_cohort(n_train, seed=TRAIN_SEED_BASE + r)
    y = survival_target(cohort.records)
    times = np.array(list(HORIZONS.values()))
    out: dict[str, dict[str, np.ndarray]] = {}
    if ORACLE_FORM in names and test_covariates is not None:
        started = time.perf_counter()
        train_covariates = true_covariates(n_train, TRAIN_SEED_BASE + r)
        point = oracle_form_survival(train_covariates, y, test_covariates, times)
        out[ORACLE_FORM] = {"point": point, "seconds": np.array(time.perf_counter() - started)}
    for name in (name for name in names if name in CANDIDATES):
        started = time.perf_counter()
        pipeline = final_pipeline(CANDIDATES[name][1](r).fit(cohort.records, y))
        # scored as carrisk predicts (EFSModel.predict_efs): a test patient whose unknown level was rare or unseen
        # in training is predicted as the mixture over the known levels, intervals mixed alike
        features = pipeline.named_steps["features"]
        counts = level_counts(features.categorize(cohort.records))
        frame = test_features.reset_index(drop=True)
        expanded, weights, _ = marginalisation_plan(frame, features.categorize(frame), counts)
        design = pipeline[:-1].transform(expanded)
        expanded_point = pipeline[-1].predict_survival_matrix(design, times)
        point = np.asarray(weights @ expanded_point)
        out[name] = {"point": point, "seconds": np.array(time.perf_counter() - started)}
        train_design = pipeline[:-1].transform(cohort.records) if name in INTERVALS and n_bootstrap else None
        refits: dict[float, list[Any]] = {}
        variants = INTERVALS.get(name, {}) if n_bootstrap else {}
        if not comparison_intervals:  # only the interval carrisk ships
            variants = {v: spec for v, spec in variants.items() if v == SHIPPED_INTERVAL}
        for variant, (method, divisor) in variants.items():
            if divisor not in refits:
                refits[divisor] = bootstrap_refits(pipeline[-1], train_design, y, n_bootstrap, r, divisor)
            lo, hi = bootstrap_interval(refits[divisor], design, times, expanded_point, method=method)
            lo, hi = mixture_interval(weights, lo, hi)
            # the reported interval always contains the point prediction (as predict_efs does; the centred
            # interval does by construction, the share it had to be moved is recorded)
            out[name][f"{variant}_moved"] = np.array(np.mean((lo > point) | (hi < point)))
            out[name][f"{variant}_lo"], out[name][f"{variant}_hi"] = np.minimum(lo, point), np.maximum(hi, point)
    return out


#: Blinatumomab status as recorded (what the model sees), as ``ClinicalFeatures`` reads it.
RECORDED_BLINA = ("naive", "responder", "nonresponder", "exposed_unknown")


def _groups(cohort: Any) -> dict[str, np.ndarray]:
    """Masks of the test patients: true (latent) groups, and the blinatumomab status as recorded."""
    truth = cohort.truth
    blina = truth["true_blina_group"].to_numpy()
    high = truth["true_high_burden"].to_numpy(dtype=bool)
    cd19 = truth["true_cd19_dim_partial"].to_numpy(dtype=bool)
    groups = {f"blina_{g}": blina == g for g in BLINA_GROUPS}
    groups |= {"burden_high": high, "burden_low": ~high, "cd19_dim_partial": cd19, "cd19_bright": ~cd19}
    groups |= {
        f"blina_{g}_x_burden_{b}": (blina == g) & (high == (b == "high")) for g in BLINA_GROUPS for b in ("low", "high")
    }
    recorded = ClinicalFeatures().categorize(cohort.records)["blina_status"].astype(str).to_numpy()
    groups |= {f"recorded_{g}": recorded == g for g in RECORDED_BLINA}
    groups |= {
        f"recorded_{g}_true_nonresponder": (recorded == g) & (blina == "nonresponder")
        for g in ("nonresponder", "exposed_unknown")
    }
    return {name: mask for name, mask in groups.items() if mask.any()}


def score(
    pred: dict[str, np.ndarray], truth: np.ndarray, groups: dict[str, np.ndarray], event: np.ndarray, days: np.ndarray
) -> dict[str, Any]:
    """Accuracy of one replicate's predictions against the truth (both horizons)."""
    row: dict[str, Any] = {}
    for k, horizon in enumerate(HORIZONS):
        error = pred["point"][:, k] - truth[:, k]
        row[f"rmse_{horizon}"] = float(np.sqrt(np.mean(error**2)))
        row[f"mae_{horizon}"] = float(np.mean(np.abs(error)))
        row[f"mean_error_{horizon}"] = {g: float(error[mask].mean()) for g, mask in groups.items()}
        for method in INTERVAL_VARIANTS:
            if f"{method}_lo" in pred:
                lo, hi = pred[f"{method}_lo"][:, k], pred[f"{method}_hi"][:, k]
                row[f"{method}_coverage_{horizon}"] = float(np.mean((lo <= truth[:, k]) & (truth[:, k] <= hi)))
                row[f"{method}_width_{horizon}"] = float(np.mean(hi - lo))
                if horizon == "6mo":
                    row[f"{method}_moved"] = float(pred[f"{method}_moved"])
    risk = -np.log(np.clip(pred["point"][:, 1], 1e-12, None))
    row["harrell_c"] = harrell_c(event, days, risk)
    return row


def _mean_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    keys = {key: value for row in rows for key, value in row.items()}
    for key, value in keys.items():
        if isinstance(value, dict):
            out[key] = {g: float(np.mean([r[key][g] for r in rows])) for g in value}
        else:
            values = [r[key] for r in rows if key in r]  # interval keys exist on the replicates that measured them
            out[key] = float(np.mean(values))
            out[f"{key}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return out


#: Full mode: replicates of the expensive comparison candidates (the rest get all of them), said in the JSON.
FEWER_REPLICATES = {"rsf": 5, "rsf_all_features": 5, "stacked": 5, "two_part_equal": 5}


def _replicates_of(name: str, replicates: int, comparisons: int) -> int:
    return comparisons if name in FEWER_REPLICATES else replicates


def run(
    settings: _common.Settings,
    out: Path,
    replicates: int | None = None,
    comparisons: int | None = None,
    n_bootstrap: int | None = None,
    curve_replicates: int | None = None,
) -> dict[str, Any]:
    """Fit every candidate on the replicate cohorts, score against the truth, write truth.json/.md and plots.

    ``comparisons`` = replicates on which the comparison candidates (forests, stack, equal weights) and the
    comparison intervals (coxph, the shrunken bootstrap) are fitted; the others fit the main candidates and the
    shipped interval only. The main table is written as soon as it is complete; the learning curve after it.
    """
    quick = settings.mode == "quick"
    default_replicates, n_test, default_bootstrap = (2, 1_000, 20) if quick else (20, 5_000, 100)
    replicates = replicates or default_replicates
    n_bootstrap = n_bootstrap or default_bootstrap
    comparisons = replicates if quick else min(replicates, comparisons or max(FEWER_REPLICATES.values()))
    sizes = (200, 1_000) if quick else (200, 1_000, 2_000)
    curve_replicates = curve_replicates or (1 if quick else 3)
    cohort, features, truth = _test_cohort(n_test)
    test_covariates = true_covariates(n_test, TEST_SEED)
    groups = _groups(cohort)
    event = cohort.records["efs_event"].to_numpy(dtype=int).astype(bool)
    days = cohort.records["efs_days"].to_numpy(dtype=float)
    started = time.perf_counter()
    per_replicate = [
        (*(name for name in CANDIDATES if r < _replicates_of(name, replicates, comparisons)), ORACLE_FORM)
        for r in range(replicates)
    ]
    fits = []
    with joblib.parallel_config(backend="loky", n_jobs=_common.N_CORES):
        jobs = joblib.Parallel(return_as="generator")(
            joblib.delayed(fit_replicate)(
                r, N_TRAIN, per_replicate[r], features, n_bootstrap, r < comparisons, test_covariates
            )
            for r in range(replicates)
        )
        for fit in jobs:
            fits.append(fit)
            _common.log(f"truth: replicate {len(fits)}/{replicates} ({time.perf_counter() - started:.0f} s)")
    table = {}
    for name in [*CANDIDATES, ORACLE_FORM]:
        present = [fit for fit in fits if name in fit]
        rows = [score(fit[name], truth, groups, event, days) for fit in present]
        per_replicate = {g: [row["mean_error_6mo"][f"blina_{g}"] for row in rows] for g in BLINA_GROUPS}
        table[name] = _mean_rows(rows) | {
            "description": CANDIDATES[name][0] if name in CANDIDATES else ORACLE_FORM_DESCRIPTION,
            "replicates": len(present),
            "fit_seconds_median": float(np.median([fit[name]["seconds"] for fit in present])),
            "blina_mean_error_6mo_per_replicate": per_replicate,
            # how often one fit (as the shipped model is) has every blinatumomab group within the shipped target
            "share_every_blina_group_within_0.06": float(
                np.mean(np.all(np.abs(np.array(list(per_replicate.values()))) <= SHIPPED_GROUP_TARGET, axis=0))
            ),
        }
    oracle = score({"point": truth}, truth, groups, event, days)
    table["oracle"] = oracle | {"description": "the true EFS (best possible)", "replicates": 0}
    result = _common.header(
        "truth",
        settings,
        {"train": TRAIN_SEED_BASE, "test": TEST_SEED, "models": 0, "bootstrap": 0},
    ) | {
        "setup": {
            "replicates": replicates,
            "replicates_per_candidate": {name: row["replicates"] for name, row in table.items()},
            "n_train": N_TRAIN,
            "train": f"simulate_cohort(n, seed={TRAIN_SEED_BASE} + r); every model seeded with r",
            "test": f"simulate_cohort({n_test}, seed={TEST_SEED}), outcomes dropped; truth = cohort.truth",
            "bootstrap": f"{n_bootstrap} refits of the final estimator (seed r), 95%, logit scale: percentile = "
            "the model's own bootstrap (refits at the chosen penalties); unshrunk = percentile of refits at 1/100 "
            "of the chosen penalties, moved to contain the point; centred (shipped) = the spread of refits at "
            f"1/{INTERVAL_PENALTY_DIVISOR:g} of the penalties around their median, moved onto the point "
            "(carrisk.bootstrap); centred_30 = the same at 1/30; moved = share of patients whose interval had to "
            "be moved to contain the point",
            "comparison_replicates": comparisons,
            "comparison_intervals": "all variants on the comparison replicates; the shipped (centred) interval of "
            "every candidate that has it on every replicate",
            "default_candidate": DEFAULT_CANDIDATE,
            "learning_curve": {"sizes": [*sizes, N_TRAIN], "replicates_per_size": curve_replicates},
            "seconds": time.perf_counter() - started,
        },
        "oracle_c": oracle_concordance(cohort),
        "group_sizes": {name: int(mask.sum()) for name, mask in groups.items()},
        "true_efs_6mo_sd": float(truth[:, 0].std()),
        "candidates": table,
        "learning_curve": {},
    }
    _write(result, fits[0], truth, cohort, out)
    curve: dict[str, dict[str, Any]] = {
        name: {
            str(N_TRAIN): {key: table[name][key] for key in ("rmse_6mo", "harrell_c", "replicates")},
        }
        for name in LEARNING_CANDIDATES
    }
    with joblib.parallel_config(backend="loky", n_jobs=_common.N_CORES):
        jobs_list = [(n, r) for n in sizes for r in range(curve_replicates)]
        curve_fits = joblib.Parallel()(
            joblib.delayed(fit_replicate)(r, n, LEARNING_CANDIDATES, features, 0, False, test_covariates)
            for n, r in jobs_list
        )
    for n in sizes:
        for name in LEARNING_CANDIDATES:
            rows = [
                score(fit[name], truth, groups, event, days) for (m, _), fit in zip(jobs_list, curve_fits) if m == n
            ]
            curve[name][str(n)] = {
                "rmse_6mo": float(np.mean([r["rmse_6mo"] for r in rows])),
                "harrell_c": float(np.mean([r["harrell_c"] for r in rows])),
                "replicates": len(rows),
            }
    result["learning_curve"] = {
        name: dict(sorted(per.items(), key=lambda kv: int(kv[0]))) for name, per in curve.items()
    }
    limit_n = 5_000 if quick else LIMIT_N
    limit_fit = fit_replicate(0, limit_n, LIMIT_CANDIDATES, features, 0, False, test_covariates)
    result["limit"] = {
        "n_train": limit_n,
        "train": f"simulate_cohort({limit_n}, seed={TRAIN_SEED_BASE})",
        "candidates": {name: score(limit_fit[name], truth, groups, event, days) for name in LIMIT_CANDIDATES},
    }
    result["setup"]["seconds"] = time.perf_counter() - started
    _write(result, fits[0], truth, cohort, out)
    _common.log(f"truth: done in {result['setup']['seconds']:.0f} s")
    return result


def _write(result: dict[str, Any], fit: dict[str, Any], truth: np.ndarray, cohort: Any, out: Path) -> None:
    _common.write_json(out / "truth.json", result)
    atomic_write_text(out / "truth.md", markdown(result))
    _plots(fit, truth, cohort, result["learning_curve"], out)
    if out.resolve() == _common.RESULTS_DIR.resolve():
        update_readme(result)


README_START = (
    "<!-- truth:start (generated by python -m benchmarks --only truth from results/truth.json; do not edit) -->"
)
README_END = "<!-- truth:end -->"


def update_readme(result: dict[str, Any]) -> None:
    """Replace the README's truth block (between its markers) with the main table of ``result``."""
    readme = Path(__file__).parent.parent / "README.md"
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return
    table = markdown(result).split("\n\nMean error at 6 months in the blinatumomab x burden")[0].split("\n", 2)[2]
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    atomic_write_text(readme, f"{head}{README_START}\n{table.strip()}\n{README_END}{tail}")


def markdown(result: dict[str, Any]) -> str:
    """The truth table as markdown (also pasted into the README)."""
    setup = result["setup"]
    lines = [
        "# Truth benchmark (synthetic cohort; every number against the simulator's known EFS)",
        "",
        f"`python -m benchmarks{' --quick' if result['mode'] == 'quick' else ''} --only truth`, {result['date']}: "
        f"{setup['replicates']} training cohorts of n = {setup['n_train']}, test: {setup['test']}. "
        f"Means over replicates. Oracle Harrell's C on the test cohort {result['oracle_c']:.3f}; "
        f"sd of the true 6-month EFS {result['true_efs_6mo_sd']:.3f}.",
        "",
        "| model | replicates | RMSE 6 mo | MAE 6 mo | RMSE 12 mo | mean error 6 mo: naive / responder / nonresponder "
        "| high / low burden | CD19 dim-partial / bright | Harrell C | 95% interval covers true 6-mo EFS (width) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["candidates"].items():
        e = row["mean_error_6mo"]
        cover = (
            "; ".join(
                f"{v} {row[f'{v}_coverage_6mo']:.0%} ({row[f'{v}_width_6mo']:.2f}"
                + (f"; moved {row[f'{v}_moved']:.0%}" if row.get(f"{v}_moved", 0) >= 0.005 else "")
                + ")"
                for v in INTERVAL_VARIANTS
                if f"{v}_coverage_6mo" in row
            )
            or "-"
        )
        lines.append(
            f"| {name} | {row['replicates']} | {row['rmse_6mo']:.3f} | {row['mae_6mo']:.3f} | {row['rmse_12mo']:.3f} | "
            f"{e['blina_naive']:+.3f} / {e['blina_responder']:+.3f} / {e['blina_nonresponder']:+.3f} | "
            f"{e['burden_high']:+.3f} / {e['burden_low']:+.3f} | "
            f"{e['cd19_dim_partial']:+.3f} / {e['cd19_bright']:+.3f} | "
            f"{row['harrell_c']:.3f} | {cover} |"
        )
    lines += [
        "",
        "Mean error at 6 months by blinatumomab status *as recorded* (what the model sees; test patients in "
        "brackets), and in the true nonresponders by how their response was recorded:",
        "",
    ]
    recorded = [g for g in RECORDED_BLINA if f"recorded_{g}" in result.get("group_sizes", {})]
    sizes = result.get("group_sizes", {})
    split = ("recorded_nonresponder_true_nonresponder", "recorded_exposed_unknown_true_nonresponder")
    lines.append(
        "| model | "
        + " | ".join(f"{g.replace('_', ' ')} ({sizes[f'recorded_{g}']})" for g in recorded)
        + " | true nonresponders recorded as nonresponder / as response unknown ("
        + " / ".join(str(sizes.get(k, 0)) for k in split)
        + ") |"
    )
    lines.append("|---|" + "---|" * (len(recorded) + 1))
    for name, row in result["candidates"].items():
        e = row["mean_error_6mo"]
        if f"recorded_{recorded[0]}" not in e:
            continue
        lines.append(
            f"| {name} | "
            + " | ".join(f"{e[f'recorded_{g}']:+.3f}" for g in recorded)
            + " | "
            + " / ".join(f"{e[k]:+.3f}" if k in e else "-" for k in split)
            + " |"
        )
    if "limit" in result:
        limit = result["limit"]
        lines += [
            "",
            f"Limit on the recorded data: one training cohort of n = {limit['n_train']:,} ({limit['train']}), where "
            "estimation error is about 0; what error is left is the model form and what the records do not say:",
            "",
            "| model | RMSE 6 mo | mean error 6 mo: naive / responder / nonresponder (true groups) | "
            "recorded nonresponder / response unknown | Harrell C (oracle - C) |",
            "|---|---|---|---|---|",
        ]
        for name, row in limit["candidates"].items():
            e = row["mean_error_6mo"]
            lines.append(
                f"| {name} | {row['rmse_6mo']:.3f} | {e['blina_naive']:+.3f} / {e['blina_responder']:+.3f} / "
                f"{e['blina_nonresponder']:+.3f} | "
                + " / ".join(f"{e[k]:+.3f}" if k in e else "-" for k in split)
                + f" | {row['harrell_c']:.3f} ({result['oracle_c'] - row['harrell_c']:.3f}) |"
            )
    lines += ["", "Mean error at 6 months in the blinatumomab x burden cells:", ""]
    cells = [f"blina_{g}_x_burden_{b}" for g in BLINA_GROUPS for b in ("low", "high")]
    lines.append("| model | " + " | ".join(c.removeprefix("blina_").replace("_x_burden_", " / ") for c in cells) + " |")
    lines.append("|---|" + "---|" * len(cells))
    for name, row in result["candidates"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row['mean_error_6mo'][c]:+.3f}" for c in cells) + " |")
    default = result["candidates"].get(DEFAULT_CANDIDATE, {})
    if "share_every_blina_group_within_0.06" in default:
        per = default["blina_mean_error_6mo_per_replicate"]
        lines += [
            "",
            f"One fit at a time (as the shipped model is one): `{DEFAULT_CANDIDATE}` had every true blinatumomab "
            f"group's mean error within +-{SHIPPED_GROUP_TARGET} in "
            f"{default['share_every_blina_group_within_0.06']:.0%} of the {default['replicates']} replicates; "
            "nonresponders' mean error per replicate ranged "
            f"{min(per['nonresponder']):+.3f} to {max(per['nonresponder']):+.3f} "
            f"(sd {np.std(per['nonresponder'], ddof=1):.3f}).",
        ]
    lines += [
        "",
        f"Intervals: {setup['bootstrap']}. Replicates: {setup['comparison_intervals']} "
        f"({setup['comparison_replicates']} comparison replicates).",
        "",
        "Learning curve (RMSE vs true 6-month EFS / Harrell's C minus the oracle's "
        f"{result['oracle_c']:.3f}; replicates per size in brackets):",
        "",
    ]
    for name, per in result["learning_curve"].items():
        lines.append(
            f"- {name}: "
            + ", ".join(
                f"n={n} {v['rmse_6mo']:.3f} / {v['harrell_c'] - result['oracle_c']:+.3f} ({v['replicates']})"
                for n, v in per.items()
            )
        )
    lines += ["", "Models:", ""] + [f"- `{name}`: {row['description']}" for name, row in result["candidates"].items()]
    return "\n".join(lines) + "\n"


def _plots(
    fit: dict[str, dict[str, np.ndarray]], truth: np.ndarray, cohort: Any, curve: dict[str, Any], out: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blina = cohort.truth["true_blina_group"].to_numpy()
    shown = ("rsf", "coxnet", DEFAULT_CANDIDATE)
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 4.2), sharex=True, sharey=True)
    for ax, name in zip(axes, shown):
        for group, colour in zip(BLINA_GROUPS, ("tab:blue", "tab:green", "tab:red")):
            mask = blina == group
            ax.scatter(truth[mask, 0], fit[name]["point"][mask, 0], s=4, alpha=0.4, color=colour, label=group)
        ax.plot([0, 1], [0, 1], color="black", lw=0.8)
        ax.set_title(name)
        ax.set_xlabel("true 6-month EFS")
    axes[0].set_ylabel("predicted 6-month EFS")
    axes[0].legend(title="blinatumomab", markerscale=3)
    fig.suptitle("Predicted vs true EFS, replicate 0 (synthetic)")
    fig.tight_layout()
    fig.savefig(out / "truth_scatter.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, per in curve.items():
        sizes = [int(n) for n in per]
        ax.plot(sizes, [per[str(n)]["rmse_6mo"] for n in sizes], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("training patients")
    ax.set_ylabel("RMSE vs true 6-month EFS")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "truth_learning_curve.png", dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.truth", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--replicates", type=int, default=None, help="override the mode's number of replicates")
    parser.add_argument("--comparisons", type=int, default=None, help="replicates with the comparison candidates")
    parser.add_argument("--bootstrap", type=int, default=None, help="bootstrap refits per interval")
    parser.add_argument("--curve-replicates", type=int, default=None, help="replicates per learning-curve size")
    parser.add_argument("--out", type=Path, default=_common.RESULTS_DIR)
    parser.add_argument("--readme-only", action="store_true", help="only rewrite the README block from truth.json")
    args = parser.parse_args(argv)
    if args.readme_only:
        update_readme(_common.read_json(args.out / "truth.json") or {})
        return
    settings = _common.QUICK if args.quick else _common.FULL
    result = run(settings, args.out, args.replicates, args.comparisons, args.bootstrap, args.curve_replicates)
    print(markdown(result))


if __name__ == "__main__":
    main()
