"""The package's public namespace: every exported name resolves, and heavy libraries load only when used."""

import subprocess
import sys
from pathlib import Path

import carrisk


def test_every_public_name_resolves():
    for name in carrisk.__all__:
        assert getattr(carrisk, name) is not None, name
    assert set(carrisk.__all__) <= set(dir(carrisk))


def test_unknown_name_is_an_attribute_error():
    try:
        carrisk.no_such_thing  # noqa: B018
    except AttributeError as err:
        assert "no_such_thing" in str(err)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_the_models_does_not_load_the_explanation_stack():
    code = (
        "import sys, carrisk.models; "
        "print(','.join(m for m in ('shap', 'numba', 'matplotlib', 'lifelines') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def test_result_objects_have_short_readable_reprs():
    import pandas as pd

    cohort = carrisk.simulate_cohort(150, seed=2)
    cv = carrisk.cross_validate(
        cohort.records, carrisk.survival_target(cohort.records), {"coxph": carrisk.make_pipeline("coxph")}, folds=3
    )
    model = carrisk.load_default_model()
    shap = model.explain(pd.read_csv(Path(carrisk.__file__).parent / "data" / "example_patients.csv"))
    texts = {"cv": repr(cv), "model": repr(model), "shap": repr(shap)}
    assert all(len(text) < 400 for text in texts.values()), texts
    assert texts["cv"].startswith("CVResult(models=['coxph'], folds=3") and "rows=150" in texts["cv"]
    assert texts["model"].startswith("EFSModel('average', trained on 420 patients") and "SYNTHETIC" in texts["model"]
    assert texts["shap"].startswith("ShapResult(exact SHAP values of survival at 182.625 days: 15 patient(s)")
