"""The tuning module: searches, what they chose, and the package's layering around them."""

import ast
from pathlib import Path

import numpy as np
import pytest

import carrisk
from carrisk import simulate_cohort, survival_target, tuning
from carrisk.datasets import load_public_dataset, load_survival_data
from carrisk.models import make_pipeline

PACKAGE = Path(carrisk.__file__).parent


@pytest.fixture(scope="module")
def small():
    table = load_public_dataset("gbsg2").sample(160, random_state=3).reset_index(drop=True)
    return load_survival_data(table, time_col="time", event_col="event", features=["age", "pnodes", "tsize", "horTh"])


def test_no_module_imports_another_modules_private_names():
    # a subpackage's modules may share private names among themselves (carrisk.explain.forest uses
    # carrisk.explain._kernels._FlatForest); nothing outside a subpackage may reach into it
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        package = ".".join(relative.parts[:-1]) if relative.name != "__init__" else ".".join(relative.parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level > 0:
                continue
            module = node.module or ""
            inside = package != "carrisk" and module.startswith(package + ".")
            if module.startswith("carrisk") and not inside:
                offenders += [f"{relative}: {module}.{a.name}" for a in node.names if a.name.startswith("_")]
    assert offenders == []
    assert len(list(PACKAGE.rglob("*.py"))) > len(list(PACKAGE.glob("*.py")))  # the subpackages were scanned


def test_tuned_model_is_the_public_name_of_the_tuning_module():
    assert carrisk.tuned_model is tuning.tuned_model


def test_tuning_record_says_how_the_parameters_were_chosen(small):
    forest = tuning.tuned_model("rsf", small.spec, {"model__min_samples_leaf": [10, 20]}, n_estimators=20)
    coxnet = tuning.tuned_model("coxnet", small.spec, {"model__alpha_ratio": [0.3, 0.1]}, inner_folds=2)
    fixed = tuning.tuned_model("coxph", small.spec, {})
    assert isinstance(forest, tuning.OutOfBagSearch)
    assert isinstance(coxnet, tuning.StratifiedGridSearch)
    assert tuning.tuning_record(forest, 3) == {"method": "out-of-bag", "scoring": "harrell"}
    assert tuning.tuning_record(coxnet, 2) == {"method": "inner cross-validation", "folds": 2, "scoring": "harrell"}
    assert tuning.tuning_record(fixed, 3)["method"].startswith("none")
    fitted = coxnet.fit(small.records, small.y)
    assert tuning.chosen_params(fitted)["alpha_ratio"] in (0.3, 0.1)
    assert tuning.final_pipeline(fitted) is fitted.best_estimator_
    plain = make_pipeline("coxph", small.spec)
    assert tuning.final_pipeline(plain) is plain and tuning.chosen_params(plain) == {}


def test_chosen_params_record_the_penalties_a_self_tuning_model_chose(small):
    coxnet_cv = make_pipeline("coxnet_cv", small.spec).fit(small.records, small.y)  # penalty by CV deviance
    assert tuning.chosen_params(coxnet_cv) == {"alpha": coxnet_cv[-1].alpha_}


def test_jsonable_unwraps_numpy_scalars_only():
    assert type(tuning.jsonable(np.float64(0.5))) is float and tuning.jsonable(np.int64(3)) == 3
    assert tuning.jsonable("sqrt") == "sqrt"


def test_the_average_records_its_fixed_weights_and_each_members_penalties():
    cohort = carrisk.simulate_cohort(150, seed=4)
    average = make_pipeline("average").fit(cohort.records, carrisk.survival_target(cohort.records))
    cox, two_part = average[-1].estimators_
    assert tuning.chosen_params(average) == {
        "weights": [0.5, 0.5],
        "coxnet_cv__alpha": cox.alpha_,
        "two_part__cr_C": two_part.cr_C_,
        "two_part__post_alpha": two_part.post_alpha_,
    }
    record = tuning.tuning_record(average, 3)
    assert record["method"].startswith("fixed weights")
    assert set(record["at_grid_edge"]) <= {"coxnet_cv__alpha", "two_part__cr_C", "two_part__post_alpha"}


def test_penalties_at_the_edge_of_their_grid_are_named():
    cohort = carrisk.simulate_cohort(150, seed=4)
    y = carrisk.survival_target(cohort.records)
    cox = make_pipeline("coxnet_cv", alpha_min_ratio=0.9, n_alphas=2).fit(cohort.records, y)[-1]
    assert cox.alpha_ == cox.alphas_[-1] and cox.alpha_at_edge_  # a two-point path: CV takes the smaller penalty
    assert not make_pipeline("coxnet_cv", alpha=cox.alpha_).fit(cohort.records, y)[-1].alpha_at_edge_
    two_part = make_pipeline("two_part").fit(cohort.records, y)[-1]
    two_part.cr_C_at_edge_ = True
    two_part.post_model_.alpha_at_edge_ = True
    assert tuning.penalties_at_grid_edge(two_part) == ["cr_C", "post_alpha"]
    del two_part.cr_C_at_edge_  # a bundle pickled before the flags existed
    assert tuning.penalties_at_grid_edge(two_part) == ["post_alpha"]


def test_out_of_bag_search_reports_the_setting_that_fails_every_candidate():
    # Each candidate failing for the same reason is a wrong setting, not a bad grid: its own message, as ValueError.
    cohort = simulate_cohort(n=150, seed=3)
    search = tuning.tuned_model("rsf", None, None, n_estimators=10, ci_group_size=2, engine="sksurv")
    with pytest.raises(ValueError, match="needs engine='hist'"):
        search.fit(cohort.records, survival_target(cohort.records))
