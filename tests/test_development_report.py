"""The HTML reports of `carrisk cv` and `carrisk train`: self-contained, readable, rendered by a real browser."""

from __future__ import annotations

import html
import json
import re
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import carrisk
from carrisk.cli import app
from carrisk.datasets import load_survival_data
from carrisk.development_report import TRIPOD_AI_DEVELOPMENT_ITEMS, write_train_report
from carrisk.internal_validation import bootstrap_optimism
from carrisk.predict import fit_efs_model
from tests._browser import chromium, console_errors

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
runner = CliRunner()


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small synthetic cohort cross-validated from the command line and trained through the Python API (the
    command line's ``train --report`` fits the slow cause-specific model too; its test is marked slow)."""
    out = tmp_path_factory.mktemp("development")
    cohort = carrisk.simulate_cohort(180, seed=11).records
    cohort.to_csv(out / "cohort.csv", index=False)
    cv = runner.invoke(
        app,
        ["cv", str(out / "cohort.csv"), "--models", "coxph", "--folds", "3", "--repeats", "1", "--n-jobs", "1",
         "--quiet", "--calibration-bootstrap", "10", "--internal-bootstrap", "2", "--synthetic",
         "--out", str(out / "cv")],
    )  # fmt: skip
    assert cv.exit_code == 0, cv.output
    y = carrisk.survival_target(cohort)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = fit_efs_model(cohort, y, "coxph", synthetic=True, causes=False, n_bootstrap=10)
        internal = bootstrap_optimism(cohort, y, "coxph", n_bootstrap=2)
    write_train_report(model, out / "train.html", cohort, y, internal=internal, source="cohort.csv",
                       bundle="models/mine", n_bootstrap=10)  # fmt: skip
    return {"cv": out / "cv" / "report.html", "train": out / "train.html", "internal": internal}


@pytest.mark.parametrize("kind", ["cv", "train"])
def test_report_is_self_contained_readable_and_small(reports, kind):
    text = reports[kind].read_text()
    assert "<script" not in text.lower()
    for reference in re.findall(r"(?:src|href)='([^']*)'", text):  # no network: embedded images, in-page anchors
        assert reference.startswith(("data:image/png;base64,", "#")), reference
    anchors = set(re.findall(r"id='([^']*)'", text))
    for target in re.findall(r"href='#([^']*)'", text):
        assert target in anchors, target
    readable = html.unescape(text)
    for phrase in ("Research tool, not for clinical decisions", "synthetic", "Harrell's C", "TRIPOD+AI",
                   "Optimism-corrected", "Prior blinatumomab", "Prior blinatumomab: naive", "Disease burden: high",
                   "Cox proportional hazards model"):  # fmt: skip
        assert phrase in readable, phrase
    for code_name in ("blina_status", "harrell_c", "6mo", "12mo", "alpha_ratio", "nan", "exposed_unknown", "_mrd_"):
        assert code_name not in re.sub(r"data:image/png;base64,[^']*", "", text), code_name
    assert text.count("<td class='status-") == len(TRIPOD_AI_DEVELOPMENT_ITEMS)
    assert reports[kind].stat().st_size < 5_000_000


def test_cv_report_shows_the_nadeau_bengio_interval_and_the_fold_spread(reports):
    readable = html.unescape(reports["cv"].read_text())
    assert "95% CI of the mean (Nadeau-Bengio)" in readable and "spread of the folds" in readable
    # the interval printed for the first model's Harrell's C is the one in cv.json, rounded to two decimals
    summary = json.loads((reports["cv"].parent / "cv.json").read_text())["models"]["coxph"]["metrics"]["harrell_c"]
    low, high = summary["mean_ci"]
    assert f"<td class='num'>{summary['mean']:.2f}</td><td class='num'>{low:.2f} to {high:.2f}</td>" in readable
    assert readable.count("data:image/png;base64,") >= 6  # folds, calibration, 2 decision, subgroups, internal


def test_train_report_labels_apparent_figures_and_names_its_bundle(reports):
    readable = html.unescape(reports["train"].read_text())
    assert "Calibration on the training patients (apparent)" in readable
    assert "models/mine" in readable
    assert readable.count("data:image/png;base64,") >= 6  # 2 calibration, 2 decision, subgroups, internal


def test_train_report_puts_apparent_corrected_and_cross_validated_discrimination_side_by_side(reports):
    """Optimism-corrected C and slope where computed; where a figure was not computed, the command that computes it."""
    readable = html.unescape(reports["train"].read_text())
    internal = reports["internal"].summary.set_index("measure")
    corrected_c, corrected_slope = (
        internal.loc["harrell_c", "corrected"],
        internal.loc["calibration_slope", "corrected"],
    )
    assert (
        f"<td>optimism-corrected (12 months)</td><td class='num'><b>{corrected_c:.2f}</b></td>"
        f"<td class='num'><b>{corrected_slope:.2f}</b></td><td>2 bootstrap refits of the whole tuned pipeline"
    ) in readable
    assert "<td>apparent: the training patients themselves (12 months)</td>" in readable
    assert "<td>cross-validated</td><td class='num'>not recorded</td>" in readable
    assert "<code>carrisk cv cohort.csv --models coxph --out cv/</code>" in readable


@pytest.mark.slow
def test_train_report_from_the_command_line(tmp_path):
    cohort = tmp_path / "cohort.csv"
    carrisk.simulate_cohort(80, seed=5).records.to_csv(cohort, index=False)
    result = runner.invoke(
        app,
        ["train", str(cohort), "--model", "coxph", "--synthetic", "--out", str(tmp_path / "model"),
         "--report", str(tmp_path / "train.html")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    readable = html.unescape((tmp_path / "train.html").read_text())
    assert str(tmp_path / "model") in readable and "Not computed for this report" in readable


def test_cv_with_no_report_writes_no_html(tmp_path):
    cohort = tmp_path / "cohort.csv"
    carrisk.simulate_cohort(90, seed=2).records.to_csv(cohort, index=False)
    result = runner.invoke(
        app,
        ["cv", str(cohort), "--models", "coxph", "--folds", "3", "--repeats", "1", "--n-jobs", "1", "--quiet",
         "--calibration-bootstrap", "0", "--no-report", "--out", str(tmp_path / "cv")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cv" / "cv.json").exists() and not (tmp_path / "cv" / "report.html").exists()


def test_validate_internal_writes_the_corrected_calibration_curve(tmp_path):
    cohort = tmp_path / "cohort.csv"
    carrisk.simulate_cohort(150, seed=4).records.to_csv(cohort, index=False)
    result = runner.invoke(
        app, ["validate-internal", str(cohort), "--model", "coxph", "--n-bootstrap", "2", "--out", str(tmp_path / "iv")]
    )
    assert result.exit_code == 0, result.output
    assert "Calibration curve" in result.output
    curve = pd.read_csv(tmp_path / "iv" / "internal_calibration.csv")
    assert list(curve.columns) == ["predicted", "apparent", "optimism", "corrected", "n_bootstrap"]
    assert (curve["corrected"] - (curve["apparent"] - curve["optimism"])).abs().max() < 1e-9
    saved = json.loads((tmp_path / "iv" / "internal_validation.json").read_text())
    assert saved["settings"]["n_bootstrap"] == 2 and len(saved["calibration_curve"]["predicted"]) == len(curve)
    assert (tmp_path / "iv" / "internal_calibration.png").stat().st_size > 1000


@pytest.mark.browser
@pytest.mark.parametrize("kind", ["cv", "train"])
def test_report_renders_in_a_headless_browser_with_every_plot_visible(reports, kind):
    with chromium(width=1280, height=1000) as driver:
        started = time.perf_counter()
        driver.get(reports[kind].as_uri())
        elapsed = time.perf_counter() - started
        images = driver.find_elements("tag name", "img")
        assert len(images) >= 6
        for image in images:
            complete, natural_width = driver.execute_script(
                "return [arguments[0].complete, arguments[0].naturalWidth]", image
            )
            assert complete and natural_width > 0
            assert image.rect["width"] > 100 and image.rect["height"] > 100
        assert console_errors(driver) == []
        ARTIFACTS.mkdir(exist_ok=True)
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1280, min(int(height) + 100, 16000))
        assert driver.save_screenshot(str(ARTIFACTS / f"{kind}_report.png"))
        (ARTIFACTS / f"{kind}_report_timing.txt").write_text(
            f"load {elapsed:.2f} s, size {reports[kind].stat().st_size / 1e6:.2f} MB\n"
        )


def test_generic_table_report_speaks_of_a_survival_model_and_its_own_columns(tmp_path):
    rng = np.random.default_rng(3)
    marker = rng.normal(size=150)
    event_time = rng.exponential(365.25 / np.exp(0.7 * marker))
    censoring = rng.uniform(100, 900, 150)
    table = pd.DataFrame({"marker": marker, "os_time": np.minimum(event_time, censoring),
                          "died": (event_time <= censoring).astype(int)})  # fmt: skip
    data = load_survival_data(table, time_col="os_time", event_col="died")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = fit_efs_model(data.records, data.y, "coxph", spec=data.spec, n_bootstrap=10)
    path = write_train_report(model, tmp_path / "generic.html", data.records, data.y,
                              features=data.spec.describe()["features"], n_bootstrap=10)  # fmt: skip
    readable = html.unescape(path.read_text())
    assert "Development of a survival model: the trained model" in readable
    assert "CAR T-cell" not in readable and "EFS event" not in readable
    assert "trained on synthetic patients" not in readable.replace("<b>", "").replace("</b>", "")
    assert "<td>marker</td>" in readable and "Prior blinatumomab" not in readable
    assert "EFS" not in readable
    assert (
        "<td>optimism-corrected</td><td class='num'>not computed</td><td class='num'>not computed</td><td>computed by "
        "<code>carrisk train data --time-col os_time --event-col died --model coxph --out BUNDLE --report train.html "
        "--internal-bootstrap 200</code>"
    ) in readable
