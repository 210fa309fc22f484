"""Model bundles: round trip, manifest, checksum before unpickling, crash safety, version checks, recovery."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import shutil
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
from sksurv.util import Surv

from carrisk.bundle import (
    BundleError,
    BundleVersionError,
    BundleVersionWarning,
    load_model,
    read_manifest,
    save_model,
)
from carrisk.models import CoxPH
from carrisk.provenance import RECORDED_PACKAGES


@pytest.fixture
def design() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(40, 3))


def fitted_model(design: np.ndarray, slope: float = 1.0) -> CoxPH:
    """A small fitted carrisk model (load_model reads only carrisk models) whose predictions depend on ``slope``."""
    rng = np.random.default_rng(1)
    time = rng.exponential(np.exp(-(design @ np.array([slope, -2.0, 0.5]))))
    return CoxPH().fit(design, Surv.from_arrays(rng.random(len(design)) < 0.8, time))


def edit_manifest(bundle: Path, edit) -> None:
    manifest_path = bundle / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    edit(manifest)
    manifest_path.write_text(json.dumps(manifest))


def siblings(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.parent.iterdir())


def test_round_trip_gives_identical_predictions(tmp_path, design):
    model = fitted_model(design)
    save_model(model, tmp_path / "bundle")
    loaded = load_model(tmp_path / "bundle")
    assert loaded is not model
    np.testing.assert_array_equal(loaded.predict(design), model.predict(design))


def test_round_trip_of_a_cox_model_gives_identical_survival_functions(tmp_path, design):
    rng = np.random.default_rng(2)
    time = rng.exponential(scale=np.exp(-design[:, 0]) * 365.25)
    target = Surv.from_arrays(event=rng.random(len(design)) < 0.7, time=time)
    model = CoxPH().fit(design, target)
    loaded = load_model(save_model(model, tmp_path / "cox"))
    expected = np.array([fn.y for fn in model.model_.predict_survival_function(design)])
    actual = np.array([fn.y for fn in loaded.model_.predict_survival_function(design)])
    np.testing.assert_array_equal(actual, expected)


def test_manifest_records_format_versions_time_and_payload_checksum(tmp_path, design):
    bundle = save_model(fitted_model(design), tmp_path / "bundle", manifest={"seed": 7})
    assert sorted(os.listdir(bundle)) == ["manifest.json", "model.joblib"]
    manifest = read_manifest(bundle)
    assert manifest["format"] == "carrisk-bundle"
    assert manifest["format_version"] == 1
    assert set(manifest["versions"]) == {"python", *RECORDED_PACKAGES}
    assert {"carrisk", "scikit-learn", "scikit-survival", "numpy", "pandas", "joblib", "shap"} <= set(RECORDED_PACKAGES)
    assert manifest["versions"]["python"] == platform.python_version()
    assert manifest["versions"]["numpy"] == np.__version__
    assert manifest["versions"]["joblib"] == joblib.__version__
    assert manifest["created"].endswith("+00:00")
    payload = (bundle / "model.joblib").read_bytes()
    assert manifest["payload"] == {
        "file": "model.joblib",
        "sha256": hashlib.sha256(payload).hexdigest(),
        "bytes": len(payload),
    }
    assert manifest["model"] == {"seed": 7}


@dataclasses.dataclass
class HorizonSpec:
    horizons_days: tuple[float, ...]
    label: str


class ModelWithManifest:
    """A picklable model that describes itself."""

    def manifest(self) -> dict:
        return {"name": "toy", "hyperparameters": {"alpha": 0.1, "l1_ratio": 0.5}, "seed": 1}


def test_manifest_merges_model_and_caller_dicts_and_converts_numpy_and_dataclasses(tmp_path):
    caller = {
        "seed": np.int64(42),
        "hyperparameters": {"alpha": np.float32(0.25)},
        "time_grid_days": np.array([30.0, 182.625, 365.25]),
        "horizons": HorizonSpec(horizons_days=(182.625, 365.25), label="EFS"),
        "cv_metrics": {np.int64(182): {"auc": np.float64(0.71)}},
        "training_data": Path("data/train.csv"),
        "flags": {np.bool_(True)},
    }
    manifest = read_manifest(save_model(ModelWithManifest(), tmp_path / "bundle", manifest=caller))
    assert manifest["model"] == {
        "name": "toy",
        "hyperparameters": {"alpha": 0.25, "l1_ratio": 0.5},
        "seed": 42,
        "time_grid_days": [30.0, 182.625, 365.25],
        "horizons": {"horizons_days": [182.625, 365.25], "label": "EFS"},
        "cv_metrics": {"182": {"auc": 0.71}},
        "training_data": "data/train.csv",
        "flags": [True],
    }


def test_manifest_value_that_is_not_json_is_refused_with_its_location(tmp_path, design):
    with pytest.raises(TypeError, match=r"model\.fingerprint"):
        save_model(fitted_model(design), tmp_path / "bundle", manifest={"fingerprint": object()})
    assert list(tmp_path.iterdir()) == []


def test_flipped_payload_byte_is_refused_before_unpickling(tmp_path, design, monkeypatch):
    bundle = save_model(fitted_model(design), tmp_path / "bundle")
    payload_path = bundle / "model.joblib"
    payload = bytearray(payload_path.read_bytes())
    payload[len(payload) // 2] ^= 0x01
    payload_path.write_bytes(bytes(payload))

    def unpickle_must_not_run(*args, **kwargs):
        pytest.fail("joblib.load was called on a payload whose checksum does not match")

    monkeypatch.setattr(joblib, "load", unpickle_must_not_run)
    with pytest.raises(BundleError, match=r"payload checksum mismatch.*refusing to unpickle"):
        load_model(bundle)


def test_interrupted_payload_write_leaves_old_bundle_loadable_and_no_temp_dirs(tmp_path, design, monkeypatch):
    old_model = fitted_model(design, slope=1.0)
    bundle = save_model(old_model, tmp_path / "bundle")
    before = siblings(bundle)
    real_dump = joblib.dump

    def dump_half_then_interrupt(value, filename, **kwargs):
        real_dump(value, filename, **kwargs)
        with open(filename, "r+b") as handle:
            handle.truncate(10)
        raise KeyboardInterrupt

    monkeypatch.setattr(joblib, "dump", dump_half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_model(fitted_model(design, slope=5.0), bundle)
    monkeypatch.undo()

    assert siblings(bundle) == before
    np.testing.assert_array_equal(load_model(bundle).predict(design), old_model.predict(design))


def test_interrupted_swap_moves_the_old_bundle_back(tmp_path, design, monkeypatch):
    old_model = fitted_model(design, slope=1.0)
    bundle = save_model(old_model, tmp_path / "bundle")
    before = siblings(bundle)
    real_replace = os.replace
    calls = []

    def interrupt_the_swap_in(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if Path(dst) == bundle and Path(src).is_dir() and Path(src).name.endswith(".tmp"):
            raise KeyboardInterrupt  # the old bundle has already been renamed aside
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupt_the_swap_in)
    with pytest.raises(KeyboardInterrupt):
        save_model(fitted_model(design, slope=5.0), bundle)
    monkeypatch.undo()

    assert ("bundle", ".bundle.old") in calls, "the test must interrupt after the old bundle was moved aside"
    assert siblings(bundle) == before
    np.testing.assert_array_equal(load_model(bundle).predict(design), old_model.predict(design))


def test_save_replaces_an_existing_bundle_and_leaves_nothing_beside_it(tmp_path, design):
    bundle = save_model(fitted_model(design, slope=1.0), tmp_path / "bundle")
    new_model = fitted_model(design, slope=5.0)
    save_model(new_model, bundle)
    assert siblings(bundle) == ["bundle"]
    np.testing.assert_array_equal(load_model(bundle).predict(design), new_model.predict(design))


def test_interrupt_after_the_swap_leaves_the_new_bundle_and_the_next_save_clears_the_stale_copy(
    tmp_path, design, monkeypatch
):
    bundle = save_model(fitted_model(design, slope=1.0), tmp_path / "bundle")
    new_model = fitted_model(design, slope=5.0)
    real_rmtree = shutil.rmtree

    def interrupt_deleting_the_old_bundle(directory, *args, **kwargs):
        if Path(directory).name == ".bundle.old":
            raise KeyboardInterrupt
        real_rmtree(directory, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", interrupt_deleting_the_old_bundle)
    with pytest.raises(KeyboardInterrupt):
        save_model(new_model, bundle)
    monkeypatch.undo()
    assert siblings(bundle) == [".bundle.old", "bundle"]
    np.testing.assert_array_equal(load_model(bundle).predict(design), new_model.predict(design))

    newest = fitted_model(design, slope=9.0)
    save_model(newest, bundle)
    assert siblings(bundle) == ["bundle"]
    np.testing.assert_array_equal(load_model(bundle).predict(design), newest.predict(design))


def test_save_refuses_to_replace_a_directory_that_is_not_a_bundle(tmp_path, design):
    results = tmp_path / "results"
    results.mkdir()
    (results / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a carrisk model bundle"):
        save_model(fitted_model(design), results)
    assert (results / "notes.txt").read_text() == "keep me"
    assert siblings(results) == ["results"]


def kill_between_the_two_renames(bundle: Path, new_model: object, monkeypatch) -> None:
    """Simulate a save killed after the old bundle was moved aside: the swap-in and the move back both fail."""
    real_replace = os.replace

    def fail_into_bundle(src, dst):
        if Path(dst) == bundle and Path(src).is_dir():
            raise OSError("simulated crash")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_into_bundle)
    with pytest.raises(OSError, match="simulated crash"):
        save_model(new_model, bundle)
    monkeypatch.undo()


def test_load_recovers_when_only_the_aside_copy_exists(tmp_path, design, monkeypatch):
    old_model = fitted_model(design, slope=1.0)
    bundle = save_model(old_model, tmp_path / "bundle")
    kill_between_the_two_renames(bundle, fitted_model(design, slope=5.0), monkeypatch)
    assert not bundle.exists()
    assert siblings(bundle) == [".bundle.old"]

    with pytest.warns(UserWarning, match="interrupted"):
        loaded = load_model(bundle)
    np.testing.assert_array_equal(loaded.predict(design), old_model.predict(design))
    assert siblings(bundle) == ["bundle"]


def test_save_after_a_crash_in_the_window_installs_the_new_bundle(tmp_path, design, monkeypatch):
    bundle = save_model(fitted_model(design, slope=1.0), tmp_path / "bundle")
    kill_between_the_two_renames(bundle, fitted_model(design, slope=5.0), monkeypatch)
    newest = fitted_model(design, slope=9.0)
    save_model(newest, bundle)
    assert siblings(bundle) == ["bundle"]
    np.testing.assert_array_equal(load_model(bundle).predict(design), newest.predict(design))


def test_scikit_learn_version_mismatch_is_refused_unless_allowed(tmp_path, design):
    model = fitted_model(design)
    bundle = save_model(model, tmp_path / "bundle")
    edit_manifest(bundle, lambda manifest: manifest["versions"].update({"scikit-learn": "0.0.1"}))

    with pytest.raises(BundleVersionError, match=r"scikit-learn 0\.0\.1") as refused:
        load_model(bundle)
    assert "allow_version_mismatch=True" in str(refused.value)
    assert "--allow-version-mismatch" in str(refused.value)
    assert isinstance(refused.value, BundleError)

    with pytest.warns(BundleVersionWarning, match=r"scikit-learn 0\.0\.1"):
        loaded = load_model(bundle, allow_version_mismatch=True)
    np.testing.assert_array_equal(loaded.predict(design), model.predict(design))


def test_scikit_survival_version_mismatch_is_refused(tmp_path, design):
    bundle = save_model(fitted_model(design), tmp_path / "bundle")
    edit_manifest(bundle, lambda manifest: manifest["versions"].update({"scikit-survival": "0.0.1"}))
    with pytest.raises(BundleVersionError, match=r"scikit-survival 0\.0\.1"):
        load_model(bundle)


def test_numpy_version_mismatch_only_warns(tmp_path, design):
    model = fitted_model(design)
    bundle = save_model(model, tmp_path / "bundle")
    edit_manifest(bundle, lambda manifest: manifest["versions"].update({"numpy": "1.0.0", "shap": "0.1"}))
    with pytest.warns(BundleVersionWarning, match=r"(?=.*shap 0\.1 )(?=.*numpy 1\.0\.0 )"):
        loaded = load_model(bundle)
    np.testing.assert_array_equal(loaded.predict(design), model.predict(design))


def test_matching_versions_load_without_warnings(tmp_path, design):
    bundle = save_model(fitted_model(design), tmp_path / "bundle")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(bundle)


def test_loaded_model_carries_its_manifest(tmp_path, design):
    bundle = save_model(fitted_model(design), tmp_path / "bundle", manifest={"seed": 3})
    assert load_model(bundle).manifest_ == read_manifest(bundle)


def test_missing_bundle_manifest_or_payload_raises_file_not_found_naming_the_path(tmp_path, design):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_model(tmp_path / "nowhere")
    bundle = save_model(fitted_model(design), tmp_path / "bundle")
    (bundle / "model.joblib").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.joblib"):
        load_model(bundle)
    (bundle / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"manifest\.json"):
        read_manifest(bundle)


def test_manifest_of_another_format_is_refused(tmp_path, design):
    bundle = save_model(fitted_model(design), tmp_path / "bundle")
    edit_manifest(bundle, lambda manifest: manifest.update({"format": "something-else"}))
    with pytest.raises(BundleError, match="not a carrisk bundle manifest"):
        load_model(bundle)


# --- issue 12, defect 10: stale temporary directories, permissions, concurrency, symlinks, payload checks


def test_next_save_removes_temp_dirs_left_by_killed_saves_and_nothing_else(tmp_path, design):
    bundle = save_model(fitted_model(design), tmp_path / "bundle")
    stale = [tmp_path / ".bundle.k3j4h5g6.tmp", tmp_path / ".bundle.0123abcd.tmp"]
    for directory in stale:
        directory.mkdir()
        (directory / "model.joblib").write_bytes(b"half a payload")
    unrelated = [tmp_path / ".other.0123abcd.tmp", tmp_path / ".bundle.notrandom.tmp", tmp_path / "bundle-notes"]
    for directory in unrelated:
        directory.mkdir()
    save_model(fitted_model(design, slope=2.0), bundle)
    assert siblings(bundle) == sorted(["bundle", *(entry.name for entry in unrelated)])


def test_saved_bundle_has_the_usual_permissions(tmp_path, design):
    previous = os.umask(0o022)
    try:
        bundle = save_model(fitted_model(design), tmp_path / "bundle")
    finally:
        os.umask(previous)
    assert bundle.stat().st_mode & 0o777 == 0o755
    assert (bundle / "model.joblib").stat().st_mode & 0o777 == 0o644
    assert (bundle / "manifest.json").stat().st_mode & 0o777 == 0o644


def test_concurrent_saves_to_one_path_all_succeed_and_leave_one_whole_bundle(tmp_path, design, monkeypatch):
    import threading
    import time

    real_replace = os.replace

    def slow_replace(source, destination):  # widen the window between the two renames of the swap
        time.sleep(0.05)
        real_replace(source, destination)

    monkeypatch.setattr("carrisk.bundle.os.replace", slow_replace)
    models = [fitted_model(design, slope=float(slope)) for slope in range(1, 5)]
    errors: list[BaseException] = []

    def save(model):
        try:
            for _ in range(3):
                save_model(model, tmp_path / "bundle")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=save, args=(model,)) for model in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert siblings(tmp_path / "bundle") == ["bundle"]
    predictions = load_model(tmp_path / "bundle").predict(design)
    assert any(np.array_equal(predictions, model.predict(design)) for model in models)


def test_payload_symlinked_outside_the_bundle_is_refused(tmp_path, design):
    bundle = save_model(fitted_model(design), tmp_path / "bundle")
    outside = tmp_path / "elsewhere.joblib"
    shutil.move(bundle / "model.joblib", outside)
    (bundle / "model.joblib").symlink_to(outside)
    with pytest.raises(BundleError, match="points outside its bundle"):
        load_model(bundle)


def test_manifest_symlinked_outside_the_bundle_is_refused(tmp_path, design):
    bundle = save_model(fitted_model(design), tmp_path / "bundle")
    outside = tmp_path / "manifest-elsewhere.json"
    shutil.move(bundle / "manifest.json", outside)
    (bundle / "manifest.json").symlink_to(outside)
    with pytest.raises(BundleError, match="points outside its bundle"):
        read_manifest(bundle)


def test_a_symlinked_bundle_directory_still_loads(tmp_path, design):
    model = fitted_model(design)
    save_model(model, tmp_path / "v1")
    (tmp_path / "current").symlink_to(tmp_path / "v1")
    np.testing.assert_array_equal(load_model(tmp_path / "current").predict(design), model.predict(design))


def test_payload_that_is_not_a_carrisk_model_is_refused(tmp_path, design):
    from sklearn.linear_model import LinearRegression

    bundle = save_model(LinearRegression().fit(design, design[:, 0]), tmp_path / "bundle")
    with pytest.raises(BundleError, match=r"sklearn\.linear_model.*LinearRegression, not a carrisk model"):
        load_model(bundle)


@pytest.mark.parametrize("format_version", [-5, 0, True, "1", 1.0, None])
def test_invalid_format_version_is_refused(tmp_path, design, format_version):
    bundle = save_model(fitted_model(design), tmp_path / "bundle")
    edit_manifest(bundle, lambda manifest: manifest.update({"format_version": format_version}))
    with pytest.raises(BundleError, match="not a bundle format"):
        load_model(bundle)


class _OpensAFile:
    """Unpickling this calls ``open(path, "w")``: a stand-in for a payload that runs code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_payload_naming_a_function_outside_the_allow_list_is_refused_before_it_runs(tmp_path, design):
    model = fitted_model(design)
    marker = tmp_path / "written-by-the-payload"
    model.extra_ = _OpensAFile(marker)
    bundle = save_model(model, tmp_path / "bundle")
    with pytest.raises(BundleError, match=r"io\.open, which is not on carrisk's allow-list.*trusted=True"):
        load_model(bundle)
    assert not marker.exists()


def test_trusted_load_skips_the_allow_list_but_still_requires_a_carrisk_model(tmp_path, design):
    import operator

    model = fitted_model(design)
    model.combine_ = operator.add
    bundle = save_model(model, tmp_path / "bundle")
    with pytest.raises(BundleError, match=r"operator\.add"):
        load_model(bundle)
    assert load_model(bundle, trusted=True).combine_ is operator.add


def test_pandas_frames_numpy_generators_and_plain_containers_load_through_the_allow_list(tmp_path, design):
    import collections
    import datetime

    import pandas as pd

    model = fitted_model(design)
    model.table_ = pd.DataFrame(
        {
            "group": pd.Categorical(["low", "high", "low"]),
            "when": pd.to_datetime(["2020-01-01", "2021-06-30", None]),
            "name": ["a", "b", None],
            "value": [1.5, np.nan, 3.0],
        },
        index=pd.Index(["p1", "p2", "p3"], name="patient_id"),
    )
    model.rng_ = np.random.default_rng(5)
    model.legacy_rng_ = np.random.RandomState(5)
    model.extras_ = {"counts": collections.Counter("aab"), "when": datetime.date(2022, 1, 1), "span": slice(1, 3)}
    loaded = load_model(save_model(model, tmp_path / "bundle"))
    pd.testing.assert_frame_equal(loaded.table_, model.table_)
    assert loaded.rng_.random() == np.random.default_rng(5).random()
    assert loaded.legacy_rng_.rand() == np.random.RandomState(5).rand()
    assert loaded.extras_ == model.extras_


def test_allow_list_admits_any_carrisk_class_and_refuses_io_classes_and_functions():
    import pandas as pd

    from carrisk._safe_load import allowed_global

    future_model = type("FutureModel", (), {"__module__": "carrisk.competing.forest"})
    assert allowed_global(future_model)
    assert allowed_global(pd.DataFrame) and allowed_global(np.ndarray)
    assert not allowed_global(np.memmap)
    assert not allowed_global(pd.HDFStore)
    assert not allowed_global(pd.read_pickle)
    assert not allowed_global(os.system)
    assert not allowed_global(eval)
    assert not allowed_global(save_model)  # carrisk's own functions are not constructors


def test_train_refuses_an_out_directory_that_is_not_a_bundle_before_fitting(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from carrisk.cli import app
    from carrisk.simulate import simulate_cohort

    simulate_cohort(n=60, seed=1).records.to_csv(tmp_path / "cohort.csv", index=False)
    results = tmp_path / "results"
    results.mkdir()
    (results / "keep.txt").write_text("not a model")

    def must_not_fit(*args, **kwargs):
        raise AssertionError("fitted before checking --out")

    monkeypatch.setattr("carrisk.predict.fit_efs_model", must_not_fit)
    result = CliRunner().invoke(app, ["train", str(tmp_path / "cohort.csv"), "--out", str(results)])
    assert result.exit_code == 2
    assert "--out" in result.output and "is not a carrisk model bundle" in result.output
    assert (results / "keep.txt").read_text() == "not a model"


def test_bundle_from_an_older_carrisk_recording_fewer_packages_loads_without_warnings(tmp_path, design):
    bundle = save_model(fitted_model(design), tmp_path / "bundle")
    edit_manifest(bundle, lambda manifest: [manifest["versions"].pop(name) for name in ("scipy", "lifelines")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(bundle)
    edit_manifest(bundle, lambda manifest: manifest["versions"].pop("scikit-learn"))
    with pytest.raises(BundleVersionError, match="scikit-learn None"):
        load_model(bundle)
