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
from sklearn.linear_model import LinearRegression

from carrisk.bundle import (
    BundleError,
    BundleVersionError,
    BundleVersionWarning,
    load_model,
    read_manifest,
    save_model,
)


@pytest.fixture
def design() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(40, 3))


def fitted_regression(design: np.ndarray, slope: float = 1.0) -> LinearRegression:
    outcome = design @ np.array([slope, -2.0, 0.5]) + np.random.default_rng(1).normal(scale=0.1, size=len(design))
    return LinearRegression().fit(design, outcome)


def edit_manifest(bundle: Path, edit) -> None:
    manifest_path = bundle / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    edit(manifest)
    manifest_path.write_text(json.dumps(manifest))


def siblings(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.parent.iterdir())


def test_round_trip_gives_identical_predictions(tmp_path, design):
    model = fitted_regression(design)
    save_model(model, tmp_path / "bundle")
    loaded = load_model(tmp_path / "bundle")
    assert loaded is not model
    np.testing.assert_array_equal(loaded.predict(design), model.predict(design))


def test_round_trip_of_a_cox_model_gives_identical_survival_functions(tmp_path, design):
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    rng = np.random.default_rng(2)
    time = rng.exponential(scale=np.exp(-design[:, 0]) * 365.25)
    target = Surv.from_arrays(event=rng.random(len(design)) < 0.7, time=time)
    model = CoxPHSurvivalAnalysis().fit(design, target)
    loaded = load_model(save_model(model, tmp_path / "cox"))
    expected = np.array([fn.y for fn in model.predict_survival_function(design)])
    actual = np.array([fn.y for fn in loaded.predict_survival_function(design)])
    np.testing.assert_array_equal(actual, expected)


def test_manifest_records_format_versions_time_and_payload_checksum(tmp_path, design):
    bundle = save_model(fitted_regression(design), tmp_path / "bundle", manifest={"seed": 7})
    assert sorted(os.listdir(bundle)) == ["manifest.json", "model.joblib"]
    manifest = read_manifest(bundle)
    assert manifest["format"] == "carrisk-bundle"
    assert manifest["format_version"] == 1
    assert set(manifest["versions"]) == {
        "carrisk",
        "python",
        "scikit-learn",
        "scikit-survival",
        "shap",
        "numpy",
        "pandas",
        "joblib",
    }
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
        save_model(fitted_regression(design), tmp_path / "bundle", manifest={"fingerprint": object()})
    assert list(tmp_path.iterdir()) == []


def test_flipped_payload_byte_is_refused_before_unpickling(tmp_path, design, monkeypatch):
    bundle = save_model(fitted_regression(design), tmp_path / "bundle")
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
    old_model = fitted_regression(design, slope=1.0)
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
        save_model(fitted_regression(design, slope=5.0), bundle)
    monkeypatch.undo()

    assert siblings(bundle) == before
    np.testing.assert_array_equal(load_model(bundle).predict(design), old_model.predict(design))


def test_interrupted_swap_moves_the_old_bundle_back(tmp_path, design, monkeypatch):
    old_model = fitted_regression(design, slope=1.0)
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
        save_model(fitted_regression(design, slope=5.0), bundle)
    monkeypatch.undo()

    assert ("bundle", ".bundle.old") in calls, "the test must interrupt after the old bundle was moved aside"
    assert siblings(bundle) == before
    np.testing.assert_array_equal(load_model(bundle).predict(design), old_model.predict(design))


def test_save_replaces_an_existing_bundle_and_leaves_nothing_beside_it(tmp_path, design):
    bundle = save_model(fitted_regression(design, slope=1.0), tmp_path / "bundle")
    new_model = fitted_regression(design, slope=5.0)
    save_model(new_model, bundle)
    assert siblings(bundle) == ["bundle"]
    np.testing.assert_array_equal(load_model(bundle).predict(design), new_model.predict(design))


def test_interrupt_after_the_swap_leaves_the_new_bundle_and_the_next_save_clears_the_stale_copy(
    tmp_path, design, monkeypatch
):
    bundle = save_model(fitted_regression(design, slope=1.0), tmp_path / "bundle")
    new_model = fitted_regression(design, slope=5.0)
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

    newest = fitted_regression(design, slope=9.0)
    save_model(newest, bundle)
    assert siblings(bundle) == ["bundle"]
    np.testing.assert_array_equal(load_model(bundle).predict(design), newest.predict(design))


def test_save_refuses_to_replace_a_directory_that_is_not_a_bundle(tmp_path, design):
    results = tmp_path / "results"
    results.mkdir()
    (results / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a carrisk model bundle"):
        save_model(fitted_regression(design), results)
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
    old_model = fitted_regression(design, slope=1.0)
    bundle = save_model(old_model, tmp_path / "bundle")
    kill_between_the_two_renames(bundle, fitted_regression(design, slope=5.0), monkeypatch)
    assert not bundle.exists()
    assert siblings(bundle) == [".bundle.old"]

    with pytest.warns(UserWarning, match="interrupted"):
        loaded = load_model(bundle)
    np.testing.assert_array_equal(loaded.predict(design), old_model.predict(design))
    assert siblings(bundle) == ["bundle"]


def test_save_after_a_crash_in_the_window_installs_the_new_bundle(tmp_path, design, monkeypatch):
    bundle = save_model(fitted_regression(design, slope=1.0), tmp_path / "bundle")
    kill_between_the_two_renames(bundle, fitted_regression(design, slope=5.0), monkeypatch)
    newest = fitted_regression(design, slope=9.0)
    save_model(newest, bundle)
    assert siblings(bundle) == ["bundle"]
    np.testing.assert_array_equal(load_model(bundle).predict(design), newest.predict(design))


def test_scikit_learn_version_mismatch_is_refused_unless_allowed(tmp_path, design):
    model = fitted_regression(design)
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
    bundle = save_model(fitted_regression(design), tmp_path / "bundle")
    edit_manifest(bundle, lambda manifest: manifest["versions"].update({"scikit-survival": "0.0.1"}))
    with pytest.raises(BundleVersionError, match=r"scikit-survival 0\.0\.1"):
        load_model(bundle)


def test_numpy_version_mismatch_only_warns(tmp_path, design):
    model = fitted_regression(design)
    bundle = save_model(model, tmp_path / "bundle")
    edit_manifest(bundle, lambda manifest: manifest["versions"].update({"numpy": "1.0.0", "shap": "0.1"}))
    with pytest.warns(BundleVersionWarning, match=r"shap 0\.1.*numpy 1\.0\.0"):
        loaded = load_model(bundle)
    np.testing.assert_array_equal(loaded.predict(design), model.predict(design))


def test_matching_versions_load_without_warnings(tmp_path, design):
    bundle = save_model(fitted_regression(design), tmp_path / "bundle")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(bundle)


def test_loaded_model_carries_its_manifest(tmp_path, design):
    bundle = save_model(fitted_regression(design), tmp_path / "bundle", manifest={"seed": 3})
    assert load_model(bundle).manifest_ == read_manifest(bundle)


def test_missing_bundle_manifest_or_payload_raises_file_not_found_naming_the_path(tmp_path, design):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_model(tmp_path / "nowhere")
    bundle = save_model(fitted_regression(design), tmp_path / "bundle")
    (bundle / "model.joblib").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.joblib"):
        load_model(bundle)
    (bundle / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"manifest\.json"):
        read_manifest(bundle)


def test_manifest_of_another_format_is_refused(tmp_path, design):
    bundle = save_model(fitted_regression(design), tmp_path / "bundle")
    edit_manifest(bundle, lambda manifest: manifest.update({"format": "something-else"}))
    with pytest.raises(BundleError, match="not a carrisk bundle manifest"):
        load_model(bundle)
