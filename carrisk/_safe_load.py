"""Unpickle a joblib payload with an allow-list of the globals it may name (see "Trust model" in carrisk.bundle).

A pickle names the classes to construct and the functions to call as ``module.name`` globals; the unpickler imports
and returns them in ``find_class``. Here ``find_class`` refuses, before importing anything outside the allowed
libraries and before returning anything, every global that is not

- a class whose defining module is in carrisk, scikit-learn, scikit-survival, numpy, scipy or pandas, except their
  modules that read or write files (:data:`DENIED_MODULES`) and ``numpy.memmap``;
- one of :data:`SAFE_TYPES` (builtin containers and numbers, a few standard-library value types);
- ``joblib``'s array placeholder, one of the reconstruction functions in :data:`ALLOWED_FUNCTIONS` (compared by
  identity after resolving, so a name with dots such as ``Class.method`` is refused), or a ``__pyx_unpickle_*``
  function Cython generates in those libraries to rebuild an extension type (the type is checked separately).

Reading uses joblib's own ``NumpyUnpickler`` (a subclass of the pure-Python ``pickle._Unpickler``, so every global
goes through ``find_class``) on joblib's zlib stream, so arrays are read exactly as ``joblib.load`` reads them.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import functools
import importlib
import inspect
import io
import pathlib
import pickle
import uuid
import warnings
from typing import IO, Any

import numpy as np
from joblib.compressor import BinaryZlibFile
from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

#: Libraries whose classes a payload may construct (top-level package names).
ALLOWED_LIBRARIES = ("carrisk", "sklearn", "sksurv", "numpy", "scipy", "pandas")
#: Modules (and their submodules) of those libraries that are refused: file input/output, downloads, test helpers.
DENIED_MODULES = (
    "numpy.lib.npyio",
    "numpy.lib._npyio_impl",
    "numpy.lib.format",
    "numpy.lib._datasource",
    "numpy.ctypeslib",
    "numpy.f2py",
    "numpy.distutils",
    "numpy.testing",
    "pandas.io",
    "pandas._testing",
    "pandas.util._tester",
    "scipy.io",
    "scipy._lib._testutils",
    "sklearn.datasets",
    "sklearn.utils._testing",
)
#: Standard-library value types a payload may construct.
SAFE_TYPES: frozenset[type] = frozenset(
    {
        object,
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        bytearray,
        tuple,
        list,
        dict,
        set,
        frozenset,
        slice,
        range,
        collections.OrderedDict,
        collections.defaultdict,
        collections.deque,
        collections.Counter,
        datetime.date,
        datetime.datetime,
        datetime.time,
        datetime.timedelta,
        datetime.timezone,
        decimal.Decimal,
        fractions.Fraction,
        functools.partial,
        uuid.UUID,
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
        pathlib.PosixPath,
        NumpyArrayWrapper,
    }
)
#: Functions pickles use to rebuild numpy, pandas and plain objects; resolved where they exist in this version.
ALLOWED_FUNCTIONS = (
    ("copyreg", "_reconstructor"),
    ("_codecs", "encode"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas.core.internals.blocks", "new_block"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.indexes.period", "_new_PeriodIndex"),
    ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"),
    ("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle"),
    ("pandas._libs.tslibs.nattype", "__nat_unpickle"),
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
)
#: Modules outside the allowed libraries that SAFE_TYPES and ALLOWED_FUNCTIONS come from.
_STANDARD_MODULES = frozenset(
    {"builtins", "copyreg", "_codecs", "collections", "datetime", "decimal", "fractions", "functools", "uuid"}
    | {"pathlib", "pathlib._local", "joblib.numpy_pickle"}
)
_ZLIB_MAGIC = b"\x78"  # joblib's zlib compression (save_model's compress >= 1)
_PICKLE_MAGIC = b"\x80"  # an uncompressed pickle (compress=0), protocol 2 or later
_READ_BUFFER_BYTES = 1024**2


class DisallowedGlobal(pickle.UnpicklingError):
    """The payload names a global outside the allow-list; ``name`` is its ``module.name``."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@functools.cache
def _allowed_functions() -> tuple[object, ...]:
    """The objects of :data:`ALLOWED_FUNCTIONS` that exist in the installed versions."""
    found = []
    for module_name, name in ALLOWED_FUNCTIONS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy 2 warns on importing numpy.core.*
            try:
                found.append(getattr(importlib.import_module(module_name), name))
            except (ImportError, AttributeError):
                continue
    return tuple(found)


def _module_allowed(module: str) -> bool:
    """Whether a payload may import ``module`` at all (checked before importing it)."""
    if any(module == denied or module.startswith(denied + ".") for denied in DENIED_MODULES):
        return False
    return module in _STANDARD_MODULES or module.partition(".")[0] in ALLOWED_LIBRARIES


def allowed_global(obj: object) -> bool:
    """Whether a resolved global may be returned to the unpickler."""
    if isinstance(obj, type):
        if obj in SAFE_TYPES:
            return True
        module = getattr(obj, "__module__", None) or ""
        return (
            module.partition(".")[0] in ALLOWED_LIBRARIES and _module_allowed(module) and not issubclass(obj, np.memmap)
        )
    if any(obj is function for function in _allowed_functions()):
        return True
    # Cython's generated reconstructor of an extension type; the type it rebuilds is itself checked here.
    module = getattr(obj, "__module__", None) or ""
    return (
        callable(obj)
        and getattr(obj, "__name__", "").startswith("__pyx_unpickle_")
        and module.partition(".")[0] in ALLOWED_LIBRARIES
        and _module_allowed(module)
    )


class _AllowListUnpickler(NumpyUnpickler):
    """joblib's unpickler, refusing globals outside the allow-list."""

    def __init__(self, filename: str, file_handle: IO[bytes]) -> None:
        if "ensure_native_byte_order" in inspect.signature(NumpyUnpickler.__init__).parameters:  # joblib >= 1.5
            super().__init__(filename, file_handle, ensure_native_byte_order=True)
        else:
            super().__init__(filename, file_handle)

    def find_class(self, module: str, name: str) -> Any:
        if not _module_allowed(module):
            raise DisallowedGlobal(f"{module}.{name}")
        obj = super().find_class(module, name)
        if not allowed_global(obj):
            raise DisallowedGlobal(f"{module}.{name}")
        return obj


def restricted_load(handle: IO[bytes], filename: str) -> object:
    """Unpickle a payload written by ``joblib.dump`` (zlib-compressed or not) with the allow-list.

    Raises
    ------
    DisallowedGlobal
        If the payload names a global outside the allow-list (nothing it names has been called yet).
    pickle.UnpicklingError
        If the payload is neither a zlib-compressed nor a plain pickle.
    """
    magic = handle.read(1)
    handle.seek(0)
    if magic == _PICKLE_MAGIC:
        return _AllowListUnpickler(filename, handle).load()
    if magic != _ZLIB_MAGIC:
        raise pickle.UnpicklingError(f"{filename} is neither a zlib-compressed nor a plain joblib pickle")
    # Buffered as joblib.load buffers it: the pure-Python unpickler makes many small reads.
    with BinaryZlibFile(handle, "rb") as stream, io.BufferedReader(stream, buffer_size=_READ_BUFFER_BYTES) as buffered:
        return _AllowListUnpickler(filename, buffered).load()
