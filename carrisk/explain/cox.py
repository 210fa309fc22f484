"""Exact SHAP for Cox and other linear-index models: :class:`CoxExplainer` and the exact index game."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from carrisk.explain._kernels import _shapley_weight_table
from carrisk.explain.result import ShapResult, _as_frame, _variable_data

#: Largest number of feature groups for exhaustive coalition enumeration in CoxExplainer.
MAX_EXACT_GROUPS = 14


class CoxExplainer:
    """Exact SHAP values for a Cox model, or for any model whose survival is a function of linear indices.

    Parameters
    ----------
    coef : array-like, shape (p,), fitted CoxPHSurvivalAnalysis / CoxnetSurvivalAnalysis, or a linear-index model
        Coefficients :math:`\\beta`. From a fitted sksurv Cox model they are read through its public ``predict``
        (:math:`\\beta_j` = predict(e_j) - predict(0)), which also gives the model's offset, so the linear
        predictor explained is exactly ``model.predict``. A *linear-index model* is any fitted estimator with
        ``index_coefs_`` (p, K), ``index_offsets_`` (K,) and ``survival_from_indices(eta, times)`` giving
        :math:`S(t \\mid x) = g(\\eta)` with :math:`\\eta = x^\\top B + b` (K = 1 for a Cox model; the two-part
        model has K = 2: log-odds of CR and post-CR log hazard; a stack concatenates its members' indices).
    background : array-like, shape (n_background, p)
        Reference patients; absent features take their values (interventional Shapley values).
    baseline_survival : tuple (times, s0) or fitted sksurv Cox model, optional
        Needed for ``output="survival"`` of a Cox model. A tuple gives :math:`S_0` on ``times`` such that
        :math:`S(t \\mid x) = S_0(t)^{\\exp(\\beta^\\top x)}`; a fitted model (Coxnet needs
        ``fit_baseline_model=True``) is evaluated through its ``predict_survival_function``. Not used for a
        linear-index model (it carries its own survival function).
    feature_names : sequence of str, optional
    groups : mapping of str to str, optional
        Column -> clinical variable; the columns of a variable enter and leave coalitions together, so the
        survival attributions are Shapley values of the game over variables. Ungrouped columns are their
        own player.
    n_permutations : int, default 256
        Permutations sampled when there are more than ``MAX_EXACT_GROUPS`` players.
    random_state : int, optional
        Seed for permutation sampling.

    Notes
    -----
    The linear predictor is additive, so its interventional SHAP values are exactly
    :math:`\\beta_j (x_j - \\bar{z}_j)` with base :math:`\\beta^\\top \\bar{z}` (+ offset).
    :math:`S(t \\mid x) = g(\\eta(x))` is not: with at most ``MAX_EXACT_GROUPS`` players the value of
    every coalition :math:`T` is computed exactly as the background mean of
    :math:`g(\\sum_{G \\in T} B_G^\\top x_G + \\sum_{G \\notin T} B_G^\\top z_G + b)`, costing
    :math:`2^q \\times n_{background}` evaluations per patient, and Shapley values follow from the subset
    formula. A player whose coefficients are all zero changes no coalition's value, so its Shapley value is
    exactly 0 (the null-player property) and it is left out of the enumeration. With more players,
    permutations are sampled (``shap.PermutationExplainer`` cannot keep one-hot columns together); each
    permutation telescopes, so additivity still holds exactly, but the values are estimates
    (``ShapResult.exact`` is ``False``).
    """

    def __init__(
        self,
        coef: Any,
        background: Any,
        baseline_survival: Any = None,
        *,
        feature_names: Sequence[str] | None = None,
        groups: Mapping[str, str] | None = None,
        n_permutations: int = 256,
        random_state: int | None = None,
    ) -> None:
        self.background_frame = _as_frame(background, feature_names)
        self.background = self.background_frame.to_numpy(dtype=np.float64)
        p = self.background.shape[1]
        self.feature_names = [str(c) for c in self.background_frame.columns]
        self.index_model = coef if hasattr(coef, "survival_from_indices") else None
        self.model = coef if hasattr(coef, "predict") and self.index_model is None else None
        if self.index_model is not None:
            self.index_coefs = np.asarray(self.index_model.index_coefs_, dtype=np.float64)
            self.index_offsets = np.asarray(self.index_model.index_offsets_, dtype=np.float64)
        elif self.model is not None:
            zero_row = self._model_frame(np.zeros((1, p)))
            offset = float(self.model.predict(zero_row)[0])
            self.index_coefs = (self.model.predict(self._model_frame(np.eye(p))) - offset)[:, None]
            self.index_offsets = np.array([offset])
        else:
            self.index_coefs = np.asarray(coef, dtype=np.float64).reshape(-1, 1)
            self.index_offsets = np.zeros(1)
        if self.index_coefs.shape[0] != p:
            raise ValueError(f"coef has {self.index_coefs.shape[0]} entries but background has {p} columns.")
        self.baseline_survival = baseline_survival
        self.groups = dict(groups or {})
        unknown = set(self.groups) - set(self.feature_names)
        if unknown:
            raise ValueError(f"groups names columns that are not features: {sorted(unknown)}")
        self.n_permutations = n_permutations
        self.random_state = random_state

    @property
    def coef(self) -> np.ndarray:
        """Coefficients of the linear predictor (models with one linear index)."""
        if self.index_coefs.shape[1] != 1:
            raise ValueError(
                f"this model has {self.index_coefs.shape[1]} linear indices, not one linear predictor: explain "
                "output='survival'"
            )
        return self.index_coefs[:, 0]

    @property
    def offset(self) -> float:
        return float(self.index_offsets[0])

    def _model_frame(self, X: np.ndarray) -> Any:
        names = getattr(self.model, "feature_names_in_", None)
        return pd.DataFrame(X, columns=names) if names is not None else X

    def _baseline_at(self, horizons: np.ndarray) -> np.ndarray:
        """Survival at each horizon for a patient with linear predictor ``coef @ x = 0``."""
        baseline = self.baseline_survival
        if baseline is None:
            raise ValueError("output='survival' needs baseline_survival=(times, s0) or a fitted Cox model.")
        if hasattr(baseline, "predict_survival_function"):
            zero_row = np.zeros((1, self.index_coefs.shape[0]))
            names = getattr(baseline, "feature_names_in_", None)
            frame = zero_row if names is None else pd.DataFrame(zero_row, columns=names)
            try:
                curve = baseline.predict_survival_function(frame)[0]
            except ValueError as error:
                raise ValueError(
                    f"Cannot get the baseline survival from {type(baseline).__name__} ({error}); fit "
                    "CoxnetSurvivalAnalysis with fit_baseline_model=True or pass (times, s0)."
                ) from error
            # the model's S(t | x = 0) is the baseline of S(t | x) = s0(t) ** exp(coef @ x)
            return np.asarray(curve(horizons), dtype=np.float64).reshape(-1)
        times, s0 = (np.asarray(a, dtype=np.float64) for a in baseline)
        index = np.searchsorted(times, horizons, side="right") - 1
        return np.where(index >= 0, s0[np.maximum(index, 0)], 1.0)

    def _survival_function(self, horizons: np.ndarray) -> Any:
        """``g``: linear indices without their offsets, shape (..., K) -> survival at ``horizons`` (..., T)."""
        if self.index_model is not None:
            model, offsets = self.index_model, self.index_offsets

            def of_indices(eta: np.ndarray) -> np.ndarray:
                return model.survival_from_indices(eta + offsets, horizons)

            return of_indices
        log_s0 = np.log(np.clip(self._baseline_at(horizons), np.finfo(float).tiny, None))

        def cox(eta: np.ndarray) -> np.ndarray:
            return np.exp(np.exp(eta[..., 0])[..., None] * log_s0)

        return cox

    def _players(self) -> tuple[list[str], np.ndarray]:
        variable_of = [self.groups.get(name, name) for name in self.feature_names]
        players = list(dict.fromkeys(variable_of))
        index = {v: i for i, v in enumerate(players)}
        return players, np.asarray([index[v] for v in variable_of])

    def shap_values(
        self, X: Any, output: Literal["linear_predictor", "survival"] = "linear_predictor", times: Any = None
    ) -> ShapResult:
        """SHAP values of the linear predictor or of the survival probability.

        Parameters
        ----------
        X : array-like or DataFrame, shape (n, p)
        output : {"linear_predictor", "survival"}, default "linear_predictor"
            The linear predictor exists for models with one linear index only.
        times : float or array-like
            Horizon(s) for ``output="survival"``.

        Returns
        -------
        ShapResult
            Linear predictor: one value per column. Survival: one value per player (group or ungrouped
            column); feature names are the player names.
        """
        frame = _as_frame(X, self.feature_names)
        X64 = frame.to_numpy(dtype=np.float64)
        if output == "linear_predictor":
            mean = self.background.mean(axis=0)
            return ShapResult(
                values=self.coef * (X64 - mean),
                base_values=float(self.coef @ mean + self.offset),
                predictions=X64 @ self.coef + self.offset,
                feature_names=list(self.feature_names),
                data=frame.copy(),
                output=output,
            )
        if output != "survival":
            raise ValueError(f"output must be 'linear_predictor' or 'survival', got {output!r}.")
        if times is None:
            raise ValueError("output='survival' needs times (a horizon or an array of horizons).")
        horizons = np.asarray(times, dtype=np.float64)
        keep_axis = horizons.ndim > 0
        horizons = np.atleast_1d(horizons)
        survival = self._survival_function(horizons)
        players, player_of = self._players()
        q = len(players)
        p = self.index_coefs.shape[0]
        membership = np.zeros((p, q))
        membership[np.arange(p), player_of] = 1.0
        # contribution of each player to each linear index, for the patients (n, q, K) and the background
        contrib_x = np.einsum("np,pk,pq->nqk", X64, self.index_coefs, membership)
        contrib_bg = np.einsum("mp,pk,pq->mqk", self.background, self.index_coefs, membership)
        active = np.flatnonzero(np.abs(membership.T @ np.abs(self.index_coefs)).sum(axis=1) > 0)
        exact = len(active) <= MAX_EXACT_GROUPS
        # null players (all coefficients 0) add nothing to any coalition: their Shapley value is 0
        if exact:
            phi_active = _exact_index_game_shap(contrib_x[:, active], contrib_bg[:, active], survival)
        else:
            phi_active = self._permutation_survival_shap(contrib_x[:, active], contrib_bg[:, active], survival)
        phi = np.zeros((len(X64), q, len(horizons)))
        phi[:, active] = phi_active
        base = survival(contrib_bg.sum(axis=1)).mean(axis=0)
        predictions = survival(contrib_x.sum(axis=1))
        data = _variable_data(frame, [self.groups.get(c, c) for c in self.feature_names], players)
        base_value: float | np.ndarray = base
        if not keep_axis:
            phi, predictions, base_value = phi[:, :, 0], predictions[:, 0], float(base[0])
        return ShapResult(
            values=phi,
            base_values=base_value,
            predictions=predictions,
            feature_names=players,
            data=data,
            output=output,
            times=horizons if keep_axis else np.asarray(horizons[0]),
            exact=exact,
            meta={"groups": dict(self.groups), "n_permutations": None if exact else self.n_permutations},
        )

    def _permutation_survival_shap(self, contrib_x: np.ndarray, contrib_bg: np.ndarray, survival: Any) -> np.ndarray:
        rng = np.random.default_rng(self.random_state)
        n, q, _ = contrib_x.shape
        phi = None
        for _ in range(self.n_permutations):
            order = rng.permutation(q)
            eta = np.repeat(contrib_bg.sum(axis=1)[None, :, :], n, axis=0)  # (n, n_background, K)
            previous = survival(eta).mean(axis=1)
            if phi is None:
                phi = np.zeros((n, q, previous.shape[1]))
            for g in order:
                eta = eta + (contrib_x[:, g][:, None, :] - contrib_bg[:, g][None, :, :])
                current = survival(eta).mean(axis=1)
                phi[:, g] += current - previous
                previous = current
        return phi / self.n_permutations if phi is not None else np.zeros((n, q, 0))


#: Coalition values evaluated at once by :func:`_exact_index_game_shap` (bounds its arrays to a few MB).
_COALITION_BLOCK = 1 << 16


def _coalition_weights(d: int) -> np.ndarray:
    """Shapley weights of the ``2^d`` coalitions of ``d`` players, shape (2^d, d).

    Coalition ``S`` is the bit mask ``S`` (player ``j`` is bit ``j``); ``weights[S, j] = (|S|-1)! (d-|S|)! / d!``
    when ``j`` is in ``S`` and ``-|S|! (d-|S|-1)! / d!`` when it is not, so that ``weights.T @ v`` is every
    player's Shapley value of the game with coalition values ``v``.
    """
    in_coalition = ((np.arange(1 << d)[:, None] >> np.arange(d)) & 1).astype(bool)
    sizes = in_coalition.sum(axis=1)
    table = _shapley_weight_table(d)
    with_player = table[d, np.maximum(sizes - 1, 0)][:, None]
    without_player = table[d, np.minimum(sizes, d - 1)][:, None]
    return np.where(in_coalition, with_player, -without_player)


def _exact_index_game_shap(contrib_x: np.ndarray, contrib_bg: np.ndarray, survival: Any) -> np.ndarray:
    """Exact interventional Shapley values of ``survival(sum of the players' linear-index contributions)``.

    Parameters
    ----------
    contrib_x : (n, q, K) array
        Each player's contribution to each of the K linear indices, for the explained patients.
    contrib_bg : (m, q, K) array
        The same for the background patients.
    survival : callable
        ``(..., K)`` indices -> ``(..., T)`` outputs.

    Returns
    -------
    (n, q, T) array

    Notes
    -----
    The game of patient ``x`` is the background mean of one game per background patient ``z``,
    :math:`v_z(S) = g(\\sum_{G \\in S} c_G(x) + \\sum_{G \\notin S} c_G(z))`, and Shapley values are linear in
    the game, so :math:`\\phi(x) = \\frac{1}{m} \\sum_z \\phi(v_z)`. In :math:`v_z` a player whose contribution is
    the same for ``x`` and ``z`` (same category, same value) never changes a coalition's value: it is a null
    player, its Shapley value is 0, and removing it leaves every other player's Shapley value unchanged. So each
    pair (x, z) is solved exactly over its ``d`` differing players only: ``2^d`` evaluations of ``g`` instead
    of ``2^q`` (on the shipped model about 120 instead of 8,192 on average), pairs with the same ``d``
    together. The coalitions' indices are built by doubling (adding player ``j`` to the first ``2^j``
    coalitions gives the next ``2^j``), one addition per coalition. No BLAS call, so the cost does not depend
    on the BLAS thread count. The per-patient enumeration of all ``2^q`` coalitions it replaces is kept in the
    tests, which compare the two.
    """
    n, q, n_indices = contrib_x.shape
    bg_total = contrib_bg.sum(axis=1)  # (m, K): every pair's empty coalition
    phi = np.zeros((n, q, survival(bg_total[:1]).shape[-1]))
    differs = (contrib_x[:, None] != contrib_bg[None]).any(axis=3)  # (n, m, q)
    n_differing = differs.sum(axis=2)
    for d in map(int, np.unique(n_differing[n_differing > 0])):
        patient, background = np.nonzero(n_differing == d)
        players = np.nonzero(differs[patient, background])[1].reshape(-1, d)  # each pair's players, ascending
        weights = _coalition_weights(d)
        block = max(1, _COALITION_BLOCK >> d)
        for start in range(0, len(patient), block):
            i, z, g = (a[start : start + block] for a in (patient, background, players))
            delta = contrib_x[i[:, None], g] - contrib_bg[z[:, None], g]  # (pairs, d, K)
            eta = np.empty((1 << d, len(i), n_indices))  # (coalition, pair, K)
            eta[0] = bg_total[z]
            for j in range(d):
                np.add(eta[: 1 << j], delta[:, j], out=eta[1 << j : 2 << j])
            shapley = np.einsum("cd,cpt->pdt", weights, survival(eta))  # (pairs, d, T)
            np.add.at(phi, (i[:, None], g), shapley)
    return phi / len(contrib_bg)
