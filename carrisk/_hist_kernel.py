"""numba kernel of carrisk's histogram survival forest: one single-cause log-rank tree per call, GIL released.

:func:`bootstrap_counts` draws a tree's bootstrap sample and :func:`grow_tree` grows the tree depth first and stores
its leaves sparsely; the caller (:mod:`carrisk.hist_forest`) runs them for many trees in a thread pool. Everything a
tree draws comes from its own seed (splitmix64 streams), so a forest is the same whatever the number of threads.

Inputs, prepared once per forest:

- ``Xb``: features binned to at most 256 levels, one row per feature (``Xb[f]`` is the column of feature ``f``), so
  the rows of a node are gathered from a contiguous byte column;
- ``t_split``: each row's last coarse split-time bin at which it is at risk (-1: it leaves before the first grid
  time and is never at risk), ``t_full`` the same on the full leaf grid, ``event`` 0/1.

Cost per node (``m`` distinct in-bag rows, ``T`` coarse time bins, ``lo..hi`` the range of occupied bins of the
feature): for each feature tried,

- ``m < hist_min_rows`` (4,096 in :class:`carrisk.hist_forest.HistForest`): a counting sort of the node's rows by
  bin (two passes over the rows, two over ``lo..hi``), then one sweep over the sorted rows adding each row's weight
  to the left child's exits at its coarse time and to its events (O(1) per row, no branch on the event), evaluating
  the statistic only where the bin changes and both children keep ``min_samples_leaf`` (O(T) each);
- larger nodes: one pass building a (bin, coarse time) histogram of exits and a per-bin event count, then a sweep
  over the occupied bins ``lo..hi`` (O(T) each), the same boundaries and statistic.

So a node costs O(mtry (m + (hi - lo) + boundaries x T)): nothing per empty (bin, time) cell, and nothing is
allocated per node (the scratch arrays are sized once per tree). The node's partition is stable and reads the
chosen feature's bins saved during the search, so rows stay in increasing order within every node. Histogram
subtraction (a child's histogram = the parent's minus the sibling's) is not used: each node draws its own features,
so the parent rarely holds a histogram of the child's features, and the counting sort already costs what the node
holds. Measured on 1,000,000 rows x 20 features (one tree, ~1 CPU second): the histogram path costs about 60 % of
the counting sort per row at the root and the same from a few thousand rows down; a cheaper statistic (vectorised,
at-risk counts kept directly) and an insertion sort for nodes under 64 rows changed the tree's time by less than the
run-to-run noise (+-15 %), and so did a node-local copy of every feature column (sequential instead of gathered
reads, at the price of moving all columns at every partition), so the kernel keeps the simple forms.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
#: A split is valid only if its log-rank variance exceeds this (as in comprisk).
MIN_VARIANCE = 1e-12


@njit(cache=True, nogil=True)
def _next_u64(state: np.ndarray) -> np.uint64:
    """splitmix64 (Steele, Lea and Flood 2014): the state advances by a constant, the output is a bijective mix."""
    z = state[0] + _GOLDEN
    state[0] = z
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True)
def _below(state: np.ndarray, n: int) -> int:
    """Uniform integer in [0, n) for n < 2**32 (Lemire's multiply-shift on the high 32 bits; bias < n / 2**32)."""
    return int(((_next_u64(state) >> _S32) * np.uint64(n)) >> _S32)


@njit(cache=True, nogil=True)
def bootstrap_counts(n: int, n_draws: int, seed: np.uint64) -> np.ndarray:
    """How often each of ``n`` rows is drawn in ``n_draws`` draws with replacement (the tree's first draws)."""
    state = np.empty(1, dtype=np.uint64)
    state[0] = seed
    counts = np.zeros(n, dtype=np.int64)
    for _ in range(n_draws):
        counts[_below(state, n)] += 1
    return counts


@njit(cache=True, nogil=True)
def _sort_small(values: np.ndarray, n: int) -> None:
    """Insertion sort of ``values[:n]`` in place (n is small: a leaf's distinct times)."""
    for i in range(1, n):
        v = values[i]
        j = i - 1
        while j >= 0 and values[j] > v:
            values[j + 1] = values[j]
            j -= 1
        values[j + 1] = v


@njit(cache=True, nogil=True)
def _log_rank(exits_left: np.ndarray, events_left: float, a: np.ndarray, c: np.ndarray, at_risk: np.ndarray) -> float:
    """Log-rank statistic of a split from the left child's exits (slot ``t + 1``: coarse time ``t``; slot 0: never at
    risk) and its total events; 0 when the variance is ~0 (no valid split)."""
    u = events_left
    v = 0.0
    y_left = 0.0
    for t in range(a.shape[0] - 1, -1, -1):
        y_left += exits_left[t + 1]
        u -= a[t] * y_left
        v += c[t] * y_left * (at_risk[t] - y_left)
    return u * u / v if v > MIN_VARIANCE else 0.0


@njit(cache=True, nogil=True)
def _node_split(
    Xb: np.ndarray,
    seg_row: np.ndarray,
    seg_rec: np.ndarray,
    start: int,
    end: int,
    features: np.ndarray,
    n_features_wanted: int,
    state: np.ndarray,
    min_leaf: int,
    count_weights: bool,
    size_total: int,
    a: np.ndarray,
    c: np.ndarray,
    at_risk: np.ndarray,
    # scratch
    row_bin: np.ndarray,
    best_row_bin: np.ndarray,
    sorted_rec: np.ndarray,
    sorted_bin: np.ndarray,
    bin_size: np.ndarray,
    bin_exits: np.ndarray,
    bin_events: np.ndarray,
    exits_left: np.ndarray,
    hist_min_rows: int,
) -> tuple[int, int, float]:
    """Best log-rank split of the node ``seg_row[start:end]``: returns (feature, bin, statistic), feature -1 if none.

    Features are visited in the order of a Fisher-Yates shuffle of ``features`` (each draw taken from ``state`` when
    the feature is visited) until ``n_features_wanted`` features that are not constant in the node have been
    searched (scikit-learn's rule: constant features do not count against ``max_features``); ties keep the first
    split found. A row goes left when its bin is <= the split bin. ``seg_rec`` packs each row's bootstrap weight,
    event and exit slot as ``weight << 9 | event << 8 | slot`` (slot ``t + 1``: at risk up to coarse time ``t``;
    slot 0: never at risk), so the sweeps read one integer per row.

    The statistic at a boundary, with ``Y_t``/``d_t`` the node's weighted at-risk and event counts at coarse time
    ``t`` and ``YL_t``/``dL_t`` the left child's: ``U = sum_t (dL_t - d_t YL_t / Y_t)``, ``V = sum_t d_t YL_t
    (Y_t - YL_t) (Y_t - d_t) / (Y_t^2 (Y_t - 1))`` over ``Y_t >= 2``, statistic ``U^2 / V`` if ``V > 1e-12``.
    ``a_t = d_t / Y_t`` and ``c_t = d_t (Y_t - d_t) / (Y_t^2 (Y_t - 1))`` are precomputed per node, so a boundary
    costs 4 multiply-adds per coarse time and ``U = sum_t dL_t - sum_t a_t YL_t``; the terms with ``Y_t = 1``
    that comprisk skips are exactly 0 (the one row at risk is on one side, with its event).
    """
    n_time = a.shape[0]
    m = end - start
    p = features.shape[0]
    best_feature = -1
    best_bin = 0
    best_stat = 0.0
    searched = 0
    k = 0
    while k < p and searched < n_features_wanted:
        j = k + _below(state, p - k)
        f = features[j]
        features[j] = features[k]
        features[k] = f
        k += 1
        column = Xb[f]
        improved = False
        if m >= hist_min_rows:
            # large node: (bin, coarse time) histogram of the node's rows, then one sweep over the occupied range
            lo = 255
            hi = 0
            for i in range(m):
                b = column[seg_row[start + i]]
                row_bin[i] = b
                rec = seg_rec[start + i]
                w = rec >> 9
                bin_size[b] += w if count_weights else 1
                bin_exits[b, rec & 255] += w
                bin_events[b] += w * ((rec >> 8) & 1)
                lo = min(lo, b)
                hi = max(hi, b)
            if lo < hi:
                searched += 1
                for t in range(n_time + 1):
                    exits_left[t] = 0.0
                n_left = 0
                events_left = 0.0
                for b in range(lo, hi):  # boundary after an occupied bin below the highest one
                    if bin_size[b] == 0:
                        continue
                    for t in range(n_time + 1):
                        exits_left[t] += bin_exits[b, t]
                    events_left += bin_events[b]
                    n_left += bin_size[b]
                    if n_left < min_leaf:
                        continue
                    if size_total - n_left < min_leaf:
                        break
                    stat = _log_rank(exits_left, events_left, a, c, at_risk)
                    if stat > best_stat:
                        best_stat = stat
                        best_bin = b
                        best_feature = f
                        improved = True
            for b in range(lo, hi + 1):
                bin_size[b] = 0
                bin_events[b] = 0
                for t in range(n_time + 1):
                    bin_exits[b, t] = 0
            if improved:  # keep the best feature's bins for the partition (read in order, not gathered again)
                best_row_bin[:m] = row_bin[:m]
            continue
        # small node: counting sort of its rows by bin, then one sweep over the sorted rows
        lo = 255
        hi = 0
        for i in range(m):
            b = column[seg_row[start + i]]
            row_bin[i] = b
            bin_size[b] += 1
            lo = min(lo, b)
            hi = max(hi, b)
        if lo == hi:  # constant in the node: does not count
            bin_size[lo] = 0
            continue
        searched += 1
        pos = 0
        for b in range(lo, hi + 1):
            count = bin_size[b]
            bin_size[b] = pos
            pos += count
        for i in range(m):
            b = row_bin[i]
            slot = bin_size[b]
            bin_size[b] = slot + 1
            sorted_rec[slot] = seg_rec[start + i]
            sorted_bin[slot] = b
        for b in range(lo, hi + 1):
            bin_size[b] = 0
        for t in range(n_time + 1):
            exits_left[t] = 0.0
        n_left = 0
        events_left = 0.0
        for i in range(m - 1):
            rec = sorted_rec[i]
            w = rec >> 9
            exits_left[rec & 255] += w
            events_left += w * ((rec >> 8) & 1)
            n_left += w if count_weights else 1
            if sorted_bin[i + 1] == sorted_bin[i] or n_left < min_leaf:
                continue
            if size_total - n_left < min_leaf:
                break
            stat = _log_rank(exits_left, events_left, a, c, at_risk)
            if stat > best_stat:
                best_stat = stat
                best_bin = sorted_bin[i]
                best_feature = f
                improved = True
        if improved:
            best_row_bin[:m] = row_bin[:m]
    return best_feature, best_bin, best_stat


@njit(cache=True, nogil=True)
def grow_tree(
    Xb: np.ndarray,
    t_split: np.ndarray,
    t_full: np.ndarray,
    event: np.ndarray,
    counts: np.ndarray,
    n_split_times: int,
    n_grid: int,
    max_features: int,
    min_samples_leaf: int,
    min_samples_split: int,
    max_depth: int,
    count_weights: bool,
    seed: np.uint64,
    hist_min_rows: int = 4096,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
           np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Grow one tree on the rows with ``counts > 0`` (bootstrap multiplicities as weights).

    Parameters
    ----------
    Xb : uint8 (p, n)
    t_split, t_full : int (n,)
        Last coarse split-time bin / full grid index at which each row is at risk (-1: never).
    event : uint8 (n,)
    counts : int64 (n,)
        Bootstrap count of each row (0 = out of bag).
    max_features, min_samples_leaf, min_samples_split, max_depth
        scikit-learn's meanings (``max_depth`` -1: unlimited); leaf and split sizes count distinct in-bag rows,
        or bootstrap-weighted rows with ``count_weights`` (comprisk's rule).
    seed : uint64
        The tree's random stream (feature draws); the bootstrap is drawn by the caller from the same seed.

    Returns
    -------
    children_left, children_right, feature, split_bin, cover, leaf_of_node : per node (children > parent)
        ``cover`` = the node's bootstrap-weighted row count; ``leaf_of_node`` = leaf index or -1.
    leaf_ptr : int64 (n_leaves + 1,)
        Leaf ``l``'s cells are ``leaf_ptr[l]:leaf_ptr[l + 1]``.
    cell_time, cell_exits, cell_events : per cell
        The leaf's grid times at which some of its rows leave the risk set (in increasing order), the weighted
        number leaving there (events and censorings) and the weighted events there. A leaf's at-risk count at a
        grid time is the sum of its exits at that time and later.
    split_stat : float64 per node
        The log-rank statistic of the chosen split (0 at leaves).
    """
    n = counts.shape[0]
    p = Xb.shape[0]
    state = np.empty(1, dtype=np.uint64)
    state[0] = seed ^ _MIX2  # feature stream: distinct from the bootstrap stream of the same seed
    # node segments: distinct in-bag rows and their packed record (weight << 9 | event << 8 | coarse time + 1)
    n_rows = 0
    for i in range(n):
        if counts[i] > 0:
            n_rows += 1
    seg_row = np.empty(n_rows, dtype=np.int64)
    seg_rec = np.empty(n_rows, dtype=np.int64)
    j = 0
    total_weight = 0
    for i in range(n):
        if counts[i] > 0:
            seg_row[j] = i
            seg_rec[j] = (counts[i] << 9) | (np.int64(event[i]) << 8) | (t_split[i] + 1)
            total_weight += counts[i]
            j += 1
    # a leaf holds >= min_samples_leaf rows (or weight), so the number of leaves is bounded
    max_leaves = max(1, min(n_rows, (total_weight if count_weights else n_rows) // max(1, min_samples_leaf)))
    max_nodes = 2 * max_leaves - 1
    left = np.full(max_nodes, -1, dtype=np.int64)
    right = np.full(max_nodes, -1, dtype=np.int64)
    feature = np.full(max_nodes, -2, dtype=np.int64)
    split_bin = np.zeros(max_nodes, dtype=np.uint8)
    split_stat = np.zeros(max_nodes, dtype=np.float64)
    cover = np.zeros(max_nodes, dtype=np.float64)
    leaf_of_node = np.full(max_nodes, -1, dtype=np.int64)
    leaf_ptr = np.zeros(max_leaves + 1, dtype=np.int64)
    cell_time = np.empty(n_rows, dtype=np.int64)
    cell_exits = np.empty(n_rows, dtype=np.int64)
    cell_events = np.empty(n_rows, dtype=np.int64)
    # scratch, sized once
    features = np.arange(p)
    row_bin = np.empty(n_rows, dtype=np.uint8)
    best_row_bin = np.empty(n_rows, dtype=np.uint8)
    spill_row = np.empty(n_rows, dtype=np.int64)
    spill_rec = np.empty(n_rows, dtype=np.int64)
    sorted_rec = np.empty(n_rows, dtype=np.int64)
    sorted_bin = np.empty(n_rows, dtype=np.uint8)
    bin_size = np.zeros(256, dtype=np.int64)
    bin_exits = np.zeros((256, n_split_times + 1), dtype=np.int64)  # slot 0: rows never at risk
    bin_events = np.zeros(256, dtype=np.int64)
    exits_left = np.zeros(n_split_times + 1, dtype=np.float64)
    node_exits = np.zeros(n_split_times + 1, dtype=np.float64)
    node_events = np.zeros(n_split_times + 1, dtype=np.float64)
    at_risk = np.zeros(n_split_times, dtype=np.float64)
    a = np.zeros(n_split_times, dtype=np.float64)
    c = np.zeros(n_split_times, dtype=np.float64)
    grid_exits = np.zeros(n_grid, dtype=np.int64)
    grid_events = np.zeros(n_grid, dtype=np.int64)
    touched = np.empty(n_grid, dtype=np.int64)
    stack_parent = np.empty(max_nodes, dtype=np.int64)
    stack_start = np.empty(max_nodes, dtype=np.int64)
    stack_end = np.empty(max_nodes, dtype=np.int64)
    stack_depth = np.empty(max_nodes, dtype=np.int64)

    # depth first, left child first; a node gets its id when it is taken from the stack (preorder, as scikit-learn
    # numbers its nodes), so children have larger ids than their parent and leaves are numbered in node order
    stack_parent[0] = -1
    stack_start[0] = 0
    stack_end[0] = n_rows
    stack_depth[0] = 0
    top = 1
    n_nodes = 0
    n_leaves = 0
    n_cells = 0
    while top > 0:
        top -= 1
        node = n_nodes
        n_nodes += 1
        parent = stack_parent[top]
        if parent >= 0:
            if left[parent] < 0:
                left[parent] = node
            else:
                right[parent] = node
        start = stack_start[top]
        end = stack_end[top]
        depth = stack_depth[top]
        m = end - start
        # node totals on the coarse grid
        for t in range(n_split_times + 1):
            node_exits[t] = 0.0
            node_events[t] = 0.0
        weight = 0
        for i in range(start, end):
            rec = seg_rec[i]
            w = rec >> 9
            weight += w
            t = rec & 255
            node_exits[t] += w
            node_events[t] += w * ((rec >> 8) & 1)
        cover[node] = weight
        size = weight if count_weights else m
        has_events = False
        for t in range(n_split_times + 1):
            if node_events[t] > 0:
                has_events = True
        best_feature = -1
        best_bin = 0
        best_stat = 0.0
        can_split = (
            has_events
            and size >= min_samples_split
            and size >= 2 * min_samples_leaf
            and (max_depth < 0 or depth < max_depth)
            and n_nodes + top + 2 <= max_nodes
        )
        if can_split:
            y = 0.0
            for t in range(n_split_times - 1, -1, -1):
                y += node_exits[t + 1]
                at_risk[t] = y
                d = node_events[t + 1]
                a[t] = d / y if y > 0 else 0.0
                c[t] = d * (y - d) / (y * y * (y - 1.0)) if y >= 2 else 0.0
            best_feature, best_bin, best_stat = _node_split(
                Xb, seg_row, seg_rec, start, end, features, max_features, state, min_samples_leaf,
                count_weights, size, a, c, at_risk, row_bin, best_row_bin, sorted_rec, sorted_bin, bin_size, bin_exits,
                bin_events, exits_left, hist_min_rows,
            )  # fmt: skip
        if best_feature < 0:  # leaf: its rows' exits and events by grid time, in increasing time
            n_touched = 0
            for i in range(start, end):
                t = t_full[seg_row[i]]
                if t < 0:
                    continue
                rec = seg_rec[i]
                w = rec >> 9
                if grid_exits[t] == 0:
                    touched[n_touched] = t
                    n_touched += 1
                grid_exits[t] += w
                if (rec >> 8) & 1:
                    grid_events[t] += w
            if n_touched <= 64:
                _sort_small(touched, n_touched)
            else:
                touched[:n_touched] = np.sort(touched[:n_touched])
            for i in range(n_touched):
                t = touched[i]
                cell_time[n_cells] = t
                cell_exits[n_cells] = grid_exits[t]
                cell_events[n_cells] = grid_events[t]
                grid_exits[t] = 0
                grid_events[t] = 0
                n_cells += 1
            leaf_of_node[node] = n_leaves
            n_leaves += 1
            leaf_ptr[n_leaves] = n_cells
            continue
        # stable partition (bin <= best_bin to the left): rows stay in increasing order within every node, so the
        # gathers of a node's bins walk each column forwards
        n_left = 0
        n_right = 0
        for i in range(m):
            if best_row_bin[i] <= best_bin:
                seg_row[start + n_left] = seg_row[start + i]
                seg_rec[start + n_left] = seg_rec[start + i]
                n_left += 1
            else:
                spill_row[n_right] = seg_row[start + i]
                spill_rec[n_right] = seg_rec[start + i]
                n_right += 1
        lo = start + n_left
        seg_row[lo:end] = spill_row[:n_right]
        seg_rec[lo:end] = spill_rec[:n_right]
        feature[node] = best_feature
        split_bin[node] = best_bin
        split_stat[node] = best_stat
        stack_parent[top] = node  # the right child: popped after the whole left subtree
        stack_start[top] = lo
        stack_end[top] = end
        stack_depth[top] = depth + 1
        top += 1
        stack_parent[top] = node
        stack_start[top] = start
        stack_end[top] = lo
        stack_depth[top] = depth + 1
        top += 1
    return (
        left[:n_nodes].copy(),
        right[:n_nodes].copy(),
        feature[:n_nodes].copy(),
        split_bin[:n_nodes].copy(),
        cover[:n_nodes].copy(),
        leaf_of_node[:n_nodes].copy(),
        leaf_ptr[: n_leaves + 1].copy(),
        cell_time[:n_cells].copy(),
        cell_exits[:n_cells].copy(),
        cell_events[:n_cells].copy(),
        split_stat[:n_nodes].copy(),
    )


@njit(cache=True, nogil=True)
def apply_binned(
    Xb: np.ndarray, rows: np.ndarray, left: np.ndarray, right: np.ndarray, feature: np.ndarray, split_bin: np.ndarray
) -> np.ndarray:
    """Node reached by each of ``rows`` (columns of ``Xb``), going left when the row's bin is <= the split bin."""
    out = np.empty(rows.shape[0], dtype=np.int64)
    for i in range(rows.shape[0]):
        node = 0
        while left[node] >= 0:
            node = left[node] if Xb[feature[node], rows[i]] <= split_bin[node] else right[node]
        out[i] = node
    return out


@njit(cache=True, nogil=True)
def leaf_curves(
    leaf_ptr: np.ndarray,
    cell_time: np.ndarray,
    cell_exits: np.ndarray,
    cell_events: np.ndarray,
    leaves: np.ndarray,
    n_times: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Nelson-Aalen cumulative hazard and Kaplan-Meier survival on the grid of each of ``leaves``: (len, n_times).

    Within a leaf, the at-risk count at a cell's time is the leaf's total exits minus the exits at earlier cells;
    the hazard is the cell's events over it, 0 at grid times without a cell.
    """
    chf = np.zeros((leaves.shape[0], n_times))
    survival = np.ones((leaves.shape[0], n_times))
    for r in range(leaves.shape[0]):
        leaf = leaves[r]
        first = leaf_ptr[leaf]
        last = leaf_ptr[leaf + 1]
        remaining = 0.0
        for k in range(first, last):
            remaining += cell_exits[k]
        h = 0.0
        s = 1.0
        prev = 0
        for k in range(first, last):
            t = cell_time[k]
            for g in range(prev, t):
                chf[r, g] = h
                survival[r, g] = s
            hazard = cell_events[k] / remaining
            h += hazard
            s *= 1.0 - hazard
            remaining -= cell_exits[k]
            prev = t
        for g in range(prev, n_times):
            chf[r, g] = h
            survival[r, g] = s
    return chf, survival
