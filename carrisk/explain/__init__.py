"""SHAP explanations for the carrisk survival models (see :mod:`carrisk.explain._kernels`)."""

from carrisk.explain._kernels import (
    MAX_EXACT_GROUPS,  # noqa: F401  public, outside __all__
    CoxExplainer,
    FeaturePerturbation,  # noqa: F401  public, outside __all__
    ForestExplainer,
    ForestOutput,  # noqa: F401  public, outside __all__
    ShapResult,
    plot_bar,
    plot_beeswarm,
    plot_dependence,
    plot_waterfall,
)

__all__ = [
    "CoxExplainer",
    "ForestExplainer",
    "ShapResult",
    "plot_bar",
    "plot_beeswarm",
    "plot_dependence",
    "plot_waterfall",
]
