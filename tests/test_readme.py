"""The README's Python example runs as written and writes nothing into the directory it is run from."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_example() -> str:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## Python\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert match is not None, "README has no Python example under '## Python'"
    return match.group(1)


@pytest.mark.slow
def test_readme_python_example_runs_and_leaves_the_working_directory_untouched(tmp_path):
    workdir, scratch = tmp_path / "cwd", tmp_path / "tmp"
    workdir.mkdir()
    scratch.mkdir()
    env = os.environ | {"PYTHONPATH": str(ROOT), "TMPDIR": str(scratch), "MPLBACKEND": "Agg"}
    example = python_example()
    assert "simulate_cohort(n=420, seed=7)" in example
    # The example as written, on a smaller cohort to keep the test short.
    code = example.replace("simulate_cohort(n=420,", "simulate_cohort(n=150,")
    code += "\nassert len(table) == 3 and shipped is not None\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(workdir.iterdir()) == []
    assert [path.name for path in scratch.iterdir() if path.name.startswith("carrisk-")]
