"""Model bundles: a fitted model and its manifest in one directory, written atomically and checked on load.

A bundle is a directory holding two files::

    <path>/model.joblib    the pickled model (joblib, compressed)
    <path>/manifest.json   format, package versions, creation time, the payload's SHA-256 and size, and under
                           ``model`` whatever describes the model (feature spec, time grid, horizons, training data
                           fingerprint, seeds, hyperparameters, cross-validated metrics)

Trust model
-----------
A plain pickle is code: unpickling (``joblib.load``, ``pickle.load``) can call any function named in the file. So
:func:`load_model` unpickles with an allow-list (``carrisk/_safe_load.py``): the payload may only construct
classes from carrisk, scikit-learn, scikit-survival, numpy, scipy and pandas (minus their file-writing and
file-reading classes such as ``numpy.memmap``, ``pandas.io.*``, ``scipy.io.*``), a few plain builtin and standard
library containers, and call a handful of named reconstruction functions of numpy and joblib. Any other global
(``os.system``, ``builtins.eval``, a function of carrisk's own, a class of another package) stops the load with a
:class:`BundleError` naming it, before it is called. The loaded object must then be an instance of a carrisk class.
This removes the direct ways for a bundle to run code, but it is not a sandbox: the allowed classes were chosen, not
audited, and a gadget inside one of them cannot be ruled out. Load bundles from people you trust; the allow-list is
a second line of defence. ``trusted=True`` skips it (plain ``joblib.load``) for bundles whose author you trust and
whose payload needs other classes.

The SHA-256 in the manifest detects corruption and accidental modification of the payload (a truncated copy, a
flipped bit, a file overwritten by another model) and :func:`load_model` checks it *before* unpickling. It is not a
signature: the manifest itself is not covered by any checksum, so anyone who can rewrite the payload can rewrite the
manifest to match. Files of the bundle that are symlinks pointing outside it are refused.

Crash safety
------------
:func:`save_model` builds the whole new bundle in a temporary sibling directory ``.<name>.<random>.tmp`` (payload
written and fsynced, manifest written last), then swaps it in with two renames: an existing bundle is renamed aside to
``.<name>.old``, the new one is renamed to ``<name>``, the parent directory is fsynced, and the old bundle is deleted.
An exception or KeyboardInterrupt at any point removes the temporary directory and, if the old bundle had already
been moved aside, moves it back; ``<path>`` therefore always holds either the complete old bundle or the complete
new one, never a mixture.

The residual window is between the two renames: if the process is killed there (SIGKILL, power loss), nothing runs
to move the old bundle back, and ``<path>`` is missing while ``.<name>.old`` holds the complete old bundle.
:func:`load_model` and :func:`read_manifest` recover from this: when ``<path>`` is missing but the aside copy exists,
they rename it back (or, if that fails, read it where it is) and warn. A kill at any other point leaves at worst a
stale ``.<name>.<random>.tmp`` or ``.<name>.old`` directory beside a good ``<path>``; the next save to the same path
removes both.

Concurrency: a save holds an exclusive lock on ``.<name>.lock`` (``fcntl.flock``, released by the kernel when the
process dies) from its first write to its last rename, so concurrent saves to one path run one after another and all
succeed (the last one wins), and every ``.<name>.*.tmp`` directory found while holding the lock belongs to a dead
save and is removed. The lock file is removed on release (a killed save leaves it behind, harmlessly). On platforms
without ``fcntl`` (Windows) there is no lock and concurrent saves to one path must be serialised by the caller. The
bundle directory and its files get the usual permissions (``0o777``/``0o666`` less the umask).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePath
from typing import Any, BinaryIO

import joblib
import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; see "Concurrency" above
    fcntl = None  # type: ignore[assignment]

from carrisk._io import atomic_write, atomic_write_text, unwritable_reason
from carrisk._safe_load import DisallowedGlobal, restricted_load
from carrisk.provenance import package_versions

__all__ = [
    "BundleError",
    "BundleVersionError",
    "BundleVersionWarning",
    "check_bundle_target",
    "load_model",
    "read_manifest",
    "save_model",
]

FORMAT = "carrisk-bundle"
FORMAT_VERSION = 1
PAYLOAD_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
#: A different version of these refuses to load: their pickles are not supported across versions.
STRICT_PACKAGES = ("scikit-learn", "scikit-survival")


class BundleError(Exception):
    """A model bundle is malformed, corrupted, or cannot be trusted to unpickle correctly."""


class BundleVersionError(BundleError):
    """The bundle was saved with a different scikit-learn or scikit-survival version than the one installed."""


class BundleVersionWarning(UserWarning):
    """The bundle was saved with different package versions than the installed ones, and is loaded anyway."""


def save_model(
    model: object,
    path: str | os.PathLike[str],
    *,
    manifest: Mapping[str, Any] | None = None,
    compress: int = 3,
) -> Path:
    """Write ``model`` and its manifest to the bundle directory ``path``, atomically replacing any bundle there.

    Parameters
    ----------
    model : object
        Any picklable object, typically a fitted pipeline. If it has a method ``manifest()`` returning a dict, that
        dict is recorded under the manifest's ``model`` key.
    path : str or PathLike
        The bundle directory. Its parent is created if needed. If it exists it must be a carrisk bundle or an empty
        directory; anything else is refused rather than deleted.
    manifest : Mapping, optional
        What describes the model: feature spec, record schema, time grid, horizons, training data fingerprint, seeds,
        hyperparameters, CV metrics, ... Merged recursively over ``model.manifest()`` (this argument wins on
        conflicts) and stored under the top-level key ``model``. numpy scalars and arrays, dataclasses, paths,
        enums, dates, tuples and sets are converted to JSON.
    compress : int, default 3
        joblib compression level, 0 (none) to 9.

    Returns
    -------
    pathlib.Path
        The absolute bundle directory.

    Raises
    ------
    TypeError
        If ``manifest`` (or ``model.manifest()``) is not a mapping or holds a value that cannot be written as JSON.
    FileExistsError
        If ``path`` exists and is neither a carrisk bundle nor an empty directory.
    """
    target = Path(os.path.abspath(path))
    if manifest is not None and not isinstance(manifest, Mapping):
        raise TypeError(f"manifest must be a dict, got {type(manifest).__name__}")
    model_section = _to_jsonable(_merge(_model_own_manifest(model), manifest or {}), where="model")
    check_bundle_target(target)
    aside = _aside_path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _save_lock(target):
        check_bundle_target(target)  # again: a concurrent save may have finished while this one waited
        _remove_stale_staging(target)
        staging = _make_staging_dir(target)
        try:
            _write_bundle(staging, model, model_section, compress)
            if aside.exists() and target.exists():
                # Left by a save killed after its swap but before deleting the old bundle: target is the good copy.
                shutil.rmtree(aside)
            if target.exists():
                os.replace(target, aside)
            os.replace(staging, target)
        except BaseException:
            # Decide from the disk, not from a flag: an interrupt can land after a rename but before any assignment.
            # Whenever target is missing, the aside copy is the last complete bundle.
            if not target.exists() and aside.exists():
                with contextlib.suppress(OSError):  # if even this fails, load_model recovers from the aside copy
                    os.replace(aside, target)
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _fsync_directory(target.parent)
        # A failure here leaves a stale aside copy beside a complete new bundle; the next save removes it.
        shutil.rmtree(aside, ignore_errors=True)
    return target


def check_bundle_target(path: str | os.PathLike[str]) -> Path:
    """Check that :func:`save_model` could write a bundle at ``path``, without writing anything.

    Call it before a long fit so that a bad ``--out`` fails at once rather than after the work.

    Parameters
    ----------
    path : str or PathLike
        The bundle directory to be written.

    Returns
    -------
    pathlib.Path
        The absolute bundle directory.

    Raises
    ------
    FileExistsError
        If ``path`` exists and is not a carrisk bundle or an empty directory (saving would delete it), is a symlink,
        or one of its parents is a file.
    PermissionError
        If the nearest existing parent directory is not writable.
    """
    target = Path(os.path.abspath(path))
    if target.exists() or target.is_symlink():
        if not (target.is_dir() and not target.is_symlink() and (_is_bundle(target) or not any(target.iterdir()))):
            raise FileExistsError(
                f"{target} exists and is not a carrisk model bundle (or is a symlink); saving would delete it. "
                "Choose another path, or remove it first if it is no longer needed."
            )
    reason = unwritable_reason(target)
    if reason is not None:
        raise (PermissionError if reason.endswith("not writable") else FileExistsError)(
            f"cannot save a model bundle at {target}: {reason}"
        )
    return target


def load_model(path: str | os.PathLike[str], *, allow_version_mismatch: bool = False, trusted: bool = False) -> object:
    """Load a model saved by :func:`save_model`, verifying its checksum before unpickling.

    The payload is unpickled with an allow-list of the classes and functions it may name, and must be an instance
    of a carrisk class; load bundles from people you trust all the same (see "Trust model" in the module docstring).

    Parameters
    ----------
    path : str or PathLike
        The bundle directory.
    allow_version_mismatch : bool, default False
        Load even if the bundle was saved with a different scikit-learn or scikit-survival version (with a
        :class:`BundleVersionWarning`). The loaded model may fail or predict differently; check it.
    trusted : bool, default False
        Unpickle with plain ``joblib.load``, without the allow-list: only for a bundle whose author you trust and
        whose payload needs classes outside the allow-list. The payload must still be a carrisk model.

    Returns
    -------
    object
        The model, with the manifest dict attached as attribute ``manifest_`` when the object allows it.

    Raises
    ------
    FileNotFoundError
        If the bundle directory, its manifest or its payload does not exist.
    BundleError
        If the manifest is malformed or not a carrisk bundle, a bundle file is a symlink leading outside it, the
        payload's SHA-256 or size differs from the manifest (the payload is then not unpickled), the payload names a
        global outside the allow-list (refused before it is called), or the loaded object is not a carrisk model.
    BundleVersionError
        If scikit-learn or scikit-survival versions differ from the recorded ones and ``allow_version_mismatch`` is
        False. Other recorded packages (numpy, pandas, shap, joblib, carrisk, python) only warn.
    """
    bundle_dir = _locate_bundle(Path(path))
    manifest = _read_manifest_file(bundle_dir)
    payload_path = _payload_path(bundle_dir, manifest)
    with open(payload_path, "rb") as handle:
        _verify_payload(handle, manifest, payload_path)
        _check_versions(manifest, bundle_dir, allow_version_mismatch=allow_version_mismatch)
        # Unpickle from the handle that was hashed, so a file swapped in after the check is not the one loaded.
        handle.seek(0)
        model: Any = joblib.load(handle) if trusted else _load_allow_listed(handle, payload_path)
    if type(model).__module__.partition(".")[0] != "carrisk":
        raise BundleError(
            f"{payload_path} holds a {type(model).__module__}.{type(model).__qualname__}, not a carrisk model; "
            "load_model reads bundles written by carrisk.save_model from a carrisk model (such as EFSModel)"
        )
    with contextlib.suppress(AttributeError, TypeError):  # __slots__, frozen dataclasses, builtins
        model.manifest_ = manifest
    return model


def _load_allow_listed(handle: BinaryIO, payload_path: Path) -> object:
    """Unpickle the payload with the allow-list, turning a refusal into a :class:`BundleError`."""
    try:
        return restricted_load(handle, str(payload_path))
    except DisallowedGlobal as refused:
        raise BundleError(
            f"{payload_path} asks to load {refused.name}, which is not on carrisk's allow-list (classes of carrisk, "
            "scikit-learn, scikit-survival, numpy, scipy and pandas, plain containers); refusing to unpickle it. "
            "If you trust the bundle's author, load it with carrisk.load_model(path, trusted=True)."
        ) from None


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return a bundle's manifest without unpickling its payload.

    Parameters
    ----------
    path : str or PathLike
        The bundle directory.

    Returns
    -------
    dict
        The parsed ``manifest.json``.

    Raises
    ------
    FileNotFoundError
        If the bundle directory or its manifest does not exist.
    BundleError
        If the manifest is not valid JSON or not a carrisk bundle manifest.
    """
    return _read_manifest_file(_locate_bundle(Path(path)))


def _write_bundle(staging: Path, model: object, model_section: dict[str, Any], compress: int) -> None:
    """Write payload then manifest into ``staging`` and flush both, so a present manifest implies a whole payload."""
    payload = staging / PAYLOAD_FILE
    atomic_write(payload, lambda tmp: joblib.dump(model, tmp, compress=compress))
    with open(payload, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "payload": {"file": PAYLOAD_FILE, "sha256": digest, "bytes": payload.stat().st_size},
        "model": model_section,
    }
    atomic_write_text(staging / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    _fsync_directory(staging)


def _model_own_manifest(model: object) -> Mapping[str, Any]:
    """The dict returned by ``model.manifest()``, or an empty one if the model has no such method."""
    method = getattr(model, "manifest", None)
    if not callable(method):
        return {}
    own = method()
    if not isinstance(own, Mapping):
        raise TypeError(f"{type(model).__name__}.manifest() must return a dict, got {type(own).__name__}")
    return own


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into ``base`` recursively; on a conflict that is not two dicts, ``override`` wins."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _to_jsonable(value: Any, where: str) -> Any:
    """Convert ``value`` to plain JSON types; ``where`` names its location for the error message.

    Non-finite floats are kept and written as JSON's ``NaN``/``Infinity`` extension, which Python reads back.
    """
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {_json_key(key): _to_jsonable(item, f"{where}.{key}") for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _to_jsonable(dataclasses.asdict(value), where)
    if isinstance(value, np.ndarray):
        return _to_jsonable(value.tolist(), where)
    if isinstance(value, np.generic):
        plain = value.item()
        if isinstance(plain, np.generic):  # e.g. extended precision floats have no Python equivalent
            raise TypeError(f"cannot write {where} (numpy {value.dtype}) to the bundle manifest; cast it to float64")
        return _to_jsonable(plain, where)
    if isinstance(value, enum.Enum):
        return _to_jsonable(value.value, where)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_to_jsonable(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, set | frozenset):
        items = [_to_jsonable(item, f"{where}[]") for item in value]
        with contextlib.suppress(TypeError):  # mixed types have no order; keep them unsorted
            items.sort()
        return items
    if hasattr(value, "tolist"):  # pandas Series and Index
        return _to_jsonable(value.tolist(), where)
    raise TypeError(
        f"cannot write {where} (a {type(value).__name__}) to the bundle manifest; "
        "convert it to a dict, list, string or number first"
    )


def _json_key(key: Any) -> str | int | float | bool | None:
    """A dict key JSON accepts: numpy and enum keys become their values, anything else unusual its ``str``."""
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, enum.Enum):
        key = key.value
    if key is None or isinstance(key, str | bool | int | float):
        return key
    return str(key)


def _aside_path(target: Path) -> Path:
    """Where :func:`save_model` keeps the old bundle between its two renames."""
    return target.with_name(f".{target.name}.old")


@contextlib.contextmanager
def _save_lock(target: Path, *, best_effort: bool = False) -> Iterator[None]:
    """Hold the exclusive lock of saves to ``target`` (a ``flock`` on ``.<name>.lock`` beside it).

    The lock file is removed on release. A waiter may then hold a lock on the removed file, so after acquiring, the
    lock is kept only if the file at the lock path is still the one locked; otherwise it is taken again. With
    ``best_effort``, a lock file that cannot be created (read-only directory) means going on without the lock.
    """
    if fcntl is None:
        yield
        return
    lock_path = target.with_name(f".{target.name}.lock")
    while True:
        try:
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            if not best_effort:
                raise
            yield
            return
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            current = os.stat(lock_path).st_ino == os.fstat(descriptor).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(descriptor)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock_path.unlink()
        os.close(descriptor)


def _staging_pattern(target: Path) -> re.Pattern[str]:
    """Names of the temporary directories of saves to ``target`` (also those of earlier carrisk versions)."""
    return re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.tmp")


def _make_staging_dir(target: Path) -> Path:
    """Create an empty temporary sibling directory ``.<name>.<8 hex>.tmp`` with the usual permissions.

    ``os.mkdir(path, 0o777)`` lets the umask decide, as for any new directory (``tempfile.mkdtemp`` would make it
    ``0o700``, and the renamed bundle with it).
    """
    while True:
        staging = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.mkdir(staging, 0o777)
        except FileExistsError:
            continue
        return staging


def _remove_stale_staging(target: Path) -> None:
    """Delete temporary directories left by killed saves to ``target``; call only while holding its save lock."""
    pattern = _staging_pattern(target)
    for entry in target.parent.iterdir():
        if pattern.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def _is_bundle(directory: Path) -> bool:
    """Whether ``directory`` holds a readable carrisk bundle manifest."""
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def _fsync_directory(directory: Path) -> None:
    """Make the directory's entries (new files, renames) durable.

    Best effort: some platforms (Windows) cannot open a directory and some file systems reject fsync on one; there
    the rename is still atomic, only its durability across a power loss is up to the file system.
    """
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _locate_bundle(target: Path) -> Path:
    """Return the directory to read the bundle at ``target`` from, recovering from a save killed mid-swap."""
    if target.is_dir():
        return target
    if target.exists():
        raise BundleError(f"{target} is a file; pass the bundle directory (the one containing {MANIFEST_FILE})")
    aside = _aside_path(target)
    if not aside.is_dir():
        raise FileNotFoundError(2, "no model bundle directory", str(target))
    with _save_lock(target, best_effort=True):  # a save may be between its two renames right now: let it finish
        if target.is_dir():
            return target
        if not aside.is_dir():
            raise FileNotFoundError(2, "no model bundle directory", str(target))
        try:
            os.replace(aside, target)
        except OSError:
            warnings.warn(
                f"no bundle at {target}, but a previous save was interrupted between its two renames; "
                f"reading the previous bundle from {aside} (could not move it back: check permissions)",
                stacklevel=3,
            )
            return aside
    warnings.warn(
        f"no bundle at {target}, but a previous save was interrupted between its two renames; "
        f"restored the previous bundle from {aside}",
        stacklevel=3,
    )
    return target


def _read_manifest_file(bundle_dir: Path) -> dict[str, Any]:
    """Parse and check ``manifest.json`` in ``bundle_dir``."""
    manifest_path = bundle_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        raise FileNotFoundError(2, "model bundle has no manifest", str(manifest_path))
    _check_inside(manifest_path, bundle_dir)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise BundleError(f"{manifest_path} is not valid JSON ({error}); the bundle is corrupted") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise BundleError(f"{manifest_path} is not a carrisk bundle manifest (format {found!r}, expected {FORMAT!r})")
    format_version = manifest.get("format_version")
    if isinstance(format_version, bool) or not isinstance(format_version, int) or format_version < 1:
        raise BundleError(
            f"{manifest_path} has format_version {format_version!r}, which is not a bundle format (a whole number "
            f"from 1 to {FORMAT_VERSION}); the manifest is corrupted: restore the bundle from a copy or save it again"
        )
    if format_version > FORMAT_VERSION:
        raise BundleError(
            f"{manifest_path} has format_version {format_version}; this carrisk reads up to {FORMAT_VERSION}. "
            "Upgrade carrisk to read it."
        )
    return manifest


def _check_inside(file: Path, bundle_dir: Path) -> None:
    """Refuse a bundle file that is a symlink (or under one) resolving outside the bundle directory."""
    resolved = file.resolve()
    if not resolved.is_relative_to(bundle_dir.resolve()):
        raise BundleError(
            f"{file} points outside its bundle (to {resolved}); a bundle's files must be inside its directory. "
            "Copy the real files into the bundle instead of linking them."
        )


def _payload_path(bundle_dir: Path, manifest: Mapping[str, Any]) -> Path:
    """The payload file named in the manifest, which must be a plain file name inside the bundle."""
    payload = manifest.get("payload")
    name = payload.get("file") if isinstance(payload, Mapping) else None
    if not isinstance(name, str) or name in ("", ".", "..") or PurePath(name).name != name or "\\" in name:
        raise BundleError(f"the manifest in {bundle_dir} names no valid payload file (got {name!r})")
    payload_path = bundle_dir / name
    if not payload_path.is_file():
        raise FileNotFoundError(2, "model bundle payload is missing", str(payload_path))
    _check_inside(payload_path, bundle_dir)
    return payload_path


def _verify_payload(handle: io.BufferedReader, manifest: Mapping[str, Any], payload_path: Path) -> None:
    """Compare the payload's SHA-256 and size with the manifest; raise before anything is unpickled."""
    payload = manifest["payload"]
    expected_digest, expected_bytes = payload.get("sha256"), payload.get("bytes")
    if not isinstance(expected_digest, str):
        raise BundleError(f"the manifest records no sha256 for {payload_path}; refusing to unpickle it unverified")
    actual_digest = hashlib.file_digest(handle, "sha256").hexdigest()
    actual_bytes = os.fstat(handle.fileno()).st_size
    if actual_digest != expected_digest.lower() or (expected_bytes is not None and actual_bytes != expected_bytes):
        raise BundleError(
            "payload checksum mismatch: the file was modified or corrupted; refusing to unpickle "
            f"{payload_path} (manifest: sha256 {expected_digest}, {expected_bytes} bytes; "
            f"file: sha256 {actual_digest}, {actual_bytes} bytes). Restore the bundle from a copy or save it again."
        )


def _check_versions(manifest: Mapping[str, Any], bundle_dir: Path, *, allow_version_mismatch: bool) -> None:
    """Refuse (or with the override, warn about) scikit-learn/scikit-survival drift; warn about other packages."""
    recorded = manifest.get("versions")
    recorded = recorded if isinstance(recorded, Mapping) else {}
    installed = package_versions()
    # A package the bundle did not record (an older carrisk recorded fewer) is only compared if it is strict.
    differing = {
        name: (recorded.get(name), now)
        for name, now in installed.items()
        if (name in recorded or name in STRICT_PACKAGES) and recorded.get(name) != now
    }
    if not differing:
        return
    strict = {name: versions for name, versions in differing.items() if name in STRICT_PACKAGES}
    loose = {name: versions for name, versions in differing.items() if name not in STRICT_PACKAGES}

    def describe(pairs: Mapping[str, tuple[str | None, str | None]]) -> str:
        return ", ".join(f"{name} {saved} (installed: {now})" for name, (saved, now) in pairs.items())

    if strict:
        message = (
            f"the model bundle {bundle_dir} was saved with {describe(strict)}. Pickled models are not supported "
            "across versions of scikit-learn and scikit-survival: they may fail to load or silently predict "
            "differently. Install the recorded versions, or retrain and save the model again; to load it anyway, "
            "pass allow_version_mismatch=True (CLI: --allow-version-mismatch) and check its predictions."
        )
        if not allow_version_mismatch:
            raise BundleVersionError(message)
        warnings.warn(message, BundleVersionWarning, stacklevel=3)
    if loose:
        warnings.warn(
            f"the model bundle {bundle_dir} was saved with {describe(loose)}; it usually loads, "
            "but check its predictions.",
            BundleVersionWarning,
            stacklevel=3,
        )
