"""What ships with carrisk: the default model and the record documentation, found in a wheel or a source tree."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import carrisk
from carrisk import shipped
from carrisk.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_source_checkout_uses_the_top_level_model_and_records_doc():
    assert carrisk.default_model_path() == ROOT / "models" / "default"
    assert carrisk.records_help() == (ROOT / "docs" / "records.md").read_text(encoding="utf-8")


def test_installed_copy_is_found_through_importlib_resources_first(tmp_path, monkeypatch):
    installed = tmp_path / "site-packages" / "carrisk"
    (installed / "_shipped" / "default").mkdir(parents=True)
    (installed / "_shipped" / "records.md").write_text("# installed records", encoding="utf-8")
    monkeypatch.setattr(shipped.resources, "files", lambda package: installed)
    assert carrisk.default_model_path() == installed / "_shipped" / "default"
    assert carrisk.records_help() == "# installed records"


def test_missing_resources_raise_file_not_found_naming_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped.resources, "files", lambda package: tmp_path)
    monkeypatch.setattr(shipped, "_IN_SOURCE_TREE", {"model": tmp_path / "no-model", "records": tmp_path / "no.md"})
    with pytest.raises(FileNotFoundError, match="shipped default model is missing"):
        carrisk.default_model_path()
    with pytest.raises(FileNotFoundError, match="record documentation is missing"):
        carrisk.records_help()


def test_load_default_model_gives_a_synthetic_model_that_predicts(example_records):
    model = carrisk.load_default_model()
    assert model.manifest_ == carrisk.read_manifest(carrisk.default_model_path())
    table = model.predict_efs(example_records.head(2), top=0)
    assert len(table) == 2 and table["efs_6mo"].between(0, 1).all()


def test_setup_copies_exactly_the_files_the_lookup_reads():
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    copied = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SHIPPED" for t in node.targets)
    )
    assert copied == {
        str(shipped._IN_SOURCE_TREE[kind].relative_to(ROOT)): shipped._INSTALLED[kind] for kind in ("model", "records")
    }


def test_records_help_command_prints_the_record_documentation():
    result = CliRunner().invoke(app, ["records-help"])
    assert result.exit_code == 0
    assert result.output.strip() == carrisk.records_help().strip()


def test_missing_column_error_points_to_records_help(example_records):
    with pytest.raises(carrisk.RecordError, match="carrisk records-help"):
        carrisk.validate_records(example_records.drop(columns=["marrow_blasts_pct"]))


def test_python_dash_m_carrisk_runs_the_command_line():
    done = subprocess.run(
        [sys.executable, "-m", "carrisk", "--version"], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"carrisk {carrisk.__version__}"
