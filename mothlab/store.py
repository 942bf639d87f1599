"""Helpers shared by every mothlab zarr store (datasets, experiments, ...).

A mothlab store is a zarr v3 group whose attributes hold a JSON header under the key
``"mothlab"``::

    {"kind": "dataset", "schema_version": 1, "mothlab_version": "0.1.0",
     "created": "2026-01-01T00:00:00+00:00", "complete": false, ...}

The rest of the header is free-form JSON chosen by the store's kind (configuration, seeds,
timings, ...). Writers follow one rule so that a crash never leaves a store that *looks* done:
write data first, record progress in the header after each unit of work
(:func:`update_header`), and call :func:`mark_complete` last. zarr's local store writes each
file atomically (temporary file + rename), so the header is always either the old or the new one.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "demo.zarr")
>>> group = create_store(path, "demo", {"seed": 3})
>>> is_complete(group)
False
>>> mark_complete(group)
>>> group, header = open_store(path, "demo")
>>> header["seed"], header["complete"], is_complete(group)
(3, True, True)
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Version of the on-disk layout. Bump it when a reader of the old layout would misread the new
#: one; readers refuse stores with a newer schema than they know.
SCHEMA_VERSION = 1

#: Attribute key that holds the header in the zarr group's attributes.
HEADER_KEY = "mothlab"

_REQUIRED = ("kind", "schema_version", "mothlab_version", "created")


def now() -> str:
    """The current UTC time as an ISO 8601 string (what headers record)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _json_default(obj):
    # numpy scalars and arrays are common in headers; convert them instead of failing
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def to_json(value: Any, what: str = "header") -> Any:
    """Return ``value`` as plain JSON data (numpy scalars and arrays converted).

    Raises ValueError naming the offending type when something cannot be stored as JSON
    (mothlab never pickles), or when a float is NaN/infinite (not valid JSON).
    """
    try:
        text = json.dumps(value, default=_json_default, allow_nan=False)
    except TypeError as err:
        raise ValueError(f"The {what} must be JSON data (numbers, strings, lists, dicts): "
                         f"{err}.") from None
    except ValueError as err:
        raise ValueError(f"The {what} contains NaN or infinity, which JSON cannot store: "
                         f"{err}.") from None
    return json.loads(text)


def _is_zarr_dir(path: Path) -> bool:
    return (path / "zarr.json").is_file() or (path / ".zgroup").is_file()


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _read_kind(path: Path) -> str | None:
    """The kind recorded in a mothlab store at ``path``, or None if it is not one."""
    try:
        meta = json.loads((path / "zarr.json").read_text())
        return meta["attributes"][HEADER_KEY]["kind"]
    except Exception:  # noqa: BLE001 - anything unreadable simply is not a mothlab store
        return None


def create_store(path, kind: str, header: dict, overwrite: bool = False):
    """Create a new mothlab store (a zarr v3 group) at ``path`` and write its header.

    Parameters
    ----------
    path : str or Path
        Directory of the new store (conventionally ending in ``.zarr``).
    kind : str
        What the store holds, e.g. ``"dataset"`` or ``"experiment"``; :func:`open_store` refuses
        a store of another kind.
    header : dict
        JSON-safe fields added to the standard ones (kind, schema_version, mothlab_version,
        created, complete=False).
    overwrite : bool
        Replace an existing *mothlab* store at ``path``. A directory that is neither empty nor a
        mothlab store is never deleted.

    Returns the writable ``zarr.Group``.
    """
    import zarr

    from mothlab import __version__

    if not isinstance(kind, str) or not kind:
        raise ValueError(f"kind must be a non-empty string such as 'dataset'; got {kind!r}.")
    path = Path(path)
    if path.exists():
        if path.is_file():
            raise ValueError(f"{path} is a file, not a directory; choose another path for the "
                             "store.")
        if not _is_empty_dir(path):
            existing = _read_kind(path)
            if existing is None:
                raise ValueError(f"{path} exists and is not a mothlab store; refusing to delete "
                                 "it. Choose another path or remove it yourself.")
            if not overwrite:
                raise ValueError(f"{path} already holds a mothlab {existing} store; pass "
                                 "overwrite=True (CLI: --overwrite) to replace it, or choose "
                                 "another path.")
            shutil.rmtree(path)
    full = {"kind": kind, "schema_version": SCHEMA_VERSION, "mothlab_version": __version__,
            "created": now(), "complete": False}
    for key in header:
        if key in full:
            raise ValueError(f"Header field {key!r} is reserved by mothlab.store; rename it.")
    full.update(to_json(dict(header)))
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    group.attrs[HEADER_KEY] = full
    return group


def open_store(path, kind: str, mode: str = "r+"):
    """Open an existing mothlab store of the given kind; return ``(zarr.Group, header dict)``.

    ``mode`` is ``"r+"`` (default; the group may be written, e.g. to resume) or ``"r"``.
    Completeness is *not* checked here (use :func:`is_complete`): resuming needs incomplete
    stores.

    Raises
    ------
    FileNotFoundError
        Nothing exists at ``path``.
    ValueError
        ``path`` is not a zarr group, is a zarr group made by something other than mothlab, has a
        corrupted header, holds another kind of mothlab store, or was written with a newer schema
        than this version of mothlab reads.
    """
    import zarr

    if mode not in ("r", "r+"):
        raise ValueError(f"mode must be 'r' or 'r+'; got {mode!r}.")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No mothlab {kind} store at {path}: the path does not exist.")
    if not path.is_dir() or not _is_zarr_dir(path):
        raise ValueError(f"{path} is not a zarr store (no zarr.json); expected a mothlab {kind} "
                         "store.")
    try:
        group = zarr.open_group(str(path), mode=mode)
        attrs = group.attrs.asdict()
    except Exception as err:  # noqa: BLE001 - zarr raises many types for unreadable metadata
        raise ValueError(f"{path} is a corrupted zarr store: its metadata cannot be read "
                         f"({type(err).__name__}: {err}).") from None
    if HEADER_KEY not in attrs:
        raise ValueError(f"{path} is a zarr group but not a mothlab store (its attributes have "
                         f"no {HEADER_KEY!r} header); expected a mothlab {kind} store.")
    header = attrs[HEADER_KEY]
    if not isinstance(header, dict) or any(k not in header for k in _REQUIRED):
        raise ValueError(f"{path} has a corrupted mothlab header: expected a dict with fields "
                         f"{', '.join(_REQUIRED)}; got {str(header)[:200]!r}.")
    if header["kind"] != kind:
        raise ValueError(f"{path} is a mothlab {header['kind']!r} store, not a {kind!r} store; "
                         f"open it with the function for {header['kind']} stores.")
    version = header["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{path} has a corrupted mothlab header: schema_version = {version!r} "
                         "(expected a positive integer).")
    if version > SCHEMA_VERSION:
        raise ValueError(f"{path} was written with store schema {version} by mothlab "
                         f"{header['mothlab_version']}; this mothlab reads schema "
                         f"<= {SCHEMA_VERSION}. Upgrade mothlab to read it.")
    return group, dict(header)


def read_header(group) -> dict:
    """The mothlab header of an open group, as a new dict."""
    return dict(group.attrs[HEADER_KEY])


def update_header(group, **fields) -> dict:
    """Merge ``fields`` into the group's header (written atomically); return the new header.

    The standard fields kind, schema_version, mothlab_version and created cannot be changed.
    """
    for key in fields:
        if key in _REQUIRED:
            raise ValueError(f"Header field {key!r} is fixed when the store is created.")
    header = read_header(group)
    header.update(to_json(fields))
    group.attrs[HEADER_KEY] = header
    return header


def mark_complete(group, **fields) -> None:
    """Record that the store is finished. Call it last, after every array has been written."""
    update_header(group, **fields, complete=True, completed=now())


def is_complete(group) -> bool:
    """Whether :func:`mark_complete` was called on this store."""
    try:
        return read_header(group).get("complete") is True
    except (KeyError, TypeError):
        return False


def store_size_bytes(path) -> int:
    """Total size of the files under a store directory (bytes)."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


# ------------------------------------------------------------------------ child stores
# A result that belongs to a store (e.g. the motif analysis of an experiment) lives in a child
# group of it with its own header under the same key and the same rules (kind, schema, complete).

def create_subgroup(parent, name: str, kind: str, header: dict, overwrite: bool = False):
    """Create the child group ``name`` (may contain "/") of an open writable store, with its own
    header (standard fields + ``header``); return the writable ``zarr.Group``.

    An existing child is replaced only with ``overwrite=True`` (else ValueError)."""
    from mothlab import __version__

    if not isinstance(kind, str) or not kind:
        raise ValueError(f"kind must be a non-empty string such as 'motifs'; got {kind!r}.")
    if name in parent:
        if not overwrite:
            raise ValueError(f"{name!r} already exists in this store; pass overwrite=True "
                             "(CLI: --overwrite) to replace it.")
        del parent[name]
    full = {"kind": kind, "schema_version": SCHEMA_VERSION, "mothlab_version": __version__,
            "created": now(), "complete": False}
    for key in header:
        if key in full:
            raise ValueError(f"Header field {key!r} is reserved by mothlab.store; rename it.")
    full.update(to_json(dict(header)))
    group = parent.require_group(name)
    group.attrs[HEADER_KEY] = full
    return group


def open_subgroup(parent, name: str, kind: str):
    """Open the child group ``name`` of an open store; return ``(zarr.Group, header)``, or None
    when there is no such child or it has no mothlab header (a layout older than child headers:
    the caller may read it its own way). ValueError for another kind or a newer schema."""
    if name not in parent:
        return None
    group = parent[name]
    header = group.attrs.asdict().get(HEADER_KEY)
    if not isinstance(header, dict):
        return None
    if header.get("kind") != kind:
        raise ValueError(f"{name!r} holds a mothlab {header.get('kind')!r} result, not {kind!r}.")
    version = header.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ValueError(f"{name!r} was written with store schema {version!r} by mothlab "
                         f"{header.get('mothlab_version')}; this mothlab reads schema "
                         f"<= {SCHEMA_VERSION}. Upgrade mothlab to read it.")
    return group, dict(header)
