"""Explanation speed: refresh ``explain.json`` by running ``benchmarks/bench_explain.py`` in a fresh process.

bench_explain.py (exact TreeSHAP of carrisk's ``ForestExplainer`` vs ``shap.KernelExplainer`` and ``survshap``)
is maintained separately; this part only runs it (``--quick`` in quick mode) and records how the run went in
``explain_run.json``, so that a failure is reported instead of leaving an old ``explain.json`` unexplained.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import _common

SCRIPT = Path(__file__).parent / "bench_explain.py"
TIMEOUT_SECONDS = 3600


def run(settings: _common.Settings, out_dir: Path = _common.RESULTS_DIR) -> dict[str, Any]:
    """Run bench_explain.py and write ``explain_run.json`` (bench_explain.py writes ``explain.json``)."""
    command = [sys.executable, str(SCRIPT), "--output", str(out_dir / "explain.json")]
    if settings.mode == "quick":
        command.append("--quick")
    result = _common.header("explain", settings, {})
    result["command"] = " ".join(["python", *command[1:]])
    _common.log(f"explain: {result['command']}")
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
        result["returncode"] = done.returncode
        result["error"] = None if done.returncode == 0 else done.stderr.strip()[-2000:]
    except subprocess.TimeoutExpired:
        result["returncode"] = None
        result["error"] = f"bench_explain.py did not finish within {TIMEOUT_SECONDS} s"
    result["seconds"] = time.perf_counter() - start
    _common.write_json(out_dir / "explain_run.json", result)
    return result
