"""Build hook: copy the shipped model and the record documentation into the package.

The repository keeps one copy of each at the top level (``models/default``, ``docs/records.md``). A wheel must carry
them inside the package, so ``build_py`` copies them to ``carrisk/_shipped/`` in the build tree, where
:mod:`carrisk.shipped` finds them with :mod:`importlib.resources`. An editable install or a source checkout has no
such copy and reads the top-level files instead. Everything else is configured in ``pyproject.toml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: Source (relative to the repository) -> destination (relative to the ``carrisk`` package in the build tree).
SHIPPED = {"models/default": "_shipped/default", "docs/records.md": "_shipped/records.md"}


class BuildWithShippedResources(build_py):
    """``build_py`` that also copies :data:`SHIPPED` into the built package (not in editable mode)."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        for source, destination in SHIPPED.items():
            origin = ROOT / source
            if not origin.exists():
                raise FileNotFoundError(f"{origin} is missing: the wheel must ship it (see setup.py)")
            target = Path(self.build_lib) / "carrisk" / destination
            if origin.is_dir():
                shutil.copytree(origin, target, dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)


setup(cmdclass={"build_py": BuildWithShippedResources})
