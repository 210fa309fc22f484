"""The bounded load test of ``carrisk serve`` (benchmarks/serve_load.py, quick mode) as a pass/fail check.

Only what must hold on any machine is asserted: every request answered (zero errors) and flat server memory.
Latency and throughput are measured and reported by ``python -m benchmarks.serve_load``, never asserted here.
"""

from __future__ import annotations

import pytest

from benchmarks import serve_load


@pytest.mark.slow
def test_quick_load_test_has_no_errors_and_flat_memory(tmp_path):
    result = serve_load.run(quick=True, workers=(1,), out=tmp_path / "serve_load.json")
    (run,) = result["runs"]
    assert [p["requests_sent"] for p in run["phases"]] == [p["requests_planned"] for p in run["phases"]]
    for phase in run["phases"]:
        assert phase["errors"] == 0, phase["error_kinds"]
        assert phase["rss_mb_growth_second_half"] < 50.0
    assert (tmp_path / "serve_load.json").exists()
