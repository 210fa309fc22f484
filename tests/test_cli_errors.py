"""The command line under bad input: one-line errors, documented exit codes, safe outputs, no tracebacks."""

import csv
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _cli import run_cli
from typer.testing import CliRunner

import carrisk
from carrisk import fit_efs_model, save_model, simulate_cohort, survival_target
from carrisk.cli import app
from carrisk.schema import read_records

runner = CliRunner()
FORMULAS = ["=1+1", "+41", "@SUM(A1)", '=HYPERLINK("http://x.example","y")', "-2+3", "\r=2+2"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    cohort = simulate_cohort(n=200, seed=5)
    model = fit_efs_model(
        cohort.records,
        survival_target(cohort.records),
        "rsf",
        seed=0,
        synthetic=True,
        n_estimators=30,
        min_samples_leaf=10,
        grid={},
        causes=False,
    )
    return save_model(model, tmp_path_factory.mktemp("m") / "model")


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "carrisk/data/example_patients.csv", "--outcomes", "bogus"],
        ["explain", "carrisk/data/example_patients.csv", "--horizon", "-5"],
        ["simulate", "--n", "0"],
        ["simulate", "--seed", "-1"],
        ["cv", "carrisk/data/example_patients.csv", "--models", "rsf,bogus"],
        ["cv", "carrisk/data/example_patients.csv", "--folds", "1"],
        ["cv", "carrisk/data/example_patients.csv", "--scoring", "auc"],
        ["cv", "carrisk/data/example_patients.csv", "--n-jobs", "0"],
        ["train", "carrisk/data/example_patients.csv", "--model", "svm"],
        ["train", "carrisk/data/example_patients.csv", "--n-estimators", "0"],
        ["cv", "carrisk/data/example_patients.csv", "--calibration-bootstrap", "-1"],
        ["evaluate", "carrisk/data/example_patients.csv", "--n-bootstrap", "-1"],
        ["evaluate", "carrisk/data/example_patients.csv", "--n-bootstrap", "0"],
        ["update", "carrisk/data/example_patients.csv", "--out", "never-written", "--alpha", "2"],
        ["update", "carrisk/data/example_patients.csv", "--out", "never-written", "--level", "bogus"],
    ],
)
def test_bad_options_are_usage_errors_with_exit_code_2(args):
    result = run_cli(*args)
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output or "error" in result.output.lower()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ci-group-size", "2"], "--ci-group-size 2 needs the hist engine: add --engine hist"),
        (["--engine", "hist", "--ci-group-size", "2", "--n-estimators", "201"], "must be a multiple of"),
    ],
)
def test_little_bags_settings_that_cannot_work_are_one_line_usage_errors(tmp_path, extra, message):
    result = run_cli("train", "carrisk/data/example_patients.csv", "--model", "rsf", "--out", tmp_path / "m", *extra)
    assert result.exit_code == 2 and result.output.count("\n") == 1 and message in result.output, result.output
    assert not (tmp_path / "m").exists()


def test_help_lists_choices_and_the_exit_codes():
    assert "Exit codes" in run_cli("--help").output
    assert all(w in run_cli("validate", "--help").output for w in ("required", "optional", "ignore"))
    assert all(w in run_cli("train", "--help").output for w in ("rsf", "coxnet", "coxph", "gbsa"))
    simulate_help = run_cli("simulate", "--help").output
    assert "fold" not in simulate_help.lower() and "same cohort" in simulate_help


def test_an_unreadable_or_junk_file_is_exit_2_in_one_line(tmp_path):
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"y" * 200_000)
    for args in (["validate", tmp_path / "missing.csv"], ["validate", junk], ["predict", junk]):
        result = run_cli(*args)
        assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
        assert result.output.startswith("carrisk: error:")


def test_a_missing_model_bundle_is_exit_2(tmp_path):
    result = run_cli("predict", "carrisk/data/example_patients.csv", "--model", tmp_path / "nope")
    assert result.exit_code == 2 and result.output.startswith("carrisk: error:")


def test_unexpected_errors_are_one_line_with_a_debug_hint(monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(carrisk.simulate, "simulate_cohort", broken)
    result = run_cli("simulate", "--n", "5", "--out", tmp_path / "c.csv")
    assert result.exit_code == 3
    assert "RuntimeError: something inside broke" in result.output and "--debug" in result.output
    debug = runner.invoke(app, ["--debug", "simulate", "--n", "5", "--out", str(tmp_path / "c.csv")])
    assert debug.exit_code == 3 and "Traceback" in debug.output


def test_warnings_reach_the_user_as_one_line_each(monkeypatch, tmp_path):
    real = carrisk.simulate.simulate_cohort

    def noisy(*args, **kwargs):
        for _ in range(3):
            warnings.warn("cd19: level(s) ['x'] were not seen in training\nsecond line", UserWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(carrisk.simulate, "simulate_cohort", noisy)
    result = run_cli("simulate", "--n", "5", "--out", tmp_path / "c.csv")
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if not line.startswith("wrote")]
    assert lines == ["carrisk: warning: cd19: level(s) ['x'] were not seen in training"]


def test_predict_rejects_infinite_numbers_that_used_to_crash_it(tmp_path, bundle, example_records):
    bad = example_records.copy()
    bad.loc[1, "months_since_last_hsct"] = "inf"
    bad.loc[5, "age_years"] = "-Infinity"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    result = run_cli("predict", tmp_path / "bad.csv", "--model", bundle)
    assert result.exit_code == 1
    assert "column 'months_since_last_hsct': got 'inf'" in result.output and "got '-Infinity'" in result.output
    skipped = run_cli("predict", tmp_path / "bad.csv", "--model", bundle, "--skip-invalid", "--out", tmp_path / "p.csv")
    assert skipped.exit_code == 0, skipped.output
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(bad) - 2


def test_skip_invalid_with_every_row_invalid_writes_rejected_and_empty_predictions(tmp_path, bundle, example_records):
    bad = example_records.assign(sex="Q")
    bad.to_csv(tmp_path / "bad.csv", index=False)
    out = tmp_path / "p.csv"
    result = run_cli(
        "predict",
        tmp_path / "bad.csv",
        "--model",
        bundle,
        "--skip-invalid",
        "--out",
        out,
        "--json",
        tmp_path / "p.json",
    )
    assert result.exit_code == 1, result.output
    assert "no valid row" in result.output
    rejected = pd.read_csv(tmp_path / "p.rejected.csv")
    assert len(rejected) == len(bad) and set(rejected["column"]) == {"sex"}
    lines = out.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("patient_id,efs_6mo,")
    assert (tmp_path / "p.json").read_text().strip().replace("\n", "") == "[]"


def test_predictions_and_rejected_rows_are_safe_in_a_spreadsheet(tmp_path, bundle, example_records):
    records = example_records.head(len(FORMULAS)).copy()
    records["patient_id"] = FORMULAS
    records.loc[0, "sex"] = "=cmd|' /C calc'!A0"  # invalid: goes to the rejected file
    records.to_csv(tmp_path / "f.csv", index=False)
    out = tmp_path / "p.csv"
    result = run_cli("predict", tmp_path / "f.csv", "--model", bundle, "--skip-invalid", "--out", out)
    assert result.exit_code == 0, result.output
    for path in (out, tmp_path / "p.rejected.csv"):
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        cells = [cell for row in rows[1:] for cell in row]
        assert cells and not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells), path
    predicted = pd.read_csv(out, dtype={"patient_id": str}, keep_default_na=False)
    # pandas reads the CSV cell "\r=1+1" as "=1+1"; written back, it is neutralised all the same
    assert predicted["patient_id"].tolist() == ["'" + p.lstrip("\r") for p in FORMULAS[1:]]
    assert predicted["efs_6mo"].dtype == float  # numbers stay numbers


def test_explain_keeps_plot_files_inside_the_output_directory(tmp_path, bundle, example_records):
    records = example_records.head(2).copy()
    records["patient_id"] = ["a/../../escaped", "../b"]
    records.to_csv(tmp_path / "e.csv", index=False)
    out = tmp_path / "deep" / "plots"
    result = run_cli("explain", tmp_path / "e.csv", "--model", bundle, "--out", out)
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in tmp_path.rglob("*.png"))
    assert all(p.parent == out for p in tmp_path.rglob("*.png"))
    assert "waterfall_a_.._.._escaped.png" in written and "waterfall_.._b.png" in written


def test_features_out_writes_the_file_and_prints_a_summary(tmp_path, example_records):
    out = tmp_path / "x.csv"
    result = run_cli("features", "carrisk/data/example_patients.csv", "--out", out)
    assert result.exit_code == 0
    assert "transposed" not in result.output and len(result.output.splitlines()) == 1
    design = pd.read_csv(out)
    assert design["patient_id"].tolist() == example_records["patient_id"].tolist() and design.shape[1] > 20


def test_simulated_records_without_messy_spellings_pass_validation():
    records = simulate_cohort(n=80, seed=2, messy=False).records
    carrisk.validate_records(records, outcomes="required")
    assert "not_rearranged" in set(records["kmt2a_status"])


def test_records_read_back_from_a_simulated_csv_are_the_same_cells(tmp_path):
    result = run_cli("simulate", "--n", "40", "--seed", "4", "--out", tmp_path / "c.csv")
    assert result.exit_code == 0
    back = read_records(tmp_path / "c.csv")
    assert len(back) == 40 and np.all(back.columns == simulate_cohort(n=40, seed=4).records.columns)


def test_causes_for_a_bundle_without_a_cause_model_or_its_cohort_is_a_one_line_usage_error(
    tmp_path, bundle, example_records
):
    example_records.to_csv(tmp_path / "patients.csv", index=False)
    result = run_cli("predict", tmp_path / "patients.csv", "--model", bundle, "--causes")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("carrisk: error: this model carries no cause-specific model")
    assert result.output.count("\n") == 1


def test_explain_beyond_the_models_follow_up_is_a_one_line_usage_error(tmp_path):
    from carrisk import load_default_model

    last = float(load_default_model().time_grid[-1])
    examples = Path(carrisk.__file__).parent / "data" / "example_patients.csv"
    result = run_cli("explain", examples, "--horizon", last + 100, "--out", tmp_path / "plots")
    assert result.exit_code == 2
    assert f"its EFS curve ends at day {last:g}" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "plots").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["simulate", "--n", "0"], "carrisk simulate: error: Invalid value for '--n'"),
        (["predict", "carrisk/data/example_patients.csv", "--top", "50"], "error: Invalid value for '--top'"),
        (["predict"], "predict: error: Missing argument 'PATIENTS'."),
        (["predict", "carrisk/data/example_patients.csv", "--bogus"], "predict: error: No such option: --bogus"),
        (["no-such-command"], "error: No such command 'no-such-command'."),
        (["--bogus"], "error: No such option: --bogus"),
        (["samplesize", "development"], "samplesize development: error: Missing option '--csrsquared'."),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(args, expected):
    """They used to be 5-line boxes drawn by rich (usage, hint, and the message inside a frame)."""
    result = run_cli(*args)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and expected in result.output, result.output


def _commands(group, path=()):
    import typer.main

    for name, command in (group.commands if path else typer.main.get_command(group).commands).items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


@pytest.mark.parametrize("path", [path for path, _ in _commands(app)], ids=" ".join)
def test_help_is_readable_at_80_columns_with_every_option_name_whole(path):
    """rich's tables cut long option names ('--n-bootstrap-cali…'), showed '<bool>' for flags and '{cohort}'."""
    command = dict(_commands(app))[path]
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    text = result.output
    assert "…" not in text and "<bool>" not in text and "{" not in text.splitlines()[0], text
    assert all(len(line) <= 80 for line in text.splitlines()), text
    words = set(text.replace("/", " ").split())
    for param in command.params:
        for name in (*param.opts, *param.secondary_opts):
            if name.startswith("-"):
                assert name in words, f"{name} missing or cut in:\n{text}"


@pytest.fixture
def outputs(tmp_path, example_records):
    """A working directory with an input, a directory, a file and a directory that is no model bundle."""
    example_records.to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "somedir").mkdir()
    (tmp_path / "somefile.csv").write_text("keep me\n")
    (tmp_path / "notbundle").mkdir()
    (tmp_path / "notbundle" / "f.txt").write_text("keep me\n")
    return tmp_path


def _no_work(*args, **kwargs):
    raise AssertionError("the command started its work before checking its outputs")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "in.csv", "--out", "somedir"], "--out {d}/somedir: is a directory, not a file"),
        (["predict", "in.csv", "--json", "somedir"], "--json {d}/somedir: is a directory, not a file"),
        (["features", "in.csv", "--out", "somedir"], "--out {d}/somedir: is a directory, not a file"),
        (["explain", "in.csv", "--out", "somefile.csv"], "--out {d}/somefile.csv: is a file, not a directory"),
        (["evaluate", "in.csv", "--out", "somefile.csv"], "--out {d}/somefile.csv: is a file, not a directory"),
        (["reproduce", "in.csv", "--out", "somefile.csv"], "--out {d}/somefile.csv: is a file, not a directory"),
        (["validate-internal", "in.csv", "--out", "somefile.csv"], "is a file, not a directory"),
        (["cv", "in.csv", "--json", "somedir"], "--json {d}/somedir: is a directory, not a file"),
        (["cv", "in.csv", "--out", "somefile.csv"], "--out {d}/somefile.csv: is a file, not a directory"),
        (["simulate", "--out", "somedir"], "--out {d}/somedir: is a directory, not a file"),
        (["simulate", "--truth", "somedir", "--out", "c.csv"], "--truth {d}/somedir: is a directory, not a file"),
        (
            ["simulate", "--out", "somefile.csv/c.csv"],
            "cannot write there: {d}/somefile.csv is a file, not a directory",
        ),
        (["train", "in.csv", "--out", "m", "--report", "somedir"], "--report {d}/somedir: is a directory"),
        (["update", "in.csv", "--out", "notbundle"], "--out: {d}/notbundle exists and is not a carrisk model bundle"),
        (["demo", "--out", "somefile.csv"], "--out {d}/somefile.csv: is a file, not a directory"),
    ],
)
def test_an_output_path_that_cannot_be_written_is_a_usage_error_before_any_work(monkeypatch, outputs, args, message):
    """These used to end in exit 3 ('unexpected error: IsADirectoryError...'), some after the whole computation."""
    import carrisk.cli

    for name in ("_read", "_load", "_model"):
        monkeypatch.setattr(carrisk.cli, name, _no_work)
    result = run_cli(*[outputs / a if a.endswith((".csv", "dir", "bundle", "m")) else a for a in args])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("carrisk: error: "), result.output
    assert message.format(d=outputs) in result.output, result.output
    assert (outputs / "somefile.csv").read_text() == "keep me\n" and (outputs / "notbundle" / "f.txt").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "in.csv", "--out", "in.csv"], "--out {d}/in.csv: is the input {d}/in.csv; refusing to overwrite"),
        (["predict", "in.csv", "--json", "somedir/../in.csv"], "--json {d}/somedir/../in.csv: is the input {d}/in.csv"),
        (["predict", "in.csv", "--out", "link.csv"], "--out {d}/link.csv: is the input {d}/in.csv"),
        (["predict", "p.rejected.csv", "--out", "p.csv", "--skip-invalid"], "file {d}/p.rejected.csv: is the input"),
        (["predict", "in.csv", "--out", "p.csv", "--json", "p.csv"], "--out and --json are the same file"),
        (["features", "in.csv", "--out", "in.csv"], "--out {d}/in.csv: is the input"),
        (["explain", "in.csv", "--json", "in.csv"], "--json {d}/in.csv: is the input"),
        (["cv", "in.csv", "--json", "in.csv"], "--json {d}/in.csv: is the input"),
        (["train", "in.csv", "--out", "m", "--report", "in.csv"], "--report {d}/in.csv: is the input"),
        (["evaluate", "predictions.csv", "--out", "."], "--out {d}: would overwrite the input {d}/predictions.csv"),
        (["simulate", "--out", "c.csv", "--truth", "c.csv"], "--out and --truth are the same file"),
    ],
)
def test_an_output_that_would_overwrite_an_input_is_refused(monkeypatch, outputs, args, message):
    """`carrisk predict same.csv --out same.csv` used to replace the records with the predictions."""
    import carrisk.cli

    for name in ("_read", "_load", "_model"):
        monkeypatch.setattr(carrisk.cli, name, _no_work)
    for name in ("p.rejected.csv", "predictions.csv"):
        (outputs / name).write_bytes((outputs / "in.csv").read_bytes())
    (outputs / "link.csv").symlink_to(outputs / "in.csv")
    (outputs / "somedir").mkdir(exist_ok=True)
    before = (outputs / "in.csv").read_bytes()
    result = run_cli(*[outputs / a if a.endswith((".csv", "m", ".")) else a for a in args])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and message.format(d=outputs) in result.output, result.output
    assert (outputs / "in.csv").read_bytes() == before


def test_update_refuses_to_replace_the_model_it_updates(outputs, bundle):
    result = run_cli("update", outputs / "in.csv", "--model", bundle, "--out", bundle)
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert f"--out {bundle}: would replace the input {bundle}" in result.output


def test_os_errors_read_as_words_without_errno(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.joblib").write_bytes(b"x")
    for args in (["predict", "carrisk/data/example_patients.csv", "--model", tmp_path / "m"], ["validate", "nope.csv"]):
        result = run_cli(*args)
        assert result.exit_code == 2 and result.output.startswith("carrisk: error: "), result.output
        assert "[Errno" not in result.output, result.output


def test_serve_on_a_port_in_use_is_one_line_and_exit_2(bundle):
    """It used to announce 'carrisk serve: http://...' and then end in uvicorn's bind ERROR and exit 3."""
    import socket

    pytest.importorskip("uvicorn")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--model", bundle, "--port", port)
    assert result.exit_code == 2, result.output
    assert (
        result.output
        == f"carrisk: error: port {port} is in use on 127.0.0.1 (another server?); stop it or choose another --port\n"
    )


def test_predict_names_the_file_its_invalid_records_are_in(tmp_path, bundle, example_records):
    example_records.assign(sex="Q").to_csv(tmp_path / "new.csv", index=False)
    result = run_cli("predict", tmp_path / "new.csv", "--model", bundle)
    assert result.exit_code == 1 and result.output.startswith(
        f"carrisk: invalid: {len(example_records)} problem(s) in {tmp_path / 'new.csv'}:"
    )


def test_evaluate_notes_carry_the_carrisk_prefix(tmp_path, bundle):
    simulate_cohort(n=120, seed=3).records.to_csv(tmp_path / "cohort.csv", index=False)
    result = run_cli(
        "evaluate", tmp_path / "cohort.csv", "--model", bundle, "--out", tmp_path / "ev", "--n-bootstrap", 2,
        "--n-bootstrap-calibration", 2, "--no-report",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if "note:" in line]
    assert notes and all(line.startswith("carrisk: note: ") for line in notes), notes


def test_library_noise_is_not_passed_off_as_a_carrisk_warning(monkeypatch, tmp_path):
    """explain printed matplotlib's deprecations and 'Glyph 9 missing from font' as 'carrisk: warning:' lines,
    demo printed lifelines' 'Are you using formula's?' advice."""
    import matplotlib.font_manager  # noqa: F401  (a real third-party module to raise from)
    from lifelines.exceptions import ConvergenceWarning

    real = carrisk.simulate.simulate_cohort

    def noisy(*args, **kwargs):
        warnings.warn("The set_bad function will be deprecated", PendingDeprecationWarning, stacklevel=1)
        warnings.warn("a future default", FutureWarning, stacklevel=1)
        exec(
            "import warnings; warnings.warn('Glyph 9 (\\\\t) missing from font(s) DejaVu Sans.')",
            {"__name__": "matplotlib.font_manager"},
        )
        np.log(np.zeros(1))  # numpy: divide by zero encountered in log
        warnings.warn("Newton-Raphson failed to converge sufficiently.", ConvergenceWarning, stacklevel=1)
        warnings.warn(
            "ICI set to NaN: the Cox calibration model failed to fit: Column(s) ['x'] have very low variance. This may "
            "harm convergence. 1) Are you using formula's? Did you mean to add '-1' to the end. 2) Try dropping this "
            "redundant column before fitting if convergence fails.",
            RuntimeWarning,
            stacklevel=1,
        )
        return real(*args, **kwargs)

    monkeypatch.setattr(carrisk.simulate, "simulate_cohort", noisy)
    result = run_cli("simulate", "--n", "5", "--out", tmp_path / "c.csv")
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if not line.startswith("wrote")] == [
        "carrisk: warning: ConvergenceWarning: a model fit did not fully converge (lifelines); its estimates may be "
        "unstable",
        "carrisk: warning: RuntimeWarning: ICI set to NaN: the Cox calibration model failed to fit: Column(s) ['x'] "
        "have very low variance.",
    ]
    debug = run_cli("--debug", "simulate", "--n", "5", "--out", tmp_path / "c.csv")
    assert "Glyph 9" in debug.output and "PendingDeprecationWarning" in debug.output, debug.output


def test_skip_invalid_says_where_the_rejected_rows_go_and_puts_them_there(
    monkeypatch, tmp_path, bundle, example_records
):
    """The help said 'beside --out' while, without --out, the file went to the current directory."""
    assert "predictions.rejected.csv in the current directory" in " ".join(run_cli("predict", "--help").output.split())
    (tmp_path / "in").mkdir()
    example_records.assign(sex=["Q"] + ["F"] * (len(example_records) - 1)).to_csv(
        tmp_path / "in" / "new.csv", index=False
    )
    monkeypatch.chdir(tmp_path)
    result = run_cli("predict", tmp_path / "in" / "new.csv", "--model", bundle, "--skip-invalid", "--top", 0)
    assert result.exit_code == 0 and "reasons in predictions.rejected.csv" in result.output, result.output
    assert len(pd.read_csv(tmp_path / "predictions.rejected.csv")) == 1


def test_warnings_raised_in_worker_processes_reach_the_user_as_in_one_process(tmp_path):
    import subprocess
    import sys

    carrisk.simulate_cohort(40, seed=3).records.to_csv(tmp_path / "small.csv", index=False)
    shown = {}
    for jobs in (1, 2):  # --n-jobs 2 fits the folds in joblib's worker processes, which print their own warnings
        result = subprocess.run(
            [sys.executable, "-m", "carrisk", "cv", tmp_path / "small.csv", "--models", "coxph", "--folds", "3",
             "--repeats", "1", "--n-jobs", str(jobs), "--json", tmp_path / f"cv{jobs}.json"],
            capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        lines = result.stderr.splitlines()
        assert all(line.startswith("carrisk: warning: ") for line in lines), result.stderr
        shown[jobs] = set(lines)
    assert any("ICI/E50/E90 set to NaN" in line for line in shown[1])
    assert shown[2] == shown[1]
