"""SHAP explanations for the carrisk survival models.

Two explainers share one result type:

* :class:`ForestExplainer` computes exact TreeSHAP values for a fitted scikit-survival
  :class:`~sksurv.ensemble.RandomSurvivalForest` (or :class:`~sksurv.ensemble.ExtraSurvivalTrees`),
  for the risk score, the survival probability at one or more horizons, or the whole survival curve on a
  time grid in one pass (time-dependent SHAP, as in SurvSHAP(t) [3]_, but exact).
* :class:`CoxExplainer` computes exact SHAP values of a Cox model's linear predictor and exact interventional
  Shapley values of its survival probability :math:`S(t \\mid x) = S_0(t)^{\\exp(\\beta^\\top x)}`.

Both return a :class:`ShapResult`, which can be turned into a tidy DataFrame, aggregated from design-matrix
columns to clinical variables, and drawn with :func:`plot_waterfall`, :func:`plot_beeswarm`, :func:`plot_bar`
and :func:`plot_dependence`.

Modules
-------
* :mod:`carrisk.explain.result`: :class:`ShapResult` and its table helpers;
* :mod:`carrisk.explain._kernels`: the forest flattened into arrays and the numba TreeSHAP kernels;
* :mod:`carrisk.explain.forest`: :class:`ForestExplainer`;
* :mod:`carrisk.explain.cox`: :class:`CoxExplainer` and the exact index game;
* :mod:`carrisk.explain.plots`: :func:`plot_waterfall`, :func:`plot_beeswarm`, :func:`plot_bar`,
  :func:`plot_dependence`.

Why the forest needs its own TreeSHAP
-------------------------------------
``shap.TreeExplainer`` refuses survival forests (shap issue #3308), although every survival tree is an
ordinary scikit-learn tree whose nodes store the Nelson–Aalen cumulative hazard function (CHF) and the
Kaplan–Meier survival function on the forest's ``unique_times_``, and the forest's outputs are plain averages
over trees (``RandomSurvivalForest._predict`` sums the trees and divides by their number):

* risk score: ``forest.predict(X)`` = mean over trees of :math:`\\sum_{j:\\,\\text{event time}} H_h(T_j)`
  for the leaf :math:`h` reached (``SurvivalTree.predict`` sums the CHF over ``is_event_time_`` columns; a
  ``low_memory=True`` tree stores that sum directly and nothing else);
* survival: ``predict_survival_function`` = mean over trees of the leaf Kaplan–Meier curves, evaluated as a
  right-continuous step function on ``unique_times_``.

Every output is therefore a sum over all leaves of all trees of ``leaf value / n_trees`` times the
indicator "x reaches this leaf", and SHAP values are linear in the leaf values.

* ``tree_path_dependent``: per leaf, the path-dependent TreeSHAP game [1]_ is the product game
  :math:`g(S) = v \\prod_{i \\in S} o_i \\prod_{i \\notin S} z_i` over the distinct features of the path
  (:math:`o_i` = 1 if the patient satisfies the path's conditions on feature :math:`i`, :math:`z_i` = product
  of cover ratios). By Owen's multilinear extension its Shapley values are
  :math:`v (o_i - z_i) \\int_0^1 \\prod_{j \\ne i} (t o_j + (1 - t) z_j)\\,dt`, a polynomial of degree < m in
  t integrated exactly by Gauss-Legendre quadrature on :math:`\\lceil m/2 \\rceil` nodes (as in Linear TreeSHAP [4]_).
  A numba kernel walks every tree once per block of up to 128 patients (SIMD lanes), keeping the product at the
  quadrature nodes along the path (a repeated feature replaces its factor by one of three precomputed ratios, as o
  is 0 or 1). Each node's rule is exact for the longest path below it (at least :math:`\\lceil m/2 \\rceil`
  points for the largest m of its leaves); where it shrinks, the product is recomputed from the path's factors,
  and a per-tree dynamic programme picks the rules of least work (keeping the parent's rule is often cheaper), so
  a leaf costs about :math:`m \\lceil m/2 \\rceil` multiply-adds per patient with its own m, not the forest's
  longest path. Every failed condition (:math:`o_i = 0`) gets the same weight. Leaf values enter as sparse steps
  along the output columns (a leaf's Kaplan-Meier curve changes only at its own event times), so the whole curve
  costs the leaf's number of steps, not the number of grid times; every leaf of a tree is first shifted by the
  same constant (the first column's common value), which leaves SHAP values unchanged and removes the step of
  most leaves at the first time. The SHAP curve is the cumulative sum of the steps' contributions. This is what
  ``shap.TreeExplainer`` computes on the same trees (the test-suite checks it against shap's C++ code through
  :meth:`ForestExplainer.to_shap_model`, against subset enumeration, and against the earlier per-leaf polynomial
  algorithm in ``tests/_treeshap_reference.py``).
* ``interventional``: per leaf and background row the game is :math:`v\\,1[A \\subseteq S,\\ B \\cap S =
  \\emptyset]` where :math:`A` holds the path features only the patient satisfies and :math:`B` those only the
  background row satisfies [2]_; its Shapley values are :math:`v\\,(a-1)!\\,b!/(a+b)!` for :math:`i \\in A` and
  :math:`-v\\,a!\\,(b-1)!/(a+b)!` for :math:`i \\in B`. Background rows are grouped per leaf by the bit mask of
  conditions they satisfy, so the cost is per distinct mask, not per background row. The weights of every
  (leaf, path feature) record are computed per patient and multiplied with the leaf values (one BLAS call per
  feature).

Both are exact: ``base_values + values.sum(features) == predictions`` up to floating-point rounding, and the
predictions equal the forest's own ``predict``/``predict_survival_function``. Inputs are cast to float32 and
compared with the float64 thresholds exactly as scikit-learn's trees do.

References
----------
.. [1] Lundberg, S. M., Erion, G., Chen, H., et al. "From local explanations to global understanding with
       explainable AI for trees." Nature Machine Intelligence 2, 56–67 (2020).
.. [2] Laberge, G., Pequignot, Y. "Understanding interventional TreeSHAP: how and why it works."
       arXiv:2209.15123 (2022).
.. [3] Krzyziński, M., Spytek, M., Baniecki, H., Biecek, P. "SurvSHAP(t): time-dependent explanations of
       machine learning survival models." Knowledge-Based Systems 262, 110234 (2023).
.. [4] Yu, P., Bifet, A., Read, J., Xu, C. "Linear TreeShap." Advances in Neural Information Processing Systems
       35 (2022).
"""

# MAX_EXACT_GROUPS, ForestOutput and FeaturePerturbation are public names outside __all__, as before the split
from carrisk.explain.cox import MAX_EXACT_GROUPS, CoxExplainer  # noqa: F401
from carrisk.explain.forest import FeaturePerturbation, ForestExplainer, ForestOutput  # noqa: F401
from carrisk.explain.plots import plot_bar, plot_beeswarm, plot_dependence, plot_waterfall
from carrisk.explain.result import ShapResult

__all__ = [
    "CoxExplainer",
    "ForestExplainer",
    "ShapResult",
    "plot_bar",
    "plot_beeswarm",
    "plot_dependence",
    "plot_waterfall",
]
