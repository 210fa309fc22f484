"""carrisk: event-free survival after CD19 CAR T-cell therapy for relapsed/refractory B-ALL.

Research tool. The embedded default data are synthetic (calibrated to published figures); nothing here is
clinically validated.
"""

from importlib.metadata import PackageNotFoundError, version

from carrisk.bundle import BundleError, BundleVersionError, load_model, read_manifest, save_model
from carrisk.datasets import load_public_dataset, load_survival_data
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
from carrisk.schema import RecordError, read_records, survival_target, validate_records
from carrisk.simulate import SimulatedCohort, oracle_concordance, simulate_cohort, true_survival
from carrisk.validation import CVResult, cross_validate, tuned_model

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
    "ClinicalFeatures",
    "Covariates",
    "CoxExplainer",
    "DiseaseBurden",
    "EFSModel",
    "FeatureSpec",
    "ForestExplainer",
    "KMT2ARearrangement",
    "PriorTransplant",
    "RecordError",
    "ShapResult",
    "SimulatedCohort",
    "build_design_matrix",
    "cross_validate",
    "fit_efs_model",
    "load_model",
    "load_public_dataset",
    "load_survival_data",
    "make_pipeline",
    "oracle_concordance",
    "read_manifest",
    "read_records",
    "reproduce_study",
    "save_model",
    "simulate_cohort",
    "survival_target",
    "true_survival",
    "tuned_model",
    "validate_records",
]
