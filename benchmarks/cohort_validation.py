"""Validate the calibrated cohort simulator against the published figures over replicate cohorts of n=420.

Usage::

    .venv/bin/python benchmarks/cohort_validation.py [--replicates 200]

For seeds 0..R-1 a cohort of 420 patients is simulated (canonical spellings: the patients are the same as in messy
mode, only the spelling differs), and every published statistic is estimated as the study would: proportions by
counting (CR rates among the patients evaluable for response), 6- and 12-month EFS by Kaplan-Meier (lifelines
``KaplanMeierFitter``). The table gives, per target, the published value and 95 % CI, the simulated mean and
2.5-97.5 % range over replicates, the share of replicates whose estimate falls in the published CI, and PASS/FAIL
of |mean - published| against the tolerance. It also reports the oracle concordance (Harrell's C of the true
risk). Results go to ``benchmarks/results/cohort_validation.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from scipy import stats

from carrisk.simulate import (
    SIX_MONTHS_DAYS,
    TWELVE_MONTHS_DAYS,
    load_simulation_params,
    oracle_concordance,
    simulate_cohort,
)

REPO = Path(__file__).resolve().parents[1]
PARAMS_PATH = REPO / "carrisk" / "data" / "simulation_params.json"
RESULTS = REPO / "benchmarks" / "results"
N_PATIENTS = 420

# Published counts behind proportion targets: their exact (Clopper-Pearson) 95 % CI is derived here.
PUBLISHED_COUNTS = {
    "cr_rate_nonresponder": (20, 31),
    "cr_rate_responder": (39, 42),
    "cr_rate_naive": (317, 339),
    "relapse_share_cd19pos": (83, 166),
    "relapse_share_cd19neg": (68, 166),
    "relapse_share_lineage_switch": (12, 166),
    "relapse_fraction": (166, 420),
    "blina_exposed": (77, 420),
    "evaluable_fraction": (412, 420),
}
PHENOTYPES = {"cd19pos": "CD19+", "cd19neg": "CD19-", "lineage_switch": "lineage switch"}


def _km_at(durations: np.ndarray, events: np.ndarray, horizon: float) -> float:
    if durations.size == 0:
        return float("nan")
    fitter = KaplanMeierFitter().fit(durations, events)
    return float(fitter.survival_function_at_times(horizon).iloc[0])


def cohort_statistics(records: pd.DataFrame) -> dict[str, float]:
    """Every target statistic as the study would estimate it, from canonical (``messy=False``) records."""
    exposed = records["blina_exposed"].to_numpy(dtype=bool)
    response = records["blina_response"].to_numpy(dtype=object)
    groups = {"naive": ~exposed, "responder": response == "CR", "nonresponder": response == "NR"}
    days = records["efs_days"].to_numpy(dtype=float)
    event = records["efs_event"].to_numpy(dtype=int)
    cr = records["day28_cr"].to_numpy(dtype=float, na_value=np.nan)
    evaluable = ~np.isnan(cr)  # CR rates among patients evaluable for response, as the study
    out: dict[str, float] = {"evaluable_fraction": float(evaluable.mean())}
    for name, mask in groups.items():
        among = mask & evaluable
        out[f"cr_rate_{name}"] = float(cr[among].mean()) if among.any() else float("nan")
        out[f"efs_6mo_{name}"] = _km_at(days[mask], event[mask], SIX_MONTHS_DAYS)
    out["efs_12mo_overall"] = _km_at(days, event, TWELVE_MONTHS_DAYS)
    dim_partial = records["cd19_expression"].isin(["dim", "partial"]).to_numpy()
    out["cd19_dim_partial_exposed"] = float(dim_partial[exposed].mean())
    out["cd19_dim_partial_naive"] = float(dim_partial[~exposed].mean())
    phenotype = records["relapse_phenotype"].to_numpy(dtype=object)
    relapsed = phenotype != "none"
    out["relapse_fraction"] = float(relapsed.mean())
    for name, label in PHENOTYPES.items():
        out[f"relapse_share_{name}"] = float((phenotype == label).sum() / max(relapsed.sum(), 1))
    out["death_in_remission_fraction"] = float(((event == 1) & (cr == 1) & ~relapsed).mean())
    age = records["age_years"].to_numpy(dtype=float)
    out["age_q25"], out["age_median"], out["age_q75"] = (float(v) for v in np.quantile(age, [0.25, 0.5, 0.75]))
    out["blina_exposed"] = float(exposed.mean())
    return out


def replicate_statistics(seed: int) -> dict[str, float]:
    """Every target statistic on one simulated cohort of 420, plus its oracle concordance."""
    cohort = simulate_cohort(N_PATIENTS, seed=seed, messy=False)
    return cohort_statistics(cohort.records) | {"oracle_concordance": oracle_concordance(cohort)}


def _published_ci(name: str, target: dict[str, Any]) -> tuple[float, float, str] | None:
    if "ci" in target:
        return float(target["ci"][0]), float(target["ci"][1]), "published"
    if name in PUBLISHED_COUNTS:
        k, n = PUBLISHED_COUNTS[name]
        ci = stats.binomtest(k, n).proportion_ci(method="exact")
        return float(ci.low), float(ci.high), "derived (exact binomial)"
    return None


def summarise(per_replicate: pd.DataFrame, targets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per target: published value/CI, simulated mean and 95 % range, CI coverage, PASS/FAIL."""
    rows = []
    for name, target in targets.items():
        values = per_replicate[name].dropna().to_numpy(dtype=float)
        mean = float(values.mean())
        low, high = (float(v) for v in np.quantile(values, [0.025, 0.975]))
        ci = _published_ci(name, target)
        inside = float(np.mean((values >= ci[0]) & (values <= ci[1]))) if ci else None
        if "range" in target:
            passed = target["range"][0] <= mean <= target["range"][1]
            criterion = f"in [{target['range'][0]:.2f}, {target['range'][1]:.2f}]"
        else:
            passed = abs(mean - target["value"]) <= target["tolerance"]
            criterion = f"abs diff <= {target['tolerance']:g}"
        rows.append(
            {
                "target": name,
                "published": float(target["value"]),
                "ci_low": ci[0] if ci else None,
                "ci_high": ci[1] if ci else None,
                "ci_kind": ci[2] if ci else None,
                "simulated_mean": mean,
                "simulated_p2_5": low,
                "simulated_p97_5": high,
                "share_in_published_ci": inside,
                "criterion": criterion,
                "result": "PASS" if passed else "FAIL",
                "source": target["source"],
                "replicates_used": int(values.size),
            }
        )
    return rows


def _fmt(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def render_markdown(
    rows: list[dict[str, Any]], oracle: dict[str, float], document: dict[str, Any], meta: dict[str, Any]
) -> str:
    lines = [
        "# Cohort simulator validation",
        "",
        f"Generated by `benchmarks/cohort_validation.py` on {meta['date']}: {meta['replicates']} replicate cohorts "
        f"of n={N_PATIENTS} (seeds 0..{meta['replicates'] - 1}), parameters fitted on {document['fitted_on']} by "
        f"`{document['script']}` (seed {document['seed']}). Runtime {meta['runtime_seconds']:.1f} s.",
        "",
        "Proportions are counted; 6- and 12-month EFS are Kaplan-Meier estimates (lifelines) with the simulated "
        "censoring (accrual 2012-2019, cut-off 2020-06-30, loss to follow-up). Groups are the recorded "
        "blinatumomab groups (exposed with unknown response excluded). CIs marked *derived* are exact binomial "
        "intervals from the published counts. PASS = |simulated mean - published| within the tolerance.",
        "",
        "| target | published | 95% CI | simulated mean | sim 2.5-97.5% | share in CI | criterion | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ci = ""
        if row["ci_low"] is not None:
            derived = " (derived)" if row["ci_kind"] != "published" else ""
            ci = f"{row['ci_low']:.3f}-{row['ci_high']:.3f}{derived}"
        digits = 1 if row["target"].startswith("age") else 3
        lines.append(
            f"| {row['target']} | {_fmt(row['published'], digits)} | {ci} | {_fmt(row['simulated_mean'], digits)} "
            f"| {_fmt(row['simulated_p2_5'], digits)}-{_fmt(row['simulated_p97_5'], digits)} "
            f"| {_fmt(row['share_in_published_ci'], 2)} | {row['criterion']} | {row['result']} |"
        )
    n_pass = sum(row["result"] == "PASS" for row in rows)
    lines += [
        "",
        f"**{n_pass}/{len(rows)} targets PASS.**",
        "",
        f"Oracle concordance (Harrell's C of the true risk -log S(12 mo) against observed EFS): mean "
        f"{oracle['mean']:.3f} (2.5-97.5%: {oracle['p2_5']:.3f}-{oracle['p97_5']:.3f}). No model can be expected "
        "to beat this on cohorts of this size.",
        "",
        "`death_in_remission_fraction` is not a published figure: it is an assumed target (non-relapse mortality "
        "~5-10 %) that keeps long-horizon EFS near the ELIANA anchor (3-year EFS 44 %). Age quartiles come from a "
        "Beta on 1-30 years, which cannot pass exactly through all three published quartiles (least-squares fit).",
        "",
        "## Fitted parameters",
        "",
        "| parameter | value |",
        "|---|---|",
    ]
    params = document["parameters"]
    lines += [f"| {name} | {params[name]:.4f} |" for name in document["free_parameters"]]
    lines += [
        "",
        "## Assumptions (values the paper does not print)",
        "",
        "| parameter | value | reason |",
        "|---|---|---|",
    ]
    for name, reason in document["assumptions"].items():
        value = params[name]
        if isinstance(value, float):
            shown = f"{value:.4g}"
        elif isinstance(value, dict):
            shown = ", ".join(f"{key} {val:g}" for key, val in value.items())
        elif isinstance(value, list):
            shown = "[" + ", ".join(f"{val:g}" for val in value) + "]"
        else:
            shown = str(value)
        lines.append(f"| {name} | {shown} | {reason} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200)
    args = parser.parse_args()

    started = time.perf_counter()
    document = json.loads(PARAMS_PATH.read_text(encoding="utf-8"))
    if document["parameters"] != load_simulation_params():
        raise RuntimeError("carrisk resolves a different simulation_params.json than this repository's.")
    per_replicate = pd.DataFrame([replicate_statistics(seed) for seed in range(args.replicates)])
    rows = summarise(per_replicate, document["targets"])
    concordance = per_replicate["oracle_concordance"].to_numpy()
    oracle = {
        "mean": float(concordance.mean()),
        "p2_5": float(np.quantile(concordance, 0.025)),
        "p97_5": float(np.quantile(concordance, 0.975)),
    }
    meta = {
        "date": dt.date.today().isoformat(),
        "replicates": args.replicates,
        "n_patients": N_PATIENTS,
        "runtime_seconds": time.perf_counter() - started,
    }

    header = f"{'target':30s} {'published':>9s} {'95% CI':>13s} {'sim mean':>9s} {'sim 2.5-97.5%':>15s} "
    print(header + f"{'in CI':>6s} {'result':>6s}")
    for row in rows:
        ci = f"{row['ci_low']:.3f}-{row['ci_high']:.3f}" if row["ci_low"] is not None else ""
        inside = _fmt(row["share_in_published_ci"], 2)
        print(
            f"{row['target']:30s} {row['published']:9.3f} {ci:>13s} {row['simulated_mean']:9.3f} "
            f"{row['simulated_p2_5']:7.3f}-{row['simulated_p97_5']:<7.3f} {inside:>6s} {row['result']:>6s}"
        )
    print(f"oracle concordance: mean {oracle['mean']:.3f} ({oracle['p2_5']:.3f}-{oracle['p97_5']:.3f})")
    print(f"runtime {meta['runtime_seconds']:.1f} s")

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cohort_validation.md").write_text(render_markdown(rows, oracle, document, meta), encoding="utf-8")
    payload = {**meta, "targets": rows, "oracle_concordance": oracle, "params_fitted_on": document["fitted_on"]}
    (RESULTS / "cohort_validation.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS / 'cohort_validation.md'} and .json")


if __name__ == "__main__":
    main()
