"""The survival forest flattened into arrays, and the numba kernels of its exact TreeSHAP.

Leaf records (the distinct features on each root-to-leaf path with their intervals and cover ratios), the compiled
tree walk, the path-dependent kernel (Owen's formula by Gauss-Legendre quadrature) and the interventional
per-record weights; the algorithms are described in :mod:`carrisk.explain`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

#: Largest number of distinct features on one root-to-leaf path (bit masks are int64).
_MAX_PATH_FEATURES = 62


def _shapley_weight_table(max_players: int) -> np.ndarray:
    """``table[m, k] = k! (m - k - 1)! / m!``, the Shapley weight of a coalition of size k among m players."""
    table = np.zeros((max_players + 1, max(max_players, 1)))
    for m in range(1, max_players + 1):
        for k in range(m):
            table[m, k] = 1.0 / (m * math.comb(m - 1, k))
    return table


@numba.njit(cache=True, inline="always")
def _satisfies(x: float, lo: float, hi: float, nan_ok: bool) -> bool:
    if np.isnan(x):
        return nan_ok
    return lo < x <= hi


@numba.njit(cache=True, inline="always")
def _popcount(mask: np.int64) -> int:
    count = 0
    while mask:
        mask &= mask - 1
        count += 1
    return count


@numba.njit(parallel=True, cache=True)
def _interventional_weights(
    X, leaf_ptr, rec_feature, rec_lo, rec_hi, rec_nan_ok, rec_col, bg_ptr, bg_mask, bg_weight, table, out
):
    n_leaves = leaf_ptr.shape[0] - 1
    for s in numba.prange(X.shape[0]):
        for leaf in range(n_leaves):
            start = leaf_ptr[leaf]
            m = leaf_ptr[leaf + 1] - start
            x_mask = np.int64(0)
            for j in range(m):
                r = start + j
                out[s, rec_col[r]] = 0.0
                if _satisfies(X[s, rec_feature[r]], rec_lo[r], rec_hi[r], rec_nan_ok[r]):
                    x_mask |= np.int64(1) << j
            full = (np.int64(1) << m) - 1
            only_bg = full & ~x_mask  # conditions the patient fails: the background row must satisfy them
            b = _popcount(only_bg)
            for u in range(bg_ptr[leaf], bg_ptr[leaf + 1]):
                z_mask = bg_mask[u]
                if only_bg & ~z_mask:
                    continue  # neither the patient nor the background row opens these conditions
                only_x = x_mask & ~z_mask
                a = _popcount(only_x)
                if a + b == 0:
                    continue
                w_x = table[a + b, a - 1] * bg_weight[u] if a > 0 else 0.0
                w_bg = table[a + b, a] * bg_weight[u] if b > 0 else 0.0
                for j in range(m):
                    bit = np.int64(1) << j
                    if only_x & bit:
                        out[s, rec_col[start + j]] += w_x
                    elif only_bg & bit:
                        out[s, rec_col[start + j]] -= w_bg


@numba.njit(cache=True)
def _max_depth(roots, left, right):
    deepest = 0
    stack = np.empty(2 * left.size + 1, dtype=np.int64)
    depth = np.empty(2 * left.size + 1, dtype=np.int64)
    for t in range(roots.shape[0]):
        top = 1
        stack[0] = roots[t]
        depth[0] = 0
        while top > 0:
            top -= 1
            node, d = stack[top], depth[top]
            deepest = max(deepest, d)
            if left[node] >= 0:
                stack[top], depth[top] = left[node], d + 1
                stack[top + 1], depth[top + 1] = right[node], d + 1
                top += 2
    return deepest


@numba.njit(cache=True, inline="always")
def _pick(o, a, b):
    # a where o == 1, b where o == 0: both products are exact, so is the sum (branch-free, so loops vectorise)
    return o * a + (1.0 - o) * b


@numba.njit(parallel=True, cache=True, fastmath={"contract"})
def _path_dependent_curves(
    X, roots, left, right, feature, threshold, nan_left, cover, node_leaf, node_order, inc_ptr, inc_col, inc_val,
    gl_nodes, gl_weights, max_depth, block, out
):  # fmt: skip
    # One depth-first walk of every tree per block of patients; arrays are laid out with the block's patients
    # innermost, so the arithmetic runs in SIMD lanes over patients. poly[d, q] holds prod_j (t o_j + (1 - t) z_j)
    # over the path's distinct features at the points of the Gauss-Legendre rule of the node at depth d, whose
    # number of points node_order[node] suffices for every leaf below it (rows q >= n_q are padding, multiplied by
    # zero coefficients). Cost per (patient, leaf): m (n_q + k) multiply-adds for m path features and k steps, plus
    # n_q per node; the step scatter into acc (time x feature x patient, 4 MB per block at 200 times) dominates.
    # fastmath "contract" only fuses a * b + c into one rounding (FMA); results stay exact to ~1e-16.
    n, p = X.shape
    q_max = gl_nodes.shape[0]
    q_pad = q_max + 1  # the leaf weights are summed over groups of 4 or 2 points
    n_out = out.shape[2]
    fail_coef = np.zeros((q_max, q_pad))  # a failed condition's weight: -sum_q w_q P(t_q) / (1 - t_q)
    for r in range(q_max):
        for q in range(r + 1):
            fail_coef[r, q] = -gl_weights[r, q] / (1.0 - gl_nodes[r, q])
    for blk in numba.prange((n + block - 1) // block):
        s0 = blk * block
        nb = min(block, n - s0)
        xb = np.empty((p, nb))  # the block's features, patients contiguous
        for j in range(p):
            for b in range(nb):
                xb[j, b] = X[s0 + b, j]
        satisfied = np.ones((p, nb))  # o_j: the patient meets every condition on feature j so far
        zero = np.ones(p)  # z_j: product of the cover ratios of the conditions on feature j so far
        on_path = np.zeros(p, dtype=np.bool_)
        path = np.empty(p, dtype=np.int64)  # distinct features in order of first appearance (the records' order)
        n_path = 0
        poly = np.ones((max_depth + 1, q_pad, nb))  # row q_max: padding (times a zero coefficient)
        undo_feature = np.empty(max_depth + 1, dtype=np.int64)
        undo_zero = np.empty(max_depth + 1)
        undo_satisfied = np.empty((max_depth + 1, nb))
        undo_new = np.zeros(max_depth + 1, dtype=np.bool_)
        stack_node = np.empty(max_depth + 2, dtype=np.int64)
        stack_depth = np.empty(max_depth + 2, dtype=np.int64)
        stack_parent = np.empty(max_depth + 2, dtype=np.int64)
        goes = np.empty(nb)
        w_fail = np.empty(nb)
        weight = np.empty((p, nb))
        coef = np.zeros((p, q_pad))  # per feature, for coef_zero[j] and coef_points[j]
        coef_zero = np.full(p, np.nan)
        coef_points = np.zeros(p, dtype=np.int64)
        acc = np.zeros((n_out, p, nb))
        depth = 0
        for t in range(roots.shape[0]):
            top = 1
            stack_node[0], stack_depth[0], stack_parent[0] = roots[t], 0, -1
            while top > 0:
                top -= 1
                node, d, parent = stack_node[top], stack_depth[top], stack_parent[top]
                while depth >= d and depth > 0:
                    j = undo_feature[depth]
                    zero[j] = undo_zero[depth]
                    satisfied[j, :] = undo_satisfied[depth, :]
                    if undo_new[depth]:
                        on_path[j] = False
                        n_path -= 1
                    depth -= 1
                n_q = node_order[node]
                if parent >= 0:
                    j = feature[parent]
                    went_left = left[parent] == node
                    z_old = zero[j]
                    z_new = z_old * cover[node] / cover[parent]
                    undo_feature[d], undo_zero[d], undo_new[d] = j, z_old, not on_path[j]
                    undo_satisfied[d, :] = satisfied[j, :]
                    thr = threshold[parent]
                    nan_goes_left = 1.0 if nan_left[parent] else 0.0
                    follow_left = 1.0 if went_left else 0.0
                    for b in range(nb):  # 1.0 where the patient follows this edge (as 0/1 arithmetic: vectorises)
                        x = xb[j, b]
                        left_b = (1.0 if x <= thr else 0.0) + (1.0 if x != x else 0.0) * nan_goes_left
                        goes[b] = _pick(follow_left, left_b, 1.0 - left_b)
                    same_rule = n_q == node_order[parent]
                    if same_rule:
                        if on_path[j]:
                            # o_old and goes are 0 or 1: the factor's ratio takes one of three values
                            r_failed = z_new / z_old
                            for q in range(n_q):
                                tq = gl_nodes[n_q - 1, q]
                                sq = 1.0 - tq
                                den = tq + sq * z_old
                                r_stays = (tq + sq * z_new) / den
                                r_fails = sq * z_new / den
                                for b in range(nb):  # products with 0 or 1 select exactly (and vectorise)
                                    o, g = satisfied[j, b], goes[b]
                                    r = _pick(o, _pick(g, r_stays, r_fails), r_failed)
                                    poly[d, q, b] = poly[d - 1, q, b] * r
                        else:
                            for q in range(n_q):
                                tq = gl_nodes[n_q - 1, q]
                                sz = (1.0 - tq) * z_new
                                for b in range(nb):
                                    poly[d, q, b] = poly[d - 1, q, b] * (tq * goes[b] + sz)
                    for b in range(nb):
                        satisfied[j, b] *= goes[b]
                    zero[j] = z_new
                    if not on_path[j]:
                        on_path[j] = True
                        path[n_path] = j
                        n_path += 1
                    depth = d
                    if not same_rule:  # fewer points suffice below: the product afresh on the shorter rule
                        for q in range(n_q):
                            tq = gl_nodes[n_q - 1, q]
                            sq = 1.0 - tq
                            for b in range(nb):
                                poly[d, q, b] = 1.0
                            for k in range(n_path):
                                jk = path[k]
                                zk = sq * zero[jk]
                                for b in range(nb):
                                    poly[d, q, b] *= tq * satisfied[jk, b] + zk
                if left[node] >= 0:
                    stack_node[top], stack_depth[top], stack_parent[top] = right[node], d + 1, node
                    stack_node[top + 1], stack_depth[top + 1], stack_parent[top + 1] = left[node], d + 1, node
                    top += 2
                    continue
                leaf = node_leaf[node]
                lo, hi = inc_ptr[leaf], inc_ptr[leaf + 1]
                if hi == lo or n_path == 0:
                    continue
                # Owen: phi_i = (o_i - z_i) int_0^1 prod_{j != i} (t o_j + (1 - t) z_j) dt, a polynomial of degree
                # < n_path integrated exactly on n_q >= ceil(n_path / 2) points: sum_q P(t_q) coef_i[q] with
                # coef_i[q] = (1 - z_i) w_q / (t_q + (1 - t_q) z_i) where the patient meets feature i's conditions and
                # the same -w_q / (1 - t_q) for every failed condition. A feature's coefficients are kept while its z
                # and the rule stay (most of a leaf's features were split above its parent). Each weight is one pass
                # over the patients per 4 points (the last pass 2 points when 1 or 2 remain; padding is zero).
                n2 = (n_q + 1) // 2 * 2
                for k in range(n_path):
                    j = path[k]
                    z = zero[j]
                    if coef_zero[j] != z or coef_points[j] != n_q:
                        coef_zero[j], coef_points[j] = z, n_q
                        for q in range(n_q):
                            tq = gl_nodes[n_q - 1, q]
                            coef[j, q] = (1.0 - z) * gl_weights[n_q - 1, q] / (tq + (1.0 - tq) * z)
                        for q in range(n_q, n2):
                            coef[j, q] = 0.0
                for q in range(0, n2, 2):  # the failed conditions' weight, 2 points per pass
                    c0, c1 = fail_coef[n_q - 1, q], fail_coef[n_q - 1, q + 1]
                    if q == 0:
                        for b in range(nb):
                            w_fail[b] = poly[d, 0, b] * c0 + poly[d, 1, b] * c1
                    else:
                        for b in range(nb):
                            w_fail[b] += poly[d, q, b] * c0 + poly[d, q + 1, b] * c1
                for k in range(n_path):
                    j = path[k]
                    q = 0
                    while q < n2:
                        last = q + 4 >= n2
                        if q + 4 <= n2:
                            c0, c1, c2, c3 = coef[j, q], coef[j, q + 1], coef[j, q + 2], coef[j, q + 3]
                            if q == 0 and last:  # one pass: the sum, or the failed weight
                                for b in range(nb):
                                    v = poly[d, 0, b] * c0 + poly[d, 1, b] * c1
                                    v += poly[d, 2, b] * c2 + poly[d, 3, b] * c3
                                    weight[k, b] = _pick(satisfied[j, b], v, w_fail[b])
                            elif q == 0:
                                for b in range(nb):
                                    weight[k, b] = (poly[d, 0, b] * c0 + poly[d, 1, b] * c1) + (
                                        poly[d, 2, b] * c2 + poly[d, 3, b] * c3
                                    )
                            elif not last:
                                for b in range(nb):
                                    weight[k, b] += (poly[d, q, b] * c0 + poly[d, q + 1, b] * c1) + (
                                        poly[d, q + 2, b] * c2 + poly[d, q + 3, b] * c3
                                    )
                            else:  # last pass: add, or the failed weight
                                for b in range(nb):
                                    v = weight[k, b] + (poly[d, q, b] * c0 + poly[d, q + 1, b] * c1)
                                    v += poly[d, q + 2, b] * c2 + poly[d, q + 3, b] * c3
                                    weight[k, b] = _pick(satisfied[j, b], v, w_fail[b])
                            q += 4
                        else:  # two points, the last pass
                            c0, c1 = coef[j, q], coef[j, q + 1]
                            if q == 0:
                                for b in range(nb):
                                    v = poly[d, 0, b] * c0 + poly[d, 1, b] * c1
                                    weight[k, b] = _pick(satisfied[j, b], v, w_fail[b])
                            else:
                                for b in range(nb):
                                    v = weight[k, b] + (poly[d, q, b] * c0 + poly[d, q + 1, b] * c1)
                                    weight[k, b] = _pick(satisfied[j, b], v, w_fail[b])
                            q += 2
                # the leaf's steps along the output columns, each feature's weight times the step
                for e in range(lo, hi):
                    col, step = inc_col[e], inc_val[e]
                    for k in range(n_path):
                        j = path[k]
                        for b in range(nb):
                            acc[col, j, b] += weight[k, b] * step
        for b in range(nb):  # the SHAP curve is the running sum of the steps' contributions
            for j in range(p):
                total = 0.0
                for c in range(n_out):
                    total += acc[c, j, b]
                    out[s0 + b, j, c] = total


@numba.njit(parallel=True, cache=True)
def _leaf_steps(values, shift, ptr, cols, steps):
    # Nonzero steps of each row of values (the first against shift): with cols empty, their number into ptr[i + 1];
    # otherwise (ptr cumulative) the columns and steps, as np.diff(values, axis=1, prepend=shift) and np.nonzero.
    count_only = cols.size == 0
    for i in numba.prange(values.shape[0]):
        prev, e = shift, 0 if count_only else ptr[i]
        for c in range(values.shape[1]):
            step = values[i, c] - prev
            prev = values[i, c]
            if step != 0.0:
                if not count_only:
                    cols[e], steps[e] = c, step
                e += 1
        if count_only:
            ptr[i + 1] = e


@numba.njit(cache=True)
def _leaf_masks(X, leaf_ptr, rec_feature, rec_lo, rec_hi, rec_nan_ok, out):
    for s in range(X.shape[0]):
        for leaf in range(leaf_ptr.shape[0] - 1):
            mask = np.int64(0)
            for j in range(leaf_ptr[leaf + 1] - leaf_ptr[leaf]):
                r = leaf_ptr[leaf] + j
                if _satisfies(X[s, rec_feature[r]], rec_lo[r], rec_hi[r], rec_nan_ok[r]):
                    mask |= np.int64(1) << j
            out[leaf, s] = mask


def _walk(X, s, roots, left, right, feature, threshold, nan_left, node_leaf, out):
    for t in range(roots.shape[0]):
        node = roots[t]
        while left[node] >= 0:
            x = X[s, feature[node]]
            go_left = nan_left[node] if np.isnan(x) else x <= threshold[node]
            node = left[node] if go_left else right[node]
        out[s, t] = node_leaf[node]


_walk_jit = numba.njit(cache=True)(_walk)


@numba.njit(parallel=True, cache=True)
def _apply(X, roots, left, right, feature, threshold, nan_left, node_leaf, out):
    for s in numba.prange(X.shape[0]):
        _walk_jit(X, s, roots, left, right, feature, threshold, nan_left, node_leaf, out)


@numba.njit(cache=True)
def _apply_serial(X, roots, left, right, feature, threshold, nan_left, node_leaf, out):
    # a few rows: starting the parallel thread pool costs more than the walk itself
    for s in range(X.shape[0]):
        _walk_jit(X, s, roots, left, right, feature, threshold, nan_left, node_leaf, out)


@dataclass(frozen=True)
class _FlatForest:
    """Trees of a survival forest flattened into arrays (global node and leaf numbering)."""

    roots: np.ndarray  # (n_trees,) global node id of each root
    left: np.ndarray  # (n_nodes,) global id, -1 for leaves
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray  # float64, compared with float32-cast inputs as scikit-learn does
    nan_left: np.ndarray  # bool, missing values go left
    cover: np.ndarray  # weighted (bootstrap) sample count per node
    node_leaf: np.ndarray  # (n_nodes,) leaf id or -1
    leaf_tree: np.ndarray  # (n_leaves,) tree index
    leaf_node: np.ndarray  # (n_leaves,) node id within its tree
    leaf_prob: np.ndarray  # cover(leaf) / cover(root): weight of the leaf in the path-dependent base value
    leaf_ptr: np.ndarray  # (n_leaves + 1,) records of leaf l are leaf_ptr[l]:leaf_ptr[l + 1]
    rec_feature: np.ndarray
    rec_lo: np.ndarray
    rec_hi: np.ndarray
    rec_nan_ok: np.ndarray
    rec_zero: np.ndarray
    rec_leaf: np.ndarray
    rec_col: np.ndarray  # column of the record in the weight matrix (columns sorted by feature)
    col_rec: np.ndarray  # inverse permutation of rec_col
    feature_ptr: np.ndarray  # (p + 1,) weight columns of feature f are feature_ptr[f]:feature_ptr[f + 1]
    max_path_features: int
    node_order: np.ndarray  # (n_nodes,) Gauss-Legendre points the path-dependent kernel uses at each node


@numba.njit(cache=True)
def _leaf_records(roots, left, right, feature, threshold, nan_left, cover, n_features, leaf_ptr, fill, out):
    # Depth-first (left first) walk of every tree carrying, per feature on the path, the interval (lo, hi], whether
    # a missing value follows the path and the product of cover ratios. Without ``fill`` it writes each leaf's number
    # of distinct path features to leaf_ptr[leaf + 1]; with ``fill`` (leaf_ptr then cumulative) it writes the leaves
    # and their records, in order of first appearance on the path, into the arrays of ``out``.
    node_leaf, leaf_tree, leaf_node, leaf_prob, rec_feature, rec_lo, rec_hi, rec_nan_ok, rec_zero, rec_leaf = out
    lo = np.full(n_features, -np.inf)
    hi = np.full(n_features, np.inf)
    nan_ok = np.ones(n_features, dtype=np.bool_)
    zero = np.ones(n_features)
    on_path = np.zeros(n_features, dtype=np.bool_)
    path = np.empty(n_features, dtype=np.int64)
    size = left.size + 2
    stack_node = np.empty(size, dtype=np.int64)
    stack_depth = np.empty(size, dtype=np.int64)
    stack_parent = np.empty(size, dtype=np.int64)
    undo_feature = np.empty(size, dtype=np.int64)
    undo_lo = np.empty(size)
    undo_hi = np.empty(size)
    undo_nan = np.empty(size, dtype=np.bool_)
    undo_zero = np.empty(size)
    undo_new = np.empty(size, dtype=np.bool_)
    n_path = 0
    depth = 0
    leaf = 0
    for t in range(roots.shape[0]):
        root = roots[t]
        top = 1
        stack_node[0], stack_depth[0], stack_parent[0] = root, 0, -1
        while top > 0:
            top -= 1
            node, d, parent = stack_node[top], stack_depth[top], stack_parent[top]
            while depth >= d and depth > 0:  # leave the subtree of the previous branch
                j = undo_feature[depth]
                lo[j], hi[j], nan_ok[j], zero[j] = undo_lo[depth], undo_hi[depth], undo_nan[depth], undo_zero[depth]
                if undo_new[depth]:
                    on_path[j] = False
                    n_path -= 1
                depth -= 1
            if parent >= 0:
                j = feature[parent]
                is_left = left[parent] == node
                undo_feature[d], undo_lo[d], undo_hi[d] = j, lo[j], hi[j]
                undo_nan[d], undo_zero[d], undo_new[d] = nan_ok[j], zero[j], not on_path[j]
                if is_left:
                    hi[j] = min(hi[j], threshold[parent])
                else:
                    lo[j] = max(lo[j], threshold[parent])
                nan_ok[j] = nan_ok[j] and nan_left[parent] == is_left
                zero[j] *= cover[node] / cover[parent]
                if not on_path[j]:
                    on_path[j] = True
                    path[n_path] = j
                    n_path += 1
                depth = d
            if left[node] >= 0:
                stack_node[top], stack_depth[top], stack_parent[top] = right[node], d + 1, node
                stack_node[top + 1], stack_depth[top + 1], stack_parent[top + 1] = left[node], d + 1, node
                top += 2
                continue
            if fill:
                node_leaf[node] = leaf
                leaf_tree[leaf] = t
                leaf_node[leaf] = node - root
                leaf_prob[leaf] = cover[node] / cover[root]
                start = leaf_ptr[leaf]
                for k in range(n_path):
                    j = path[k]
                    r = start + k
                    rec_feature[r], rec_lo[r], rec_hi[r] = j, lo[j], hi[j]
                    rec_nan_ok[r], rec_zero[r], rec_leaf[r] = nan_ok[j], zero[j], leaf
            else:
                leaf_ptr[leaf + 1] = n_path
            leaf += 1


@numba.njit(cache=True)
def _node_path_features(roots, left, right, feature, n_features):
    # number of distinct features on the path from the root to each node (0 at the roots)
    count = np.zeros(left.size, dtype=np.int64)
    seen = np.zeros(n_features, dtype=np.int64)  # how many ancestors of the current node split on the feature
    stack = np.empty(2 * left.size + 2, dtype=np.int64)  # node, then -1 - node once its subtree is done
    for t in range(roots.shape[0]):
        top = 1
        stack[0] = roots[t]
        while top > 0:
            top -= 1
            node = stack[top]
            if node < 0:
                seen[feature[-1 - node]] -= 1
                continue
            if left[node] < 0:
                continue
            j = feature[node]
            child_count = count[node] + (1 if seen[j] == 0 else 0)
            count[left[node]] = count[right[node]] = child_count
            seen[j] += 1
            stack[top] = -1 - node
            stack[top + 1] = right[node]
            stack[top + 2] = left[node]
            top += 3
    return count


@numba.njit(cache=True)
def _node_orders(roots, left, right, node_leaf, leaf_ptr, path_features):
    # Gauss-Legendre points of each node's rule. A leaf with m distinct path features needs at least
    # ceil(m / 2) points, so a node needs at least the largest such number below it (rmin). More points than that
    # stay exact, and the kernel then keeps the parent's product instead of recomputing it from the path's
    # factors ((n_path + 1) r multiply-adds per patient), at the price of r per node and (m + 1) r per leaf below
    # (r rounded up to even: the leaf weights are summed over 4 points per pass, the last pass 2). Per tree, a
    # dynamic programme over (node, rule) picks the rules of least total cost: sub[node, r] is the cost below a
    # node whose rule is r.
    n = left.size
    rmin = np.ones(n, dtype=np.int64)
    for node in range(n - 1, -1, -1):  # children have larger ids than their parent
        if left[node] < 0:
            leaf = node_leaf[node]
            rmin[node] = max(1, (leaf_ptr[leaf + 1] - leaf_ptr[leaf] + 1) // 2)
        else:
            rmin[node] = max(rmin[left[node]], rmin[right[node]])
    order = np.ones(n, dtype=np.int64)
    inf = np.inf
    for t in range(roots.shape[0]):
        start = roots[t]
        stop = roots[t + 1] if t + 1 < roots.shape[0] else n
        r_top = rmin[start]
        sub = np.full((stop - start, r_top + 1), inf)
        for node in range(stop - 1, start - 1, -1):
            i = node - start
            for r in range(rmin[node], r_top + 1):
                if left[node] < 0:
                    sub[i, r] = (path_features[node] + 1) * ((r + 1) // 2 * 2)
                    continue
                total = 0.0
                for child in (left[node], right[node]):
                    c = child - start
                    best = r + sub[c, r]  # keep the parent's rule: one factor per point
                    for r2 in range(rmin[child], r):  # or recompute the product on fewer points
                        best = min(best, (path_features[child] + 1) * r2 + sub[c, r2])
                    total += best
                sub[i, r] = total
        best_r = r_top
        for r in range(rmin[start], r_top + 1):
            if sub[0, r] < sub[0, best_r]:
                best_r = r
        order[start] = best_r
        for node in range(start, stop):  # parents before children
            if left[node] < 0:
                continue
            r = order[node]
            for child in (left[node], right[node]):
                c = child - start
                best, best_r = r + sub[c, r], r
                for r2 in range(rmin[child], r):
                    cost = (path_features[child] + 1) * r2 + sub[c, r2]
                    if cost < best:
                        best, best_r = cost, r2
                order[child] = best_r
    return order


def _gauss_legendre_rules(max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the 1..max_points-point Gauss-Legendre rules on [0, 1], row q - 1 holding the q-point
    rule (zero-padded); the q-point rule integrates polynomials of degree < 2q exactly."""
    nodes, weights = np.zeros((max_points, max_points)), np.zeros((max_points, max_points))
    for q in range(1, max_points + 1):
        t, w = np.polynomial.legendre.leggauss(q)
        nodes[q - 1, :q], weights[q - 1, :q] = (t + 1.0) / 2.0, w / 2.0
    return nodes, weights


def _flatten_forest(trees: Sequence[Any], n_features: int) -> _FlatForest:
    roots, lefts, rights, features, thresholds, nan_lefts, covers = ([] for _ in range(7))
    offset = 0
    for tree in trees:
        tree_ = tree.tree_
        left = tree_.children_left.astype(np.int64)
        right = tree_.children_right.astype(np.int64)
        internal = np.flatnonzero(left >= 0)
        if np.any(left[internal] <= internal) or np.any(right[internal] <= internal):
            raise ValueError("tree nodes are not numbered parent-before-children; cannot explain this forest")
        roots.append(offset)
        lefts.append(np.where(left >= 0, left + offset, -1))
        rights.append(np.where(right >= 0, right + offset, -1))
        features.append(np.where(left >= 0, tree_.feature.astype(np.int64), 0))
        thresholds.append(tree_.threshold.astype(np.float64))
        nan_lefts.append(np.asarray(getattr(tree_, "missing_go_to_left", np.zeros(tree_.node_count)), dtype=bool))
        covers.append(tree_.weighted_n_node_samples.astype(np.float64))
        offset += tree_.node_count
    roots_arr = np.asarray(roots, dtype=np.int64)
    left, right, feature = np.concatenate(lefts), np.concatenate(rights), np.concatenate(features)
    threshold, nan_left, cover = np.concatenate(thresholds), np.concatenate(nan_lefts), np.concatenate(covers)
    n_leaves = int(np.count_nonzero(left < 0))
    walk = (roots_arr, left, right, feature, threshold, nan_left, cover, n_features)
    leaf_ptr = np.zeros(n_leaves + 1, dtype=np.int64)
    empty_int, empty_float, empty_bool = np.empty(0, np.int64), np.empty(0), np.empty(0, np.bool_)
    counts_only = (empty_int, empty_int, empty_int, empty_float, empty_int, empty_float, empty_float, empty_bool,
                   empty_float, empty_int)  # fmt: skip
    _leaf_records(*walk, leaf_ptr, False, counts_only)
    max_m = int(leaf_ptr.max(initial=0))
    if max_m > _MAX_PATH_FEATURES:
        raise ValueError(
            f"A tree path splits on {max_m} distinct features; at most {_MAX_PATH_FEATURES} are supported. "
            "Limit max_depth of the forest."
        )
    np.cumsum(leaf_ptr, out=leaf_ptr)
    n_records = int(leaf_ptr[-1])
    node_leaf = np.full(left.size, -1, dtype=np.int64)
    leaves = (np.empty(n_leaves, np.int64), np.empty(n_leaves, np.int64), np.empty(n_leaves))
    records = (np.empty(n_records, np.int64), np.empty(n_records), np.empty(n_records), np.empty(n_records, np.bool_),
               np.empty(n_records), np.empty(n_records, np.int64))  # fmt: skip
    _leaf_records(*walk, leaf_ptr, True, (node_leaf, *leaves, *records))
    rec_feature = records[0]
    path_features = _node_path_features(roots_arr, left, right, feature, n_features)
    order = np.argsort(rec_feature, kind="stable")
    rec_col = np.empty_like(order)
    rec_col[order] = np.arange(order.size)
    return _FlatForest(
        roots=roots_arr,
        left=left,
        right=right,
        feature=feature,
        threshold=threshold,
        nan_left=nan_left,
        cover=cover,
        node_leaf=node_leaf,
        leaf_tree=leaves[0],
        leaf_node=leaves[1],
        leaf_prob=leaves[2],
        leaf_ptr=leaf_ptr,
        rec_feature=rec_feature,
        rec_lo=records[1],
        rec_hi=records[2],
        rec_nan_ok=records[3],
        rec_zero=records[4],
        rec_leaf=records[5],
        rec_col=rec_col,
        col_rec=order,
        feature_ptr=np.searchsorted(rec_feature[order], np.arange(n_features + 1)),
        max_path_features=max_m,
        node_order=_node_orders(roots_arr, left, right, node_leaf, leaf_ptr, path_features),
    )
