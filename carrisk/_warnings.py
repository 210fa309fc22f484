"""Warnings as the command line shows them: carrisk's own, one line each on stderr; library noise left out.

The command line installs :func:`one_line_warnings` around a command. joblib's worker processes (cross-validation
folds) print their warnings themselves, past that hook, so the command line also sets
:data:`WORKER_ENV` for them and ``import carrisk`` in a worker installs the same rules (:func:`install_in_worker`).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings
from collections.abc import Iterator
from typing import Any

#: Set (to "1", or "debug") by the command line for the processes it starts: carrisk's warnings in one line there too.
WORKER_ENV = "CARRISK_ONE_LINE_WARNINGS"

#: Warnings meant for developers (of carrisk or of a library it uses), never for the user of the command line.
_DEVELOPER_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ImportWarning, ResourceWarning)

#: lifelines' advice inside the message of a failed fit, meant for its own users ("Are you using formula's?").
_LIFELINES_ADVICE = re.compile(r"\. This may harm convergence\..*?fails\.", re.DOTALL)


def _line(message: Warning | str, category: type[Warning]) -> str:
    text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
    kind = "" if category is UserWarning else f"{category.__name__}: "
    return f"carrisk: warning: {kind}{text}\n"


def say_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    """Write one warning as ``carrisk: warning: ...`` (its first line) on stderr."""
    sys.stderr.write(_line(message, category))
    sys.stderr.flush()


def _say_in_worker(message: Warning | str, category: type[Warning]) -> None:
    """:func:`say_warning` as one ``write`` to file descriptor 2, which the workers and the parent share: a line
    of under 4 KiB written at once is never interleaved with another process's."""
    os.write(2, _line(message, category).encode("utf-8", "replace"))


def _warning_module() -> str:
    """The module whose code raised the warning being shown (the caller of ``warnings.warn``, whatever its
    ``stacklevel`` said), or ``""``."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") in ("warnings", __name__):
        frame = frame.f_back  # type: ignore[assignment]
    return str(frame.f_globals.get("__name__", "")) if frame is not None else ""


def _is_third_party(module: str) -> bool:
    """Whether ``module`` belongs to the standard library or an installed package other than carrisk."""
    import sysconfig

    if module.split(".")[0] == "carrisk":
        return False
    path = getattr(sys.modules.get(module), "__file__", None)
    if not path:
        return module.split(".")[0] in sys.stdlib_module_names
    roots = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    return any(os.path.realpath(path).startswith(os.path.realpath(root) + os.sep) for root in roots)


def user_warning(message: Warning | str, category: type[Warning], module: str) -> str | None:
    """What the user is told of a warning, or None: carrisk's own warnings (and a script's) are shown; library
    noise (deprecations, matplotlib's fonts, numpy's floating-point chatter) is not, except a convergence failure."""
    text = " ".join(str(message).split()) or category.__name__
    if issubclass(category, _DEVELOPER_WARNINGS):
        return None
    if issubclass(category, RuntimeWarning) and " encountered in " in text:
        return None  # numpy: 'divide by zero encountered in log' and the like; the results say what it means
    if category.__name__ == "ConvergenceWarning":
        library = category.__module__.split(".")[0]
        return f"a model fit did not fully converge ({library}); its estimates may be unstable"
    if _is_third_party(module):
        return None
    return _LIFELINES_ADVICE.sub(".", str(message))


def _shower(debug: bool, say: Any = say_warning) -> Any:
    """A ``warnings.showwarning`` that applies :func:`user_warning` and says each message once."""
    seen: set[str] = set()

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        module = _warning_module()
        text = f"{message} [{category.__name__} from {module}]" if debug else user_warning(message, category, module)
        key = f"{category.__name__}:{text}"
        if text is not None and key not in seen:
            seen.add(key)
            say(text, UserWarning if debug else category)

    return show


@contextlib.contextmanager
def one_line_warnings(debug: bool = False) -> Iterator[None]:
    """Every warning of carrisk's raised while a command runs reaches the user once, as one line on stderr.

    Third-party noise is left out (:func:`user_warning`); with ``debug`` every warning is shown, with its category
    and the module that raised it. Processes started meanwhile (joblib's workers) inherit :data:`WORKER_ENV` and
    apply the same rules when they import carrisk.
    """
    saved = os.environ.get(WORKER_ENV)
    os.environ[WORKER_ENV] = "debug" if debug else "1"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = _shower(debug)
            yield
    finally:
        if saved is None:
            os.environ.pop(WORKER_ENV, None)
        else:
            os.environ[WORKER_ENV] = saved


def install_in_worker() -> None:
    """In a process started by the command line (:data:`WORKER_ENV` set): show warnings by the same rules.

    Each worker says a message once; several workers may each say it.
    """
    mode = os.environ.get(WORKER_ENV)
    if mode and not getattr(warnings.showwarning, "_carrisk", False):
        warnings.simplefilter("default")
        show = _shower(mode == "debug", _say_in_worker)
        show._carrisk = True
        warnings.showwarning = show
