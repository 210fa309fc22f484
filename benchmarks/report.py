"""SUMMARY.md and the plots, generated from the JSON files in ``benchmarks/results`` (and nothing else).

Every number printed here is read from a result file; a part that has not been run is said to be missing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks import _common
from carrisk._io import atomic_write_text

CINDEX_PLOT = "accuracy_cindex.png"
FIT_TIME_PLOT = "speed_fit_time.png"
MEMORY_PLOT = "speed_memory.png"
IMPL_LABELS = {
    "carrisk": "carrisk SurvivalForest (200-point time grid)",
    "sksurv_low_memory_false": "sksurv RSF low_memory=False",
    "sksurv_low_memory_true": "sksurv RSF low_memory=True",
    "ranger": "R ranger",
}


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _interval(summary: dict[str, Any] | None, digits: int = 3, signed: bool = False) -> str:
    if not summary or summary.get("mean") is None:
        return "n/a"
    lo, hi = summary.get("ci") or (None, None)
    fmt = f"{{:+.{digits}f}}" if signed else f"{{:.{digits}f}}"
    if lo is None or hi is None:
        return fmt.format(summary["mean"])
    return f"{fmt.format(summary['mean'])} [{fmt.format(lo)}, {fmt.format(hi)}]"


def _seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if value < 1 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _megabytes(size: float) -> str:
    megabytes = size / 1e6
    return f"{megabytes:,.0f}" if megabytes >= 10 else f"{megabytes:.2g}"


def _ratio(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}x" if value >= 1 else f"{value:.2g}x"


def _provenance(block: dict[str, Any]) -> str:
    m = block["machine"]
    return (
        f"*Mode `{block['mode']}`, run {block['date']}; {m['processor']}, {m['cpu_count']} CPUs, "
        f"{m['total_memory_gb']} GB RAM"
        + (f", load average {m['load_average_1min']:g} at the start" if m.get("load_average_1min") is not None else "")
        + f"; {m['platform']}; scikit-survival {block['versions'].get('scikit-survival')}, "
        f"scikit-learn {block['versions'].get('scikit-learn')}, lifelines {block['versions'].get('lifelines')}, "
        f"xgboost {block['versions'].get('xgboost')}"
        + (f", R: {block['versions']['R']}" if "R" in block["versions"] else "")
        + ".*"
    )


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# ----- accuracy -------------------------------------------------------------------------------------------------
def _model_cell(dataset: dict[str, Any], key: str, metric: str) -> str:
    model = dataset["models"][key]
    cell = _interval(model["metrics"].get(metric))
    failed = model["n_failed_folds"]
    if failed == dataset["n_splits"]:
        return f"failed ({model['errors'][0].split(': ', 1)[-1][:60]})"
    if failed:
        cell += f" ({failed}/{dataset['n_splits']} folds failed)"
    warned = model.get("n_folds_convergence_warning", 0)
    if warned:
        cell += f" ({warned}/{dataset['n_splits']} fits did not converge)"
    return cell


def accuracy_section(acc: dict[str, Any]) -> list[str]:
    datasets = acc["datasets"]
    models = list(next(iter(datasets.values()))["models"]) if datasets else []
    labels = acc["design"]["models"]
    s = acc["settings"]
    lines = ["## Accuracy", "", _provenance(acc), ""]
    if not acc.get("complete"):
        lines += ["**Incomplete: the run is still going or stopped; datasets so far are shown.**", ""]
    lines += [
        f"Outer folds: {acc['design']['outer_cv']} ({s['folds']} x {s['repeats']} = {s['folds'] * s['repeats']} "
        "test folds per model). Cells: mean over folds [2.5th, 97.5th percentile of fold values]. "
        f"{acc['design']['metrics']}.",
        "",
        "### Harrell's C",
        "",
    ]
    rows = []
    for name, d in datasets.items():
        row = [f"{name} (n={d['rows']}, {d['events']} events)"]
        row += [_model_cell(d, key, "harrell_c") for key in models]
        oracle = d.get("oracle")
        row.append(_interval(oracle["c_test_folds"]) if oracle else "")
        rows.append(row)
    lines += _table(["dataset", *[labels[k] for k in models], "oracle (true risk)"], rows)
    lines += ["", f"![Harrell's C per dataset and model]({CINDEX_PLOT})", ""]

    lines += ["### All metrics per dataset", ""]
    for name, d in datasets.items():
        horizons = list(d["horizons_days"])
        metrics = ["harrell_c", "uno_c", "ibs"] + [f"{m}_{h}" for h in horizons for m in ("auc", "ici")]
        header = ["model", "Harrell C", "Uno C", "IBS"]
        header += [f"{m} at {h} ({d['horizons_days'][h]:g} d)" for h in horizons for m in ("td-AUC", "ICI")]
        header.append("fit s (median)")
        rows = [
            [labels[k]] + [_model_cell(d, k, m) for m in metrics] + [_seconds(d["models"][k]["fit_seconds_median"])]
            for k in models
        ]
        lines += [f"**{name}**: horizon {d['horizon_rule']}; {d['ibs_rule']}."]
        if d["notes"]:
            lines += ["Notes: " + "; ".join(d["notes"]) + "."]
        lines += ["", *_table(header, rows), ""]

    lines += [
        "### Paired differences: carrisk minus the best peer",
        "",
        f"{acc['design']['paired']}. Per-fold differences, mean [2.5th, 97.5th percentile].",
        "",
    ]
    rows = []
    for name, d in datasets.items():
        for metric, best in d["best_peer"].items():
            if best is None:
                continue
            paired = d["paired_vs_best_peer"]
            rows.append(
                [name, metric, labels[best]]
                + [_interval(paired.get(k, {}).get(metric), signed=True) for k in ("carrisk_rsf", "carrisk_coxnet")]
            )
    lines += _table(["dataset", "metric", "best peer", "carrisk RSF - best", "carrisk Coxnet - best"], rows)

    lines += [
        "",
        "### Issue targets (reported, not asserted)",
        "",
        "The issue asks that carrisk's tuned RSF and Coxnet be at least as good as scikit-survival's RSF and Cox "
        "model (Harrell's C). Differences are per fold, mean [2.5th, 97.5th percentile]; 'yes' means the mean "
        "difference is >= 0.",
        "",
    ]
    rows = []
    for name, d in datasets.items():
        issue = d["issue_comparison"]
        quoted = issue.get("issue_values")
        row = [name, f"{quoted['sksurv_rsf']} / {quoted['sksurv_coxph']}" if quoted else "-"]
        row.append(
            f"{_num(d['models']['sksurv_rsf']['metrics']['harrell_c']['mean'])} / "
            f"{_num(d['models']['sksurv_coxph']['metrics']['harrell_c']['mean'])}"
        )
        for key in ("carrisk_rsf", "carrisk_coxnet"):
            row.append(_num(d["models"][key]["metrics"]["harrell_c"]["mean"]))
        for key, peer in (("carrisk_rsf", "sksurv_rsf"), ("carrisk_coxnet", "sksurv_coxph")):
            diff = issue[f"{key}_minus_{peer}"]
            verdict = "n/a" if diff["mean"] is None else ("yes" if diff["mean"] >= 0 else "no")
            row.append(f"{_interval(diff, signed=True)} {verdict}")
        rows.append(row)
    lines += _table(
        [
            "dataset",
            "issue: sksurv RSF / CoxPH",
            "here: sksurv RSF / CoxPH",
            "carrisk RSF",
            "carrisk Coxnet",
            "RSF - sksurv RSF",
            "Coxnet - sksurv CoxPH",
        ],
        rows,
    )
    simulated = datasets.get("simulated", {}).get("oracle")
    if simulated:
        lines += [
            "",
            f"**Simulated cohort vs the oracle** (Harrell's C of the true risk; target: carrisk within "
            f"{simulated['tolerance']} of it). Oracle on the whole cohort: {_num(simulated['c_full_cohort'])}; "
            f"on the test folds: {_interval(simulated['c_test_folds'])}.",
            "",
        ]
        rows = []
        for key in ("carrisk_rsf", "carrisk_coxnet"):
            gap = simulated[f"{key}_minus_oracle"]
            rows.append([labels[key], _interval(gap, signed=True), "yes" if gap["within_tolerance"] else "no"])
        lines += _table(["model", "C - oracle C (per fold)", f"within {simulated['tolerance']}"], rows)
    failures = [
        f"- {name} / {labels[k]}: " + "; ".join(d["models"][k]["errors"][:3])
        for name, d in datasets.items()
        for k in models
        if d["models"][k]["errors"]
    ]
    lines += ["", "### Failures", ""] + (failures or ["None: every model produced every metric on every fold."])
    warned = [
        f"- {name} / {labels[k]}: {d['models'][k]['n_folds_convergence_warning']} of {d['n_splits']} folds: "
        + "; ".join(d["models"][k]["convergence_warnings"])
        for name, d in datasets.items()
        for k in models
        if d["models"][k].get("n_folds_convergence_warning")
    ]
    if "n_folds_convergence_warning" in next(iter(datasets.values()))["models"][models[0]]:
        lines += ["", "Fits that warned they did not converge (their metrics are kept and flagged):", ""]
        lines += warned or ["None."]
    return [*lines, ""]


def plot_cindex(acc: dict[str, Any], path: Path) -> None:
    datasets = acc["datasets"]
    labels = acc["design"]["models"]
    cols = 3
    rows = math.ceil(len(datasets) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (name, d) in zip(axes.flat, datasets.items()):
        keys = list(d["models"])[::-1]
        for y, key in enumerate(keys):
            summary = d["models"][key]["metrics"]["harrell_c"]
            if summary["mean"] is None:
                ax.text(0.5, y, "failed", transform=ax.get_yaxis_transform(), va="center", color="red")
                continue
            lo, hi = summary["ci"]
            color = "tab:blue" if key.startswith("carrisk") else "tab:gray"
            ax.errorbar(summary["mean"], y, xerr=[[summary["mean"] - lo], [hi - summary["mean"]]], fmt="o", color=color)
        if d.get("oracle"):
            ax.axvline(d["oracle"]["c_test_folds"]["mean"], color="tab:green", ls="--", label="oracle (true risk)")
            ax.legend(loc="best", fontsize=7)
        ax.set_yticks(range(len(keys)), [labels[k] for k in keys], fontsize=7)
        ax.set_title(f"{name} (n={d['rows']})", fontsize=9)
        ax.set_xlabel("Harrell's C (mean, 2.5-97.5% of folds)", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(datasets) :]:
        ax.axis("off")
    fig.suptitle(f"Harrell's C, {acc['settings']['folds']}-fold x {acc['settings']['repeats']} ({acc['mode']} mode)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----- speed ----------------------------------------------------------------------------------------------------
def nested_cv_section(block: dict[str, Any] | None) -> list[str]:
    if block is None:
        missing = "nested_cv.json is missing: run `python -m benchmarks --only nested_cv`."
        return ["## Nested cross-validation", "", missing, ""]
    nested = block["nested_cv"]
    target = nested["target_seconds"]
    return [
        "## Nested cross-validation",
        "",
        _provenance(block),
        "",
        f"{nested['setup']}: median **{_seconds(nested['seconds_median'])} s** over {len(nested['seconds_all'])} "
        f"run(s) ({', '.join(_seconds(s) for s in nested['seconds_all'])} s); issue target "
        + (f"< {target:.0f} s." if target else f"not applicable ({nested['target_note']}).")
        + " Harrell's C of this run: "
        + ", ".join(f"{m} {_num(c)}" for m, c in nested["harrell_c_mean"].items())
        + ".",
        "",
    ]


def speed_section(speed: dict[str, Any]) -> list[str]:
    lines = ["## Speed and memory", "", _provenance(speed), ""]
    if speed.get("time_grid_targets"):
        lines += _grid_target_lines(speed["time_grid_targets"])
    forests = speed.get("forests")
    if not forests:
        return [*lines, "Forest timings: not in speed.json yet (the run is still going or stopped).", ""]
    fs = forests["forest_settings"]
    lines += [
        "### Random survival forests",
        "",
        *(
            ["**Incomplete: the run is still going or stopped; sizes so far are shown.**", ""]
            if forests.get("complete") is False
            else []
        ),
        f"Synthetic data ({forests['data']['features']} features, Weibull times, censoring "
        f"{forests['data']['censoring']}; censored share "
        + ", ".join(f"{float(v):.0%} at n={n}" for n, v in forests["data"]["censored_share"].items())
        + f"), held-out test set of {forests['data']['test_rows']} rows. {fs['n_estimators']} trees, "
        f"min_samples_leaf {fs['min_samples_leaf']}, {fs['max_features']} features per split, {fs['threads']} "
        f"threads. {forests['timing']}. Memory: {forests['memory']}. Limits: "
        f"{forests['limits']['seconds_per_configuration']:.0f} s per configuration, "
        f"{forests['limits']['memory_bytes'] / 1e9:.0f} GB.",
        "",
    ]
    rows = []
    for impl, by_n in forests["results"].items():
        for n, r in by_n.items():
            if "skipped" in r or "error" in r:
                est = r.get("estimate")
                detail = r.get("skipped") or r.get("error")
                estimate = (
                    f"estimate: {_seconds(est['fit_plus_predict_seconds'])} s, {est['peak_rss_bytes'] / 1e9:.1f} GB"
                    if est
                    else ""
                )
                rows.append(
                    [
                        f"{int(n):,}",
                        IMPL_LABELS[impl],
                        "skipped" if "skipped" in r else "failed",
                        "",
                        "",
                        "",
                        "",
                        "",
                        f"{detail} {estimate}".strip(),
                    ]
                )
                continue
            rows.append(
                [
                    f"{int(n):,}",
                    IMPL_LABELS[impl],
                    _seconds(r["fit_seconds_median"]),
                    _seconds(r.get("predict_seconds_median")),
                    f"{r['peak_rss_bytes_median'] / 1e9:.2f}",
                    _megabytes(r["model_bytes"]),
                    _num(r["c_harrell"], 4),
                    str(r.get("n_unique_times", "")),
                    f"{r['runs']} run(s)" + (f"; {r['note']}" if "note" in r else ""),
                ]
            )
    lines += _table(
        [
            "n",
            "implementation",
            "fit s",
            "predict s (5,000 rows)",
            "peak RSS GB",
            "model MB",
            "held-out C",
            "time points",
            "runs / note",
        ],
        rows,
    )
    lines += ["", f"![RSF fit time vs n]({FIT_TIME_PLOT}) ![Peak memory vs n]({MEMORY_PLOT})", ""]
    ratio_rows = []
    for impl, by_n in forests["ratios"].items():
        for n, r in by_n.items():
            ratio_rows.append(
                [f"{int(n):,}", IMPL_LABELS[impl]]
                + [_ratio(r.get(k)) for k in ("fit_seconds", "predict_seconds", "peak_rss", "model_bytes")]
            )
    lines += ["Peer / carrisk (same run, same data; > 1 means carrisk is faster or smaller):", ""]
    lines += _table(["n", "peer", "fit time", "predict time", "peak RSS", "model size"], ratio_rows)
    agreement = forests["c_agreement"]
    c_rows = [
        [f"{int(n):,}", IMPL_LABELS[impl], f"{diff:+.4f}"]
        for impl, by_n in agreement.get("differences", {}).items()
        for n, diff in by_n.items()
    ]
    lines += ["", f"Held-out C, carrisk (time grid) minus peer; target {agreement['target']}.", ""]
    if "largest_n_with_sksurv" in agreement:
        lines += [
            f"At the largest n where scikit-survival ran ({agreement['largest_n_with_sksurv']:,}): "
            f"{agreement['difference_at_largest_n']:+.4f} "
            f"({'within' if agreement['within_tolerance_at_largest_n'] else 'outside'} the tolerance)"
            + (f"; {agreement['note']}" if "note" in agreement else "")
            + ".",
            "",
        ]
    lines += _table(["n", "peer", "C difference"], c_rows)
    return [*lines, ""]


def _grid_target_lines(targets: dict[str, Any]) -> list[str]:
    """The issue's time-grid targets: one row per table, ratio and whether it meets the target."""
    lines = [
        "### Time grid vs scikit-survival's defaults (issue targets)",
        "",
        "carrisk's forest (`max_times='auto'`: 200 event-time quantiles) against scikit-survival's "
        "`RandomSurvivalForest(low_memory=False)`, same trees, leaf size 15, sqrt features, 2 threads, seed; "
        "targets: " + "; ".join(targets["targets"].values()) + ".",
        "",
    ]
    rows = []
    for name, entry in targets["datasets"].items():
        ours = entry["results"].get("carrisk", {})
        peer = entry["results"].get("sksurv_low_memory_false", {})
        if not entry.get("met"):
            note = entry.get("note", "")
            rows.append([name, f"{entry['train_rows']:,}", str(entry["n_estimators"]), note, *[""] * 5])
            continue
        r, met = entry["ratios"], entry["met"]

        def mark(ok: bool) -> str:
            return "met" if ok else "**not met**"

        rows.append(
            [
                name,
                f"{entry['train_rows']:,}",
                str(entry["n_estimators"]),
                f"{_seconds(peer['fit_seconds_median'])} / {_seconds(ours['fit_seconds_median'])} s = "
                f"{_ratio(r['fit_speedup'])} ({mark(met['fit_speedup'])})",
                f"{peer['peak_rss_bytes_median'] / 1e9:.2f} / {ours['peak_rss_bytes_median'] / 1e9:.2f} GB = "
                f"{_ratio(r['peak_rss_ratio'])} ({mark(met['peak_rss'])})",
                f"{peer['fit_rss_increase_bytes'] / 1e9:.2f} / {ours['fit_rss_increase_bytes'] / 1e9:.3f} GB = "
                f"{_ratio(r['fit_memory_increase_ratio'])} ({mark(met['fit_memory_increase'])})",
                f"{_megabytes(peer['model_bytes'])} / {_megabytes(ours['model_bytes'])} MB = "
                f"{_ratio(r['model_size_ratio'])} ({mark(met['model_size'])})",
                f"{_num(peer['c_harrell'], 4)} / {_num(ours['c_harrell'], 4)}: {r['c_difference']:+.4f} "
                f"({mark(met['c'])})",
                f"{peer.get('n_unique_times', '')} / {ours.get('n_unique_times', '')}",
            ]
        )
    lines += _table(
        [
            "table",
            "training rows",
            "trees",
            "fit time (sksurv / carrisk)",
            "peak RSS",
            "memory the fit added",
            "model size",
            "held-out C (sksurv / carrisk)",
            "time points",
        ],
        rows,
    )
    return [*lines, ""]


def plot_speed(speed: dict[str, Any], fit_path: Path, memory_path: Path) -> None:
    results = speed["forests"]["results"]
    for path, key, est_key, scale, ylabel in (
        (fit_path, "fit_seconds_median", "fit_plus_predict_seconds", 1.0, "fit time (s)"),
        (memory_path, "peak_rss_bytes_median", "peak_rss_bytes", 1e9, "peak RSS of the process (GB)"),
    ):
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        for impl, by_n in results.items():
            measured = [(int(n), r[key] / scale) for n, r in by_n.items() if key in r]
            estimated = [
                (int(n), r["estimate"][est_key] / scale) for n, r in by_n.items() if "skipped" in r and "estimate" in r
            ]
            if not measured:
                continue
            (line,) = ax.plot(*zip(*measured), "o-", label=IMPL_LABELS[impl])
            if estimated:
                ax.plot(
                    *zip(*([measured[-1], *estimated])),
                    "o--",
                    mfc="none",
                    color=line.get_color(),
                    label=f"{IMPL_LABELS[impl]} (estimate, skipped)",
                )
        if key == "fit_seconds_median":
            ax.axhline(speed["forests"]["limits"]["seconds_per_configuration"], color="red", lw=0.8, ls=":")
        else:
            ax.axhline(speed["forests"]["limits"]["memory_bytes"] / 1e9, color="red", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        sizes = sorted({int(n) for by_n in results.values() for n in by_n})
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes], fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel("training rows n")
        ax.set_ylabel(ylabel)
        ax.set_title(
            f"Random survival forests, 100 trees ({speed['mode']} mode); dotted red: skip limit"
            + (" (fit + predict)" if key == "fit_seconds_median" else ""),
            fontsize=9,
        )
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, which="both")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


# ----- explain and latency --------------------------------------------------------------------------------------
def explain_section(explain: dict[str, Any] | None, run: dict[str, Any] | None) -> list[str]:
    lines = ["## Explanation speed", ""]
    if run and run.get("error"):
        lines += [f"**The last run of bench_explain.py failed** ({run['date']}): `{run['error'][-300:]}`", ""]
    if explain is None:
        return [*lines, "explain.json is missing: run `python -m benchmarks --only explain`.", ""]
    m = explain["machine"]
    lines += [
        f"*From `explain.json` written by `benchmarks/bench_explain.py` ({'quick' if explain['quick'] else 'full'} "
        f"mode, {explain['date']}; {m['platform']}, {m['cores_used']} cores). {explain['setup']['n_trees']}-tree "
        f"forest on GBSG2 ({explain['setup']['n_train']} rows, {explain['setup']['n_features']} columns, "
        f"{explain['setup']['n_unique_times']} time points); {explain['setup']['n_patients_explained']} patients "
        f"explained; {explain['setup']['timing']}.*",
        "",
    ]
    rows = []
    for mode, tasks in explain["forest_explainer"].items():
        for task, t in tasks.items():
            if isinstance(t, dict):
                rows.append([f"carrisk ForestExplainer ({mode})", task, _seconds(t["median_seconds"]), "measured"])
    kernel = explain["kernel_explainer"]
    rows.append(
        [
            "shap KernelExplainer over forest.predict",
            "risk",
            _seconds(kernel["forest_predict_seconds_1000_patients_extrapolated"]),
            f"extrapolated from {kernel['patients_timed']} patients",
        ]
    )
    rows.append(
        [
            "shap KernelExplainer over the converted trees",
            "risk",
            _seconds(kernel["fastest_predict_seconds_1000_patients_extrapolated"]),
            f"extrapolated from {kernel['patients_timed']} patients",
        ]
    )
    survshap = explain.get("survshap", {})
    if "seconds_1000_patients_extrapolated" in survshap:
        rows.append(
            [
                f"survshap {survshap['version']} (exact KernelSHAP)",
                "whole_curve",
                _seconds(survshap["seconds_1000_patients_extrapolated"]),
                f"extrapolated from {survshap['patients_timed']} patients",
            ]
        )
    else:
        rows.append(["survshap", "", "n/a", survshap.get("skipped", "not run")])
    lines += _table(
        ["method", "output", f"seconds for {explain['setup']['n_patients_explained']} patients", "how"], rows
    )
    goal_rows = [
        [name, _num(g["goal"], 1), _num(g["measured"], 1), "yes" if g["met"] else "no"]
        for name, g in explain.get("goals", {}).items()
    ]
    lines += ["", "Goals of bench_explain.py (speed-ups are ratios of the times above):", ""]
    lines += _table(["goal", "target", "measured", "met"], goal_rows)
    return [*lines, ""]


def latency_section(latency: dict[str, Any]) -> list[str]:
    model = latency["model"]
    lines = [
        "## Prediction latency",
        "",
        _provenance(latency),
        "",
        f"Model: {model['source']} ({model['model']}, {model['params']}, "
        f"{model['trees'] or 'no'} trees, {model['time_grid_points']} time points"
        + (f"; loaded in {_seconds(model['load_seconds'])} s" if "load_seconds" in model else "")
        + f"). {latency['setup']}.",
        "",
    ]
    rows = []
    for top, r in latency["single_patient"].items():
        rows.append(["1", top.replace("_", " = "), f"{1000 * r['median_seconds']:.0f} ms (median of {r['runs']})"])
    for top, r in latency["batch"].items():
        rows.append(
            [
                f"{r['rows']:,}",
                top.replace("_", " = "),
                f"{_seconds(r['seconds'])} s ({r['ms_per_patient']:.2f} ms/patient)",
            ]
        )
    lines += _table(["patients", "top reasons", "predict_efs wall time"], rows)
    return [*lines, ""]


def write_summary(out_dir: Path = _common.RESULTS_DIR) -> Path:
    """Write SUMMARY.md (and the PNGs) from whatever result files exist in ``out_dir``."""
    acc = _common.read_json(out_dir / "accuracy.json")
    speed = _common.read_json(out_dir / "speed.json")
    nested = _common.read_json(out_dir / "nested_cv.json")
    explain = _common.read_json(out_dir / "explain.json")
    explain_run = _common.read_json(out_dir / "explain_run.json")
    latency = _common.read_json(out_dir / "latency.json")
    run_log = _common.read_json(out_dir / "run.json")
    lines = [
        "# carrisk benchmarks",
        "",
        "Generated by `python -m benchmarks` from the JSON files beside this file; every number below is read "
        "from them. See `benchmarks/README.md` for what each part measures. Timings are measurements, never "
        "pass/fail.",
        "",
    ]
    if run_log:
        rows = [
            [part, r["mode"], r["finished"], _seconds(r["seconds"]), r.get("status", "")]
            for part, r in run_log["parts"].items()
        ]
        lines += ["Run times of the parts (last run of each):", ""]
        lines += [*_table(["part", "mode", "finished", "seconds", "status"], rows), ""]
        if run_log.get("last_run"):
            last = run_log["last_run"]
            lines += [
                f"Last command: `{last['command']}`, {_seconds(last['seconds'])} s in total ({last['mode']} mode).",
                "",
            ]
    if acc and acc["datasets"]:
        plot_cindex(acc, out_dir / CINDEX_PLOT)
        lines += accuracy_section(acc)
    else:
        lines += ["## Accuracy", "", "accuracy.json is missing: run `python -m benchmarks --only accuracy`.", ""]
    lines += nested_cv_section(nested)
    if speed:
        if speed.get("forests"):
            plot_speed(speed, out_dir / FIT_TIME_PLOT, out_dir / MEMORY_PLOT)
        lines += speed_section(speed)
    else:
        lines += ["## Speed and memory", "", "speed.json is missing: run `python -m benchmarks --only speed`.", ""]
    lines += explain_section(explain, explain_run)
    if latency:
        lines += latency_section(latency)
    else:
        lines += ["## Prediction latency", "", "latency.json is missing: run `python -m benchmarks --only latency`."]
    path = out_dir / "SUMMARY.md"
    atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
    if out_dir.resolve() == _common.RESULTS_DIR.resolve():
        update_readme(README, readme_block(acc, nested, speed, explain, latency))
    return path


README = Path(__file__).parent.parent / "README.md"
README_START = "<!-- benchmarks:start (generated by python -m benchmarks from benchmarks/results; do not edit) -->"
README_END = "<!-- benchmarks:end -->"
README_MODELS = ("carrisk_rsf", "carrisk_coxnet", "sksurv_rsf", "sksurv_coxph", "lifelines_coxph", "xgboost_cox")


def readme_block(
    acc: dict[str, Any] | None,
    nested: dict[str, Any] | None,
    speed: dict[str, Any] | None,
    explain: dict[str, Any] | None,
    latency: dict[str, Any] | None,
) -> str:
    """The headline numbers the README shows, every one read from the result files."""
    from benchmarks.peers import MODEL_LABELS

    lines: list[str] = []
    if acc and acc.get("datasets"):
        lines += [
            f"Harrell's C, nested {acc['settings']['folds']}-fold x {acc['settings']['repeats']} on identical folds "
            f"(mean over the test folds; `accuracy.json`, {acc['mode']} mode, {acc['date'][:10]}"
            + "".join(f"; {name} row {r['date'][:10]}" for name, r in acc.get("refreshed", {}).items())
            + "):",
            "",
        ]
        rows = []
        for name, ds in acc["datasets"].items():
            label = f"{name} ({ds['rows']:,} rows)"
            if ds.get("oracle"):
                label += f", oracle {_num(ds['oracle']['c_test_folds']['mean'])}"
            cells = []
            for key in README_MODELS:
                model = ds["models"].get(key) or {}
                flagged = model.get("n_folds_convergence_warning") or model.get("n_failed_folds")
                cells.append(_num(_mean_c(ds, key)) + (" †" if flagged else ""))
            rows.append([label, *cells])
        lines += _table(["dataset"] + [MODEL_LABELS[k] for k in README_MODELS], rows)
        lines += [
            "",
            "† the fit failed or did not converge on some folds; see SUMMARY.md.",
            "",
        ]
    if nested:
        timing = nested["nested_cv"]
        lines.append(
            f"- Nested 5 x {nested['settings']['nested_cv_repeats']} CV of RSF + Coxnet (12 candidates) on the "
            f"420-patient cohort, 2 cores: {_seconds(timing['seconds_median'])} s (median of "
            f"{len(timing['seconds_all'])}; `nested_cv.json`, {nested['mode']} mode)."
        )
    for name, entry in ((speed or {}).get("time_grid_targets") or {}).get("datasets", {}).items():
        if entry.get("met"):
            r = entry["ratios"]
            lines.append(
                f"- Time grid vs scikit-survival's forest defaults, {name} ({entry['train_rows']:,} training rows, "
                f"{entry['n_estimators']} trees): fit {_ratio(r['fit_speedup'])} faster, peak RSS "
                f"{_ratio(r['peak_rss_ratio'])} smaller (memory added by the fit "
                f"{_ratio(r['fit_memory_increase_ratio'])}), model {_ratio(r['model_size_ratio'])} smaller, "
                f"held-out C {r['c_difference']:+.4f}."
            )
    if explain:
        whole = explain["forest_explainer"]["tree_path_dependent"]["whole_curve"]["median_seconds"]
        lines.append(
            f"- Exact SHAP of the whole EFS curve, {explain['setup']['n_patients_explained']:,} patients, "
            f"{explain['setup']['n_trees']}-tree forest: {_seconds(whole)} s; for the risk score, "
            f"{explain['ratios']['kernel_over_forest_predict_vs_path_dependent_risk']:,.0f}x faster than shap's "
            f"KernelExplainer over the forest's predict (`explain.json`, {'quick' if explain['quick'] else 'full'} "
            "mode)."
        )
    if latency:
        one, bulk = latency["single_patient"], latency["batch"]["top_0"]
        lines.append(
            f"- Prediction with the shipped model: one patient with its reasons "
            f"{1000 * one['top_3']['median_seconds']:.0f} ms ({1000 * one['top_0']['median_seconds']:.0f} ms "
            f"without), {bulk['rows']:,} patients without reasons {_seconds(bulk['seconds'])} s (`latency.json`, "
            f"{latency['mode']} mode)."
        )
    return "\n".join(lines).rstrip()


def _mean_c(dataset: dict[str, Any], key: str) -> float | None:
    model = dataset["models"].get(key)
    return (model or {}).get("metrics", {}).get("harrell_c", {}).get("mean")


def update_readme(readme: Path, block: str) -> None:
    """Replace the README's generated benchmark block (between the markers) with ``block``."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    atomic_write_text(readme, f"{head}{README_START}\n{block}\n{README_END}{tail}")
