"""`python -m benchmarks --only PART`: every part is a module of benchmarks/ with a `run(settings, out)`."""

import ast
import importlib.util

from benchmarks import _common
from benchmarks.__main__ import PART_MODULES


def test_every_benchmark_part_names_a_module_with_a_run_function():
    assert set(PART_MODULES) == set(_common.PARTS)
    for module in PART_MODULES.values():
        spec = importlib.util.find_spec(f"benchmarks.{module}")
        assert spec is not None and spec.origin is not None, module
        with open(spec.origin) as source:
            functions = {node.name for node in ast.parse(source.read()).body if isinstance(node, ast.FunctionDef)}
        assert "run" in functions, module
