"""Plots of an external validation (:class:`carrisk.evaluate.ExternalValidation`), written as PNG files.

Every plot uses clinical wording (EFS, event probability by 6 or 12 months; for a generic-mode model, survival and
the event) and is saved atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from carrisk.evaluate import outcome_words, save_figure
from carrisk.units import DAYS_PER_MONTH

if TYPE_CHECKING:
    from carrisk.evaluate import ExternalValidation, ModelComparison

__all__ = [
    "MODEL_COLOURS",
    "plot_all",
    "plot_calibration",
    "plot_calibration_comparison",
    "plot_comparison",
    "plot_decision_curve",
    "plot_decision_curve_comparison",
    "plot_net_benefit_difference",
    "plot_observed_vs_predicted",
    "plot_observed_vs_predicted_comparison",
    "plot_subgroups",
]

#: The colour of a model in the plots of one evaluation.
MODEL_COLOUR = "#1f77b4"  # matplotlib's tab:blue, spelled so that HTML can use it too
#: Colours of the compared models, in order: the one-evaluation blue, then colour-blind-safe Okabe-Ito vermillion,
#: bluish green, purple and orange; treat-all is grey and treat-none black in their decision curves. Each model's
#: own plots in a comparison are drawn in its colour.
MODEL_COLOURS = (MODEL_COLOUR, "#D55E00", "#009E73", "#CC79A7", "#E69F00")


def _months(name: str) -> str:
    return name.replace("mo", " months")


def plot_calibration(result: ExternalValidation, horizon: str, path: Path, colour: str = MODEL_COLOUR) -> Path:
    """Smoothed calibration curve with its bootstrap band, the diagonal, and the spread of predictions."""
    curve = result.calibration_curves[result.calibration_curves["horizon"] == horizon]
    predicted = 1.0 - result.predictions[f"efs_{horizon}"].to_numpy()
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(5.2, 5.6), sharex=True, gridspec_kw={"height_ratios": [4, 1]})
    upper = float(max(curve["upper"].max(), curve["observed"].max(), predicted.max(), 0.05)) * 1.05
    top.plot([0, upper], [0, upper], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    top.fill_between(curve["predicted"], curve["lower"], curve["upper"], color=colour, alpha=0.2,
                     label="95% bootstrap band")  # fmt: skip
    top.plot(curve["predicted"], curve["observed"], color=colour, linewidth=2, label="smoothed calibration")
    top.set_xlim(0, upper)
    top.set_ylim(0, upper)
    top.set_ylabel(f"observed probability of an event by {_months(horizon)}")
    top.set_title(f"Calibration of {outcome_words(result.info)['survival']} at {_months(horizon)}")
    top.legend(loc="upper left", fontsize=8)
    bottom.hist(predicted, bins=30, range=(0, upper), color="tab:grey")
    bottom.set_xlabel(f"predicted probability of an event by {_months(horizon)}")
    bottom.set_ylabel("patients")
    return save_figure(figure, path)


def plot_decision_curve(result: ExternalValidation, horizon: str, path: Path, colour: str = MODEL_COLOUR) -> Path:
    """Net benefit of the model, treat-all and treat-none, with bootstrap bands.

    Treat-all is orange beside the usual blue model, grey beside a model of another colour (as in a comparison).
    """
    curve = result.decision_curves[result.decision_curves["horizon"] == horizon]
    treat_all = "tab:orange" if colour == MODEL_COLOUR else "grey"
    figure, axes = plt.subplots(figsize=(6, 4.2))
    x = curve["threshold"]
    if "net_benefit_model_lower" in curve:
        axes.fill_between(x, curve["net_benefit_model_lower"], curve["net_benefit_model_upper"], color=colour,
                          alpha=0.2)  # fmt: skip
        axes.fill_between(x, curve["net_benefit_all_lower"], curve["net_benefit_all_upper"], color=treat_all,
                          alpha=0.15)  # fmt: skip
    axes.plot(x, curve["net_benefit_model"], color=colour, linewidth=2, label="use the model")
    axes.plot(x, curve["net_benefit_all"], color=treat_all, linewidth=1.5, label="treat all")
    axes.axhline(0.0, color="black", linewidth=1, label="treat none")
    prevalence = float(np.nanmax(curve["net_benefit_all"].to_numpy()))
    axes.set_ylim(-0.05, max(prevalence * 1.15, 0.05))
    axes.set_xlim(0, float(x.max()))
    axes.set_xlabel(f"threshold probability of an event by {_months(horizon)}")
    axes.set_ylabel("net benefit")
    axes.set_title(f"Decision curve, event by {_months(horizon)} (bands: 95% bootstrap)")
    axes.legend(fontsize=8)
    return save_figure(figure, path)


def plot_observed_vs_predicted(result: ExternalValidation, path: Path, colour: str = MODEL_COLOUR) -> Path:
    """Kaplan-Meier EFS of the cohort (with its 95% interval) against the mean predicted EFS over follow-up."""
    table = result.observed_vs_predicted
    words = outcome_words(result.info)
    figure, axes = plt.subplots(figsize=(6, 4.2))
    months = table["days"] / DAYS_PER_MONTH
    axes.fill_between(months, table["observed_lower"], table["observed_upper"], step="post", color="black",
                      alpha=0.12)  # fmt: skip
    axes.step(months, table["observed"], where="post", color="black", label="observed (Kaplan-Meier, 95% CI)")
    axes.plot(months, table["predicted"], color=colour, linewidth=2, label="mean predicted")
    axes.set_ylim(0, 1.02)
    axes.set_xlabel(f"months from {words['origin']}")
    axes.set_ylabel(words["survival_axis"])
    axes.set_title(f"Observed and predicted {words['survival']} in this cohort")
    axes.legend(fontsize=8)
    return save_figure(figure, path)


def plot_subgroups(result: ExternalValidation, horizon: str, path: Path, colour: str = MODEL_COLOUR) -> Path:
    """Observed (Kaplan-Meier, 95% CI) and mean predicted event probability per subgroup."""
    table = result.subgroups[result.subgroups["horizon"] == horizon].reset_index(drop=True)
    figure, axes = plt.subplots(figsize=(9, 0.5 * max(len(table), 2) + 1.4))
    rows = np.arange(len(table))[::-1]
    axes.errorbar(
        table["observed"], rows,
        xerr=[table["observed"] - table["observed_lower"], table["observed_upper"] - table["observed"]],
        fmt="o", color="black", capsize=3, label="observed (Kaplan-Meier, 95% CI)",
    )  # fmt: skip
    axes.scatter(table["predicted"], rows, marker="D", color=colour, zorder=3, label="mean predicted")
    labels = [f"{label.split(' (')[0]} (n={n})" for label, n in zip(table["label"], table["n"])]
    axes.set_yticks(rows, labels, fontsize=10)
    axes.set_xlim(0, 1)
    axes.set_xlabel(f"probability of an event by {_months(horizon)}")
    axes.set_title(f"Calibration by subgroup, {_months(horizon)}")
    axes.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    return save_figure(figure, path)


def plot_all(result: ExternalValidation, out: Path, colour: str = MODEL_COLOUR) -> dict[str, Any]:
    """Every plot of an evaluation into ``out``, the model drawn in ``colour``; returns name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Any] = {
        "observed_vs_predicted_plot": plot_observed_vs_predicted(result, out / "observed_vs_predicted.png", colour)
    }
    for horizon in result.info["horizons_days"]:
        paths[f"calibration_{horizon}_plot"] = plot_calibration(
            result, horizon, out / f"calibration_{horizon}.png", colour
        )
        paths[f"decision_curve_{horizon}_plot"] = plot_decision_curve(
            result, horizon, out / f"decision_curve_{horizon}.png", colour
        )
        if not result.subgroups[result.subgroups["horizon"] == horizon].empty:
            paths[f"subgroups_{horizon}_plot"] = plot_subgroups(
                result, horizon, out / f"subgroups_{horizon}.png", colour
            )
    return paths


def _colour(k: int) -> str:
    return MODEL_COLOURS[k % len(MODEL_COLOURS)]


def plot_calibration_comparison(comparison: ModelComparison, horizon: str, path: Path) -> Path:
    """Every model's smoothed calibration curve with its bootstrap band, overlaid, and the spread of each one's
    predictions (step histograms in the same colours)."""
    results = comparison.results
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(6.2, 6.4), sharex=True, gridspec_kw={"height_ratios": [4, 1.3]})
    upper = 0.05
    for result in results.values():
        curve = result.calibration_curves[result.calibration_curves["horizon"] == horizon]
        predicted = 1.0 - result.predictions[f"efs_{horizon}"].to_numpy()
        upper = max(upper, float(np.nanmax([curve["upper"].max(), curve["observed"].max(), predicted.max()])))
    upper = min(upper * 1.05, 1.0)
    top.plot([0, upper], [0, upper], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    for k, (name, result) in enumerate(results.items()):
        curve = result.calibration_curves[result.calibration_curves["horizon"] == horizon]
        colour = _colour(k)
        top.fill_between(curve["predicted"], curve["lower"], curve["upper"], color=colour, alpha=0.18, linewidth=0)
        top.plot(curve["predicted"], curve["observed"], color=colour, linewidth=2.2, label=name)
        predicted = 1.0 - result.predictions[f"efs_{horizon}"].to_numpy()
        bottom.hist(predicted, bins=30, range=(0, upper), histtype="step", color=colour, linewidth=1.6, label=name)
    top.set_xlim(0, upper)
    top.set_ylim(0, upper)
    top.set_ylabel(f"observed probability of an event by {_months(horizon)}")
    top.set_title(
        f"Calibration of {outcome_words(comparison.info)['survival']} at {_months(horizon)} (bands: 95% bootstrap)"
    )
    top.legend(loc="upper left", fontsize=8)
    bottom.set_xlabel(f"predicted probability of an event by {_months(horizon)}")
    bottom.set_ylabel("patients")
    return save_figure(figure, path)


def plot_decision_curve_comparison(comparison: ModelComparison, horizon: str, path: Path) -> Path:
    """Net benefit of every model (with its bootstrap band), treat-all and treat-none, overlaid."""
    figure, axes = plt.subplots(figsize=(6.6, 4.4))
    prevalence, x_max = 0.05, 0.0
    for k, (name, result) in enumerate(comparison.results.items()):
        curve = result.decision_curves[result.decision_curves["horizon"] == horizon]
        x = curve["threshold"]
        colour = _colour(k)
        if "net_benefit_model_lower" in curve:
            axes.fill_between(x, curve["net_benefit_model_lower"], curve["net_benefit_model_upper"], color=colour,
                              alpha=0.15, linewidth=0)  # fmt: skip
        axes.plot(x, curve["net_benefit_model"], color=colour, linewidth=2, label=name)
        prevalence = max(prevalence, float(np.nanmax(curve["net_benefit_all"].to_numpy())))
        x_max = max(x_max, float(x.max()))
    # treat-all is the same for every model (the same patients): drawn once, from the first
    first = next(iter(comparison.results.values())).decision_curves
    first = first[first["horizon"] == horizon]
    axes.plot(first["threshold"], first["net_benefit_all"], color="grey", linewidth=1.5, linestyle="--",
              label="treat all")  # fmt: skip
    axes.axhline(0.0, color="black", linewidth=1, label="treat none")
    axes.set_ylim(-0.05, prevalence * 1.15)
    axes.set_xlim(0, x_max)
    axes.set_xlabel(f"threshold probability of an event by {_months(horizon)}")
    axes.set_ylabel("net benefit")
    axes.set_title(f"Decision curves, event by {_months(horizon)} (bands: 95% bootstrap)")
    axes.legend(fontsize=8)
    return save_figure(figure, path)


def plot_net_benefit_difference(comparison: ModelComparison, horizon: str, path: Path) -> Path:
    """Each model's net benefit minus the reference's against the threshold, per 100 patients, with its pointwise
    paired 95% band; the thresholds of the table (with p-values) are marked with their intervals."""
    curves = comparison.net_benefit_difference_curves
    table = comparison.net_benefit_differences
    figure, axes = plt.subplots(figsize=(6.6, 4.4))
    axes.axhline(0.0, color="black", linewidth=1)
    for k, name in enumerate(comparison.names[1:], start=1):
        colour = _colour(k)
        curve = curves[(curves["model"] == name) & (curves["horizon"] == horizon)]
        x = curve["threshold"]
        axes.fill_between(x, 100 * curve["lower"], 100 * curve["upper"], color=colour, alpha=0.18, linewidth=0)
        axes.plot(x, 100 * curve["estimate"], color=colour, linewidth=2,
                  label=f"{name} - {comparison.reference}")  # fmt: skip
        marked = table[(table["model"] == name) & (table["horizon"] == horizon)]
        axes.errorbar(
            marked["threshold"], marked["per_100_patients"],
            yerr=[marked["per_100_patients"] - marked["per_100_patients_lower"],
                  marked["per_100_patients_upper"] - marked["per_100_patients"]],
            fmt="o", color=colour, markersize=4, capsize=3, linewidth=1,
        )  # fmt: skip
    axes.set_xlim(0, float(curves["threshold"].max()) if not curves.empty else 1.0)
    axes.set_xlabel(f"threshold probability of an event by {_months(horizon)}")
    axes.set_ylabel("difference in net benefit, per 100 patients")
    axes.set_title(
        f"Net benefit compared, event by {_months(horizon)}\n(above 0: the model is better; "
        "band: paired 95% bootstrap)",
        fontsize=10,
    )
    axes.legend(fontsize=8, loc="best")
    return save_figure(figure, path)


def plot_observed_vs_predicted_comparison(comparison: ModelComparison, path: Path) -> Path:
    """Kaplan-Meier of the cohort (95% CI) against each model's mean predicted curve over follow-up."""
    results = list(comparison.results.items())
    table = results[0][1].observed_vs_predicted
    words = outcome_words(comparison.info)
    figure, axes = plt.subplots(figsize=(6.6, 4.4))
    months = table["days"] / DAYS_PER_MONTH
    axes.fill_between(months, table["observed_lower"], table["observed_upper"], step="post", color="black",
                      alpha=0.12)  # fmt: skip
    axes.step(months, table["observed"], where="post", color="black", label="observed (Kaplan-Meier, 95% CI)")
    for k, (name, result) in enumerate(results):
        own = result.observed_vs_predicted
        axes.plot(own["days"] / DAYS_PER_MONTH, own["predicted"], color=_colour(k), linewidth=2,
                  label=f"mean predicted, {name}")  # fmt: skip
    axes.set_ylim(0, 1.02)
    axes.set_xlabel(f"months from {words['origin']}")
    axes.set_ylabel(words["survival_axis"])
    axes.set_title(f"Observed and predicted {words['survival']}: models compared")
    axes.legend(fontsize=8)
    return save_figure(figure, path)


def plot_comparison(comparison: ModelComparison, out: Path) -> dict[str, Any]:
    """Every overlaid plot of a comparison into ``out`` (``comparison_*.png``); returns name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Any] = {
        "comparison_observed_vs_predicted_plot": plot_observed_vs_predicted_comparison(
            comparison, out / "comparison_observed_vs_predicted.png"
        )
    }
    for horizon in comparison.info["horizons_days"]:
        paths[f"comparison_calibration_{horizon}_plot"] = plot_calibration_comparison(
            comparison, horizon, out / f"comparison_calibration_{horizon}.png"
        )
        paths[f"comparison_decision_curve_{horizon}_plot"] = plot_decision_curve_comparison(
            comparison, horizon, out / f"comparison_decision_curve_{horizon}.png"
        )
        if not comparison.net_benefit_difference_curves.empty:
            paths[f"comparison_net_benefit_difference_{horizon}_plot"] = plot_net_benefit_difference(
                comparison, horizon, out / f"comparison_net_benefit_difference_{horizon}.png"
            )
    return paths
