"""carrisk: event-free survival after CD19 CAR T-cell therapy for relapsed/refractory B-ALL.

Research tool. The embedded default data are synthetic (calibrated to published figures); nothing here is
clinically validated.
"""

from __future__ import annotations

import importlib
import os as _os
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from carrisk._warnings import WORKER_ENV as _WORKER_ENV
from carrisk._warnings import install_in_worker as _install_in_worker

if TYPE_CHECKING:
    from carrisk.bundle import BundleError, BundleVersionError, load_model, read_manifest, save_model
    from carrisk.calibration import pooled_calibration, subgroup_calibration
    from carrisk.competing import (
        CauseSpecificModel,
        aalen_johansen,
        cause_specific_cox,
        competing_risks_analysis,
        derive_first_event,
        fine_gray,
        gray_test,
        predict_causes,
    )
    from carrisk.datasets import load_public_dataset, load_survival_data
    from carrisk.decision_curves import decision_curve
    from carrisk.evaluate import ExternalValidation, ModelComparison, evaluate_model, evaluate_models
    from carrisk.explain import CoxExplainer, ForestExplainer, ShapResult
    from carrisk.features import (
        BlinatumomabStatus,
        CD19Expression,
        ClinicalFeatures,
        Covariates,
        DiseaseBurden,
        FeatureSpec,
        KMT2ARearrangement,
        PriorTransplant,
        build_design_matrix,
    )
    from carrisk.models import make_pipeline
    from carrisk.predict import EFSModel, fit_efs_model
    from carrisk.reproduce import reproduce_study
    from carrisk.samplesize import development_sample_size, validation_sample_size
    from carrisk.schema import RecordError, read_records, survival_target, validate_records
    from carrisk.shipped import default_model_path, load_default_model, records_help
    from carrisk.simulate import SimulatedCohort, oracle_concordance, simulate_cohort, true_survival
    from carrisk.tuning import tuned_model
    from carrisk.updating import UpdatedModel, update_model
    from carrisk.validation import CVResult, cross_validate

#: Public name -> module. Imported on first use (PEP 562), so that ``import carrisk.models`` or the command line
#: does not pay for shap, numba, matplotlib and lifelines when it does not need them.
_EXPORTS = {
    "BundleError": "carrisk.bundle",
    "BundleVersionError": "carrisk.bundle",
    "load_model": "carrisk.bundle",
    "read_manifest": "carrisk.bundle",
    "save_model": "carrisk.bundle",
    "CauseSpecificModel": "carrisk.competing",
    "aalen_johansen": "carrisk.competing",
    "cause_specific_cox": "carrisk.competing",
    "competing_risks_analysis": "carrisk.competing",
    "derive_first_event": "carrisk.competing",
    "fine_gray": "carrisk.competing",
    "gray_test": "carrisk.competing",
    "predict_causes": "carrisk.competing",
    "pooled_calibration": "carrisk.calibration",
    "subgroup_calibration": "carrisk.calibration",
    "load_public_dataset": "carrisk.datasets",
    "load_survival_data": "carrisk.datasets",
    "decision_curve": "carrisk.decision_curves",
    "ExternalValidation": "carrisk.evaluate",
    "evaluate_model": "carrisk.evaluate",
    "evaluate_models": "carrisk.evaluate",
    "ModelComparison": "carrisk.evaluate",
    "development_sample_size": "carrisk.samplesize",
    "validation_sample_size": "carrisk.samplesize",
    "UpdatedModel": "carrisk.updating",
    "update_model": "carrisk.updating",
    "CoxExplainer": "carrisk.explain",
    "ForestExplainer": "carrisk.explain",
    "ShapResult": "carrisk.explain",
    "BlinatumomabStatus": "carrisk.features",
    "CD19Expression": "carrisk.features",
    "ClinicalFeatures": "carrisk.features",
    "Covariates": "carrisk.features",
    "DiseaseBurden": "carrisk.features",
    "FeatureSpec": "carrisk.features",
    "KMT2ARearrangement": "carrisk.features",
    "PriorTransplant": "carrisk.features",
    "build_design_matrix": "carrisk.features",
    "make_pipeline": "carrisk.models",
    "EFSModel": "carrisk.predict",
    "fit_efs_model": "carrisk.predict",
    "reproduce_study": "carrisk.reproduce",
    "RecordError": "carrisk.schema",
    "read_records": "carrisk.schema",
    "survival_target": "carrisk.schema",
    "validate_records": "carrisk.schema",
    "default_model_path": "carrisk.shipped",
    "load_default_model": "carrisk.shipped",
    "records_help": "carrisk.shipped",
    "SimulatedCohort": "carrisk.simulate",
    "oracle_concordance": "carrisk.simulate",
    "simulate_cohort": "carrisk.simulate",
    "true_survival": "carrisk.simulate",
    "CVResult": "carrisk.validation",
    "cross_validate": "carrisk.validation",
    "tuned_model": "carrisk.tuning",
    "TwoPartSurvival": "carrisk.two_part",
    "CoxnetCV": "carrisk.penalized",
    "PenaltyWeights": "carrisk.penalized",
    "StackedSurvival": "carrisk.ensemble",
}

# In a worker process the command line started (joblib's cross-validation folds), warnings follow its rules.
if _os.environ.get(_WORKER_ENV):
    _install_in_worker()

try:
    __version__ = version("carrisk")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "BlinatumomabStatus",
    "BundleError",
    "BundleVersionError",
    "CD19Expression",
    "CVResult",
    "CauseSpecificModel",
    "ClinicalFeatures",
    "Covariates",
    "CoxExplainer",
    "CoxnetCV",
    "DiseaseBurden",
    "EFSModel",
    "ExternalValidation",
    "FeatureSpec",
    "ForestExplainer",
    "KMT2ARearrangement",
    "ModelComparison",
    "PenaltyWeights",
    "PriorTransplant",
    "RecordError",
    "ShapResult",
    "SimulatedCohort",
    "StackedSurvival",
    "TwoPartSurvival",
    "UpdatedModel",
    "aalen_johansen",
    "build_design_matrix",
    "cause_specific_cox",
    "competing_risks_analysis",
    "cross_validate",
    "decision_curve",
    "default_model_path",
    "derive_first_event",
    "development_sample_size",
    "evaluate_model",
    "evaluate_models",
    "fine_gray",
    "fit_efs_model",
    "gray_test",
    "load_default_model",
    "load_model",
    "load_public_dataset",
    "load_survival_data",
    "make_pipeline",
    "oracle_concordance",
    "pooled_calibration",
    "predict_causes",
    "read_manifest",
    "read_records",
    "records_help",
    "reproduce_study",
    "save_model",
    "simulate_cohort",
    "subgroup_calibration",
    "survival_target",
    "true_survival",
    "tuned_model",
    "update_model",
    "validate_records",
    "validation_sample_size",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'carrisk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
