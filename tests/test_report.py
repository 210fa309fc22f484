"""The HTML evaluation report: self-contained, readable, and rendered by a real headless browser."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pytest

import carrisk
from carrisk.evaluate import evaluate_model
from carrisk.report import TRIPOD_AI_ITEMS, write_evaluation_report
from carrisk.simulate import EXTERNAL_CENTRES, simulate_cohort
from tests._browser import chromium, console_errors

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "default"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="module")
def report_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = carrisk.load_model(DEFAULT_MODEL)
    cohort = simulate_cohort(250, seed=5, **EXTERNAL_CENTRES["shifted"])
    result = evaluate_model(model, cohort.records, n_bootstrap=20, n_bootstrap_calibration=10, source="centre.csv")
    out = tmp_path_factory.mktemp("report")
    paths = result.write(out)
    return write_evaluation_report(result, out / "report.html", figures=paths)


def test_report_is_self_contained_and_uses_clinical_names(report_path):
    text = report_path.read_text()
    assert "<script" not in text.lower()
    # no network: every src/href is an embedded image or an in-page anchor
    for reference in re.findall(r"(?:src|href)='([^']*)'", text):
        assert reference.startswith(("data:image/png;base64,", "#")), reference
    assert text.count("data:image/png;base64,") >= 6
    readable = html.unescape(text)
    for phrase in ("Harrell's C", "calibration-in-the-large", "Prior blinatumomab: nonresponder", "Disease burden",
                   "Research tool, not for clinical decisions", "synthetic", "TRIPOD+AI"):  # fmt: skip
        assert phrase in readable, phrase
    assert "blina_status_nonresponder" not in text  # code names stay out of the report
    assert text.count("<tr><td>") >= len(TRIPOD_AI_ITEMS)
    assert report_path.stat().st_size < 5_000_000


@pytest.mark.browser
def test_report_renders_in_a_headless_browser_with_every_plot_visible(report_path):
    with chromium(width=1280, height=1000) as driver:
        started = time.perf_counter()
        driver.get(report_path.as_uri())
        driver.execute_script("return document.readyState")
        elapsed = time.perf_counter() - started
        images = driver.find_elements("tag name", "img")
        assert len(images) >= 6
        for image in images:
            natural = driver.execute_script("return [arguments[0].complete, arguments[0].naturalWidth]", image)
            assert natural[0] and natural[1] > 0
            box = image.rect
            assert box["width"] > 100 and box["height"] > 100
        assert console_errors(driver) == []
        ARTIFACTS.mkdir(exist_ok=True)
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1280, min(int(height) + 100, 16000))
        assert driver.save_screenshot(str(ARTIFACTS / "evaluation_report.png"))
        (ARTIFACTS / "evaluation_report_timing.txt").write_text(
            f"load {elapsed:.2f} s, size {report_path.stat().st_size / 1e6:.2f} MB\n"
        )


def test_model_section_of_an_updated_model_reads_in_clinical_words():
    from carrisk.report import _model_section

    info = {
        "model": {
            "model": "average (revision)",
            "hyperparameters": {
                "coxnet_cv__alpha": 1.1921987297426233,
                "two_part__cr_C": 0.0005623413251903491,
                "weights": [0.5, 0.5],
            },
            "tuning": {"method": "fixed weights", "scoring": "harrell", "at_grid_edge": ["two_part__cr_C"]},
            "training_rows": 4200,
            "training_events": 2310,
            "update": {
                "description": "revision (recalibration plus every predictor's effect re-estimated)",
                "chosen_by": "closed test (Vergouwe et al. 2017)",
                "baseline_hazard_multiplier": 1.2895,
                "risk_score_slope": 0.611,
                "update_cohort": {"rows": 2000},
                "closed_test": [
                    {"label": "original model", "lr_statistic": 162.78, "df": 24, "p_value": 1.3e-22, "chosen": False},
                    {"label": "revision", "lr_statistic": 0.0, "df": 0, "p_value": float("nan"), "chosen": True},
                ],
            },
        }
    }
    text = html.unescape(_model_section(info))
    expected = [
        "Average of the elastic-net Cox model and the two-part model",
        "Elastic-net Cox model: penalty = 1.19",
        "Two-part model: remission model: inverse penalty (C) = 0.000562",
        "weights of the member models = 0.5 / 0.5",
        "scored by Harrell's C",
        "penalties left at the edge of their search grid: Two-part model: remission model",
        "4,200 (2,310)",
        "2,000 patients",
        "< 0.001",
        "<b>chosen</b>",
        "162.8",
    ]
    for phrase in expected:
        assert phrase in text, phrase
    for code in ("coxnet_cv__", "at_grid_edge", "1.1921987", "average (revision)", "[0.5, 0.5]"):
        assert code not in text, code


def test_case_mix_levels_and_dates_read_in_clinical_words():
    import pandas as pd

    from carrisk.report import _case_mix_table, created_text

    table = pd.DataFrame(
        [
            ("car_product", "chop_penn", 0.25, 0.26, 0.02),
            ("disease_burden", "low_mrd_positive", 0.24, 0.26, 0.04),
            ("down_syndrome", "1.0", 0.02, 0.04, 0.09),
            ("sex", "F", 0.43, 0.44, 0.02),
        ],
        columns=["variable", "level", "training", "new", "standardized_difference"],
    )
    text = html.unescape(_case_mix_table(table))
    for phrase in ("CHOP/Penn", "low, MRD-positive", "<td>yes</td>", "<td>female</td>"):
        assert phrase in text, phrase
    assert "chop penn" not in text and "1.0<" not in text
    assert created_text("2026-12-07T05:08:52+00:00") == "7 December 2026, 05:08 UTC"
    assert created_text("not a date") == "not a date"


def test_numbers_that_round_to_zero_have_no_sign():
    from carrisk.report import _FORMAT, number, percent

    assert percent(-0.0001) == "0.0%" and percent(-0.001) == "-0.1%"
    assert number(-0.001) == "0.00" and number(-0.006) == "-0.01"
    assert _FORMAT["citl"](-0.0001) == "0.0 points" and _FORMAT["citl"](0.076) == "+7.6 points"
