"""Reference for the path-dependent TreeSHAP kernel: the per-leaf algorithm carrisk used before the tree walk.

For every patient and every leaf it builds the polynomial prod_j (z_j + o_j t) over the distinct features of the
leaf's path and divides it by each factor (O(m^2) per leaf), giving one Shapley weight per (leaf, feature) record;
the SHAP values are those weights times the leaf values. It shares no code with
``carrisk.explain._kernels._path_dependent_curves`` (tree walk, Owen's formula by Gauss-Legendre quadrature, sparse
leaf steps) beyond the flattened records, so agreement of the two is a real check.
"""

from __future__ import annotations

import numba
import numpy as np

from carrisk.explain import ForestExplainer
from carrisk.explain._kernels import _shapley_weight_table


@numba.njit(cache=False)
def _weights(X, leaf_ptr, rec_feature, rec_lo, rec_hi, rec_nan_ok, rec_zero, table, out):
    max_m = table.shape[0] - 1
    poly = np.empty(max_m + 1)
    ones = np.empty(max(max_m, 1))
    for s in range(X.shape[0]):
        for leaf in range(leaf_ptr.shape[0] - 1):
            start = leaf_ptr[leaf]
            m = leaf_ptr[leaf + 1] - start
            poly[0] = 1.0
            for j in range(m):
                r = start + j
                x = X[s, rec_feature[r]]
                satisfied = rec_nan_ok[r] if np.isnan(x) else rec_lo[r] < x <= rec_hi[r]
                o = 1.0 if satisfied else 0.0
                ones[j] = o
                z = rec_zero[r]
                poly[j + 1] = o * poly[j]
                for k in range(j, 0, -1):
                    poly[k] = z * poly[k] + o * poly[k - 1]
                poly[0] = z * poly[0]
            for j in range(m):
                r = start + j
                o, z = ones[j], rec_zero[r]
                total = 0.0
                if o == 1.0:
                    q = poly[m]
                    total = q * table[m, m - 1]
                    for k in range(m - 1, 0, -1):
                        q = poly[k] - z * q
                        total += q * table[m, k - 1]
                else:
                    for k in range(m):
                        total += poly[k] * table[m, k]
                    total /= z
                out[s, r] = (o - z) * total


def reference_path_dependent_shap(explainer: ForestExplainer, X: np.ndarray, output: str, times=None) -> np.ndarray:
    """SHAP values (n, p, n_outputs) of ``explainer``'s forest by the per-leaf polynomial algorithm."""
    flat = explainer._flat
    X64 = explainer._prepare_X(X)
    values = explainer.leaf_values(output, times)
    table = _shapley_weight_table(max(flat.max_path_features, 1))
    weights = np.empty((X64.shape[0], flat.rec_feature.size))
    _weights(X64, flat.leaf_ptr, flat.rec_feature, flat.rec_lo, flat.rec_hi, flat.rec_nan_ok, flat.rec_zero, table,
             weights)  # fmt: skip
    phi = np.zeros((X64.shape[0], explainer.n_features, values.shape[1]))
    for f in range(explainer.n_features):
        records = np.flatnonzero(flat.rec_feature == f)
        phi[:, f] = weights[:, records] @ values[flat.rec_leaf[records]]
    return phi
