"""Parameters of the simulator: the shipped fitted set, overrides by name, and other centres' variants.

The causes, CAR products and blinatumomab groups here name parameters (``hazard_log_rate_<cause>``,
``car_product_probs``, ``marrow_high_prob_<group>``); :data:`EXTERNAL_CENTRES` are presets of
:func:`centre_params`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import numpy as np
from scipy import special

__all__ = [
    "BLINA_GROUPS",
    "CAR_PRODUCTS",
    "CAUSES",
    "EXTERNAL_CENTRES",
    "RELAPSE_CAUSES",
    "centre_params",
    "load_simulation_params",
]


CAUSES = ("cd19pos", "cd19neg", "lineage_switch", "death")
RELAPSE_CAUSES = ("cd19pos", "cd19neg", "lineage_switch")


CAR_PRODUCTS = ("tisagenlecleucel", "chop_penn", "scri_plat02", "nci_cd28")
BLINA_GROUPS = ("naive", "responder", "nonresponder")


def load_simulation_params() -> dict[str, Any]:
    """Load the fitted simulation parameters shipped with carrisk.

    Returns
    -------
    dict
        Parameter name -> value (numbers, lists of numbers, a dict of product shares, ISO dates), the
        ``parameters`` section of ``carrisk/data/simulation_params.json``.
    """
    text = resources.files("carrisk").joinpath("data", "simulation_params.json").read_text(encoding="utf-8")
    return dict(json.loads(text)["parameters"])


def _resolve_params(params: Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    if params is None:
        resolved = load_simulation_params()
    elif "parameters" in params and isinstance(params["parameters"], Mapping):
        resolved = dict(params["parameters"])
    else:
        resolved = dict(params)
    for key, value in overrides.items():
        if key not in resolved:
            close = difflib.get_close_matches(key, list(resolved), n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(
                f"Unknown simulation parameter {key!r}.{hint} Valid names are the keys of the 'parameters' "
                "section of carrisk/data/simulation_params.json."
            )
        resolved[key] = value
    return resolved


#: Simulated external centres for demonstrations and tests. ``shifted``: more blinatumomab exposure and
#: high-burden disease, mostly commercial tisagenlecleucel, a worse post-remission baseline and fewer
#: remissions (its effects are the default centre's, so a model's calibration slope stays near 1 there).
#: ``baseline_and_effects``: the post-remission baseline hazard x 1.8 and every effect x 0.7, as at a centre
#: with another product or population; a model from the default centre is off in the large *and* in its slope
#: there (about 0.6), the case for a recalibration or revision (benchmarks/external_validation.py).
EXTERNAL_CENTRES: dict[str, dict[str, Any]] = {
    "baseline_and_effects": {"baseline_hazard_multiplier": 1.8, "effect_scale": 0.7},
    "shifted": {
        "case_mix": {
            "blina_exposed": 0.35,
            "high_burden_odds_ratio": 1.8,
            "product": {"tisagenlecleucel": 0.7, "chop_penn": 0.1, "scri_plat02": 0.1, "nci_cd28": 0.1},
        },
        "baseline_hazard_multiplier": 1.6,
        "cr_logodds_shift": -0.5,
    },
}
_CASE_MIX_KEYS = ("blina_exposed", "high_burden_odds_ratio", "product")


def centre_params(
    params: Mapping[str, Any],
    *,
    case_mix: Mapping[str, Any] | None = None,
    baseline_hazard_multiplier: float = 1.0,
    cr_logodds_shift: float = 0.0,
    effect_scale: float = 1.0,
) -> dict[str, Any]:
    """Parameters of a different centre: another case-mix, post-remission baseline hazard, CR rate and effects.

    Parameters
    ----------
    params : mapping
        Resolved simulation parameters (e.g. :func:`load_simulation_params`).
    case_mix : mapping, optional
        ``blina_exposed`` (probability in [0, 1]) replaces ``blina_exposed_prob``; ``high_burden_odds_ratio``
        (> 0) multiplies the odds of ``marrow_high_prob_naive``/``_responder``/``_nonresponder``; ``product``
        (mapping of :data:`CAR_PRODUCTS` names to non-negative shares) replaces ``car_product_probs``.
    baseline_hazard_multiplier : float, default 1.0
        Added as ``log(multiplier)`` to every ``hazard_log_rate_<cause>``.
    cr_logodds_shift : float, default 0.0
        Added to ``cr_intercept``.
    effect_scale : float, default 1.0
        Multiplies every log hazard ratio (``loghr_*``) and day-28 CR log odds ratio (``cr_logor_*``): below 1
        the predictors matter less at this centre (a model from the default centre has a calibration slope
        below 1 there). The baselines are not re-centred, so the centre's mean risk moves too.

    Returns
    -------
    dict
        A new parameter dict; with the defaults equal to ``params``.

    Raises
    ------
    ValueError
        For an unknown case-mix key, a product name not in :data:`CAR_PRODUCTS`, or a value out of range.
    """
    p = dict(params)
    mix = dict(case_mix or {})
    unknown = sorted(set(mix) - set(_CASE_MIX_KEYS))
    if unknown:
        raise ValueError(f"unknown case_mix key(s) {unknown}; valid keys are {list(_CASE_MIX_KEYS)}")
    if "blina_exposed" in mix:
        share = float(mix["blina_exposed"])
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"case_mix blina_exposed must be a probability in [0, 1], got {share}")
        p["blina_exposed_prob"] = share
    if "high_burden_odds_ratio" in mix:
        odds_ratio = float(mix["high_burden_odds_ratio"])
        if not odds_ratio > 0.0:
            raise ValueError(f"case_mix high_burden_odds_ratio must be > 0, got {odds_ratio}")
        for group in BLINA_GROUPS:
            key = f"marrow_high_prob_{group}"
            p[key] = float(special.expit(special.logit(p[key]) + np.log(odds_ratio)))
    if "product" in mix:
        shares = {str(name): float(value) for name, value in dict(mix["product"]).items()}
        bad = sorted(set(shares) - set(CAR_PRODUCTS))
        if bad or any(value < 0 for value in shares.values()) or sum(shares.values()) <= 0:
            raise ValueError(
                f"case_mix product must give non-negative shares of {list(CAR_PRODUCTS)} summing to > 0, got {shares}"
            )
        p["car_product_probs"] = {name: shares.get(name, 0.0) for name in CAR_PRODUCTS}
    multiplier = float(baseline_hazard_multiplier)
    if not (np.isfinite(multiplier) and multiplier > 0.0):
        raise ValueError(f"baseline_hazard_multiplier must be a positive number, got {baseline_hazard_multiplier!r}")
    if multiplier != 1.0:
        for cause in CAUSES:
            p[f"hazard_log_rate_{cause}"] = p[f"hazard_log_rate_{cause}"] + np.log(multiplier)
    if not np.isfinite(cr_logodds_shift):
        raise ValueError(f"cr_logodds_shift must be a finite number, got {cr_logodds_shift!r}")
    if cr_logodds_shift != 0.0:
        p["cr_intercept"] = p["cr_intercept"] + float(cr_logodds_shift)
    scale = float(effect_scale)
    if not (np.isfinite(scale) and scale >= 0.0):
        raise ValueError(f"effect_scale must be a non-negative number, got {effect_scale!r}")
    if scale != 1.0:
        for name in [name for name in p if name.startswith(("loghr_", "cr_logor_"))]:
            p[name] = scale * float(p[name])
    return p
