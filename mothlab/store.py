"""Helpers shared by every mothlab zarr store (datasets, experiments, ...).

A mothlab store is a zarr v3 group whose attributes hold a JSON header under the key
``"mothlab"``::

    {"kind": "dataset", "schema_version": 1, "mothlab_version": "0.1.0",
     "created": "2026-01-01T00:00:00+00:00", "complete": false, ...}

The rest of the header is free-form JSON chosen by the store's kind (configuration, seeds,
timings, ...). Writers follow one rule so that a crash never leaves a store that *looks* done:
write data first, then seal each finished unit of work with :func:`seal_level` (which records
its files' sizes and CRC-32s and the progress fields in one header write, and does the unit's
clean-up), and call :func:`mark_complete` last (which seals the rest). zarr's local store writes
each file atomically (temporary file + rename), so the header is always either the old or the
new one. :func:`open_store` checks every sealed file, so a damaged store is refused, never read
as zeros or NaN; :func:`rollback` forgets a damaged unit so that a resume recomputes it.

Also here: :func:`list_stores` (what a folder holds, by kind), :func:`assets_path` (the shipped
assets, read-only: writes into them are refused), :func:`delete_path`, and child stores (:func:`create_subgroup`: results added to a
store later, e.g. motif analyses, sealed by their own header).

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

import itertools
import json
import os
import shutil
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from mothlab import __version__

# zarr is imported where a store is opened, not here: `import zarr` costs ~0.8 s (measured with
# `/usr/bin/time python -c "import zarr"`: 1.10 s against 0.31 s for numpy, 2 Dec 2026), and the
# CLI imports this module for every command, `mothlab --help` included (0.9 s in all).

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
        raise ValueError(
            f"The {what} must be JSON data (numbers, strings, lists, dicts): {err}."
        ) from None
    except ValueError as err:
        raise ValueError(
            f"The {what} contains NaN or infinity, which JSON cannot store: {err}."
        ) from None
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

    if not isinstance(kind, str) or not kind:
        raise ValueError(f"kind must be a non-empty string such as 'dataset'; got {kind!r}.")
    path = Path(path)
    _refuse_assets(path, "create a store in")
    if path.exists():
        if path.is_file():
            raise ValueError(
                f"{path} is a file, not a directory; choose another path for the store."
            )
        if not _is_empty_dir(path):
            existing = _read_kind(path)
            if existing is None:
                raise ValueError(
                    f"{path} exists and is not a mothlab store; refusing to delete "
                    "it. Choose another path or remove it yourself."
                )
            if not overwrite:
                raise ValueError(
                    f"{path} already holds a mothlab {existing} store; pass "
                    "overwrite=True (CLI: --overwrite) to replace it, or choose "
                    "another path."
                )
            shutil.rmtree(path)
    full = {
        "kind": kind,
        "schema_version": SCHEMA_VERSION,
        "mothlab_version": __version__,
        "created": now(),
        "complete": False,
    }
    for key in header:
        if key in full:
            raise ValueError(f"Header field {key!r} is reserved by mothlab.store; rename it.")
    full.update(to_json(dict(header)))
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    group.attrs[HEADER_KEY] = full
    return group


def _zarr_open(path: Path, mode: str):
    import zarr

    try:
        return zarr.open_group(str(path), mode=mode)
    except Exception as err:  # noqa: BLE001 - zarr raises many types for unreadable metadata
        raise StoreError(
            path,
            f"corrupted zarr store: its metadata cannot be read ({type(err).__name__}: {err})",
            "Delete it and re-run the command that wrote it (CLI: --overwrite).",
        ) from None


def open_store(path, kind: str, mode: str = "r+", verify: bool = True, required=()):
    """Open an existing mothlab store of the given kind; return ``(zarr.Group, header dict)``.

    ``mode`` is ``"r+"`` (default; the group may be written, e.g. to resume) or ``"r"``.
    Completeness is *not* checked here (use :func:`is_complete`): resuming needs incomplete
    stores. Integrity is: every file of every sealed unit (finished levels and chunks, the whole
    store once complete) is checked against its size and CRC-32 (``verify=False`` skips that).
    A writable open first finishes deletions a killed writer left pending. ``required`` names
    header fields the kind's reader needs (a header without them is refused as corrupted).

    Raises
    ------
    FileNotFoundError
        Nothing exists at ``path``.
    StoreError (a ValueError)
        ``path`` is not a zarr group, is a zarr group made by something other than mothlab, has a
        corrupted header, holds another kind of mothlab store, was written with a newer schema
        than this version of mothlab reads, is a shipped asset opened for writing, or
        (:class:`StoreDamaged`) has a missing, truncated or altered sealed file.
    """
    if mode not in ("r", "r+"):
        raise ValueError(f"mode must be 'r' or 'r+'; got {mode!r}.")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No mothlab {kind} store at {path}: the path does not exist.")
    if not path.is_dir() or not _is_zarr_dir(path):
        raise StoreError(
            path,
            "not a zarr store (no zarr.json)",
            f"Expected a mothlab {kind} store; check the path.",
        )
    if mode == "r+":
        _refuse_assets(path, "write into")
    group = _zarr_open(path, mode)
    try:
        attrs = group.attrs.asdict()
    except Exception as err:  # noqa: BLE001 - zarr raises many types for unreadable metadata
        raise StoreError(
            path,
            f"corrupted zarr store: its metadata cannot be read ({type(err).__name__}: {err})",
            "Delete it and re-run the command that wrote it (CLI: --overwrite).",
        ) from None
    if HEADER_KEY not in attrs:
        raise StoreError(
            path,
            f"a zarr group but not a mothlab store (its attributes have no {HEADER_KEY!r} header)",
            f"Expected a mothlab {kind} store; check the path.",
        )
    header = attrs[HEADER_KEY]
    if not isinstance(header, dict) or any(k not in header for k in _REQUIRED):
        raise StoreError(
            path,
            f"corrupted mothlab header: expected a dict with fields "
            f"{', '.join(_REQUIRED)}; got {str(header)[:200]!r}",
            "Delete it and re-run the command that wrote it (CLI: --overwrite).",
        )
    if header["kind"] != kind:
        raise StoreError(
            path,
            f"a mothlab {header['kind']!r} store, not a {kind!r} store",
            f"Open it with the function for {header['kind']} stores.",
        )
    version = header["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StoreError(
            path,
            f"corrupted mothlab header: schema_version = {version!r} (expected a positive integer)",
            "Delete it and re-run the command that wrote it (CLI: --overwrite).",
        )
    if version > SCHEMA_VERSION:
        raise StoreError(
            path,
            f"written with store schema {version} by mothlab "
            f"{header['mothlab_version']}; this mothlab reads schema "
            f"<= {SCHEMA_VERSION}",
            "Upgrade mothlab to read it.",
        )
    missing = [k for k in required if k not in header]
    if missing:
        raise StoreError(
            path,
            f"corrupted mothlab {kind} header: field(s) {', '.join(missing)} missing",
            "Delete it and re-run the command that wrote it (CLI: --overwrite).",
        )
    if mode == "r+" and _pending(header):
        header = finish_pending(group)
    if verify:
        verify_store(group, header)
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


def mark_complete(group, *, exclude=(), **fields) -> None:
    """Record that the store is finished. Call it last, after every array has been written.

    Seals the whole store in the same header write: every file not already in a sealed unit
    (see :func:`seal_level`), except ``exclude``d paths and child stores made with
    :func:`create_subgroup` (results added later, e.g. motif analyses, sealed by their own
    header), gets its size and CRC-32 recorded, so that :func:`open_store` refuses a damaged
    copy. Works on a child store too (its own files). Pending deletions are finished first.
    """
    root = _root_path(group)
    header = finish_pending(group)
    manifest = _manifest(header)
    covered = [
        p for u, r in manifest.items() if isinstance(r, dict) for p in (r.get("paths") or [u])
    ]
    skip = [*covered, *map(_norm, exclude), *_derived(header)]
    files = {r: v for r, v in _files_of(root, [""]).items() if not _under(r, skip)}
    seq = max([u.get("seq", 0) for u in manifest.values() if isinstance(u, dict)] + [0]) + 1
    manifest[""] = {
        "seq": seq,
        "paths": [""],
        "files": files,
        "before": {"complete": False},
        "sealed": now(),
    }
    update_header(
        group,
        **fields,
        complete=True,
        completed=now(),
        **{MANIFEST_KEY: manifest, "integrity": INTEGRITY},
    )


def _derived(header) -> list[str]:
    d = header.get("derived")
    return [str(x) for x in d] if isinstance(d, list) else []


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
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"kind must be a non-empty string such as 'motifs'; got {kind!r}.")
    _refuse_assets(_root_path(parent), "write results into")
    if name in parent:
        if not overwrite:
            raise ValueError(
                f"{name!r} already exists in this store; pass overwrite=True "
                "(CLI: --overwrite) to replace it."
            )
        if isinstance(parent.attrs.get(HEADER_KEY), dict):
            delete_path(parent, name)  # recorded first: a kill mid-way is finished on reopen
        else:
            del parent[name]
    full = {
        "kind": kind,
        "schema_version": SCHEMA_VERSION,
        "mothlab_version": __version__,
        "created": now(),
        "complete": False,
    }
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
        raise ValueError(
            f"{name!r} was written with store schema {version!r} by mothlab "
            f"{header.get('mothlab_version')}; this mothlab reads schema "
            f"<= {SCHEMA_VERSION}. Upgrade mothlab to read it."
        )
    verify_store(group, header)
    return group, dict(header)


# ---------------------------------------------------------------------------- integrity
#
# A store knows it is whole. zarr fills a missing chunk with the array's fill value and reads a
# truncated or altered chunk as whatever it decodes to, so nothing in zarr notices damage. Each
# unit of work a writer finishes (a level of an experiment, a chunk of rows of a dataset, a motif
# analysis level, the whole store at completion) is *sealed*: the size and CRC-32 of every file of
# the unit go into the header's ``manifest`` in the same atomic header write that records the
# progress (``levels_done`` ...). :func:`open_store` checks every sealed file, so a missing,
# truncated, garbage or bit-flipped chunk is refused with its path, the problem and the repair.
#
# Clean-up is part of the same write: paths to delete are recorded as ``pending_deletions`` in the
# sealing header write, deleted after it, and the record cleared; a kill in between leaves the
# record, and the next writable open (resume) finishes the deletion. Nothing is orphaned.
#
# Chunks zarr never wrote (all equal to the fill value: zarr skips them) are simply not in the
# manifest, which records what exists at sealing time; a file added later is ignored.

MANIFEST_KEY = "manifest"
PENDING_KEY = "pending_deletions"
INTEGRITY = "crc32 manifest of sealed units (mothlab.store.seal_level)"

#: Environment variable that names the assets folder explicitly (else found next to the source
#: tree or, from an installed wheel, through importlib.resources).
ASSETS_ENV = "MOTHLAB_ASSETS"
#: Set to 1 to allow writing into the shipped assets (regenerating the embedded experiment).
ALLOW_ASSET_WRITES_ENV = "MOTHLAB_ALLOW_ASSET_WRITES"

_CRC_CACHE: dict[str, tuple[int, int, int, int]] = {}  # abs path -> (mtime_ns, size, ino, crc)
_CRC_LOCK = threading.Lock()


class StoreError(ValueError):
    """A store that cannot be used as it is: ``path``, ``problem`` and ``fix`` say why and what to
    do. A ValueError, so callers that catch bad input catch it too."""

    def __init__(self, path, problem: str, fix: str):
        self.path, self.problem, self.fix = Path(path), problem, fix
        super().__init__(f"{path}: {problem}. {fix}")


class StoreDamaged(StoreError):
    """A sealed file of a store is missing, truncated or altered (``unit`` names the level/chunk)."""

    def __init__(self, path, unit: str, problem: str, fix: str):
        self.unit = unit
        super().__init__(path, problem, fix)


def _root_path(group) -> Path:
    """The directory of ``group`` (a store, or a child store made by :func:`create_subgroup`:
    paths in a manifest are relative to the group whose header holds it)."""
    root = getattr(group.store, "root", None)
    if root is None:
        raise ValueError("mothlab stores live on the local file system; this group is not.")
    path = str(getattr(group, "path", "") or "").strip("/")
    return Path(root) / path if path else Path(root)


def _crc32(path: Path, st: os.stat_result) -> int:
    key = str(path)
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    with _CRC_LOCK:
        hit = _CRC_CACHE.get(key)
    if hit is not None and hit[:3] == stamp:
        return hit[3]
    crc = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            crc = zlib.crc32(block, crc)
    with _CRC_LOCK:
        _CRC_CACHE[key] = (*stamp, crc)
    return crc


def _is_group_meta(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("node_type") == "group"
    except Exception:  # noqa: BLE001 - unreadable metadata is sealed like any file
        return False


def _norm(rel: str) -> str:
    rel = str(rel).strip("/")
    if rel.startswith("..") or os.path.isabs(rel) or "/../" in f"/{rel}/":
        raise ValueError(f"store paths are relative to the store and stay inside it; got {rel!r}.")
    return rel


def _under(rel: str, prefixes) -> bool:
    return any(p == "" or rel == p or rel.startswith(p + "/") for p in prefixes)


def _files_of(root: Path, paths, exclude=()) -> dict[str, list[int]]:
    """Manifest {relative path: [size, crc32]} of every file under ``paths`` (relative to
    ``root``; "" is the whole store) except group metadata and ``exclude``d paths."""
    out: dict[str, list[int]] = {}
    exclude = [_norm(e) for e in exclude]
    for rel in paths:
        rel = _norm(rel)
        base = root / rel if rel else root
        if base.is_file():
            candidates = [base]
        elif base.is_dir():
            candidates = _walk_own(base)
        else:
            continue  # nothing stored there (e.g. an all-fill chunk zarr skipped)
        for f in candidates:
            r = f.relative_to(root).as_posix()
            if _under(r, exclude) or f.name.startswith(".") or ".tmp" in f.name:
                continue
            if f.name == "zarr.json" and _is_group_meta(f):
                continue  # group metadata holds attributes that legitimately change
            st = f.stat()
            out[r] = [st.st_size, _crc32(f, st)]
    return out


def _is_child_store(d: Path) -> bool:
    try:
        meta = json.loads((d / "zarr.json").read_text())
        return meta.get("node_type") == "group" and isinstance(
            meta.get("attributes", {}).get(HEADER_KEY), dict
        )
    except Exception:  # noqa: BLE001 - not a readable group: part of its parent
        return False


def _walk_own(base: Path):
    """Files under ``base``, leaving out child stores (they seal themselves)."""
    for d, dirs, files in os.walk(base):
        here = Path(d)
        dirs[:] = sorted(x for x in dirs if not _is_child_store(here / x))
        for f in sorted(files):
            yield here / f


def _manifest(header: dict) -> dict:
    m = header.get(MANIFEST_KEY)
    return dict(m) if isinstance(m, dict) else {}


def seal_level(group, name: str, *, paths=None, also=(), exclude=(), delete=(), **fields) -> dict:
    """Seal one finished unit of work and record progress, in one atomic header write.

    Call it after every array of the unit is written, instead of :func:`update_header`::

        store.seal_level(g, f"levels/{i}", exclude=[f"levels/{i}/opt"],
                         also=["test_loss", "val_loss", "train_loss", "steps"],
                         delete=[f"levels/{i - 1}/opt"] if i else [],
                         levels_done=i + 1, timings=timings)

    Parameters
    ----------
    name : str
        The unit's name, e.g. ``"levels/3"``, ``"rows/0-65536"`` or ``"motifs/edges"`` (it is the
        path of a group or array inside the store unless ``paths`` is given). Sealing a unit again
        replaces its record (a motif analysis re-seals its group after each level).
    paths : list of str, optional
        What the unit holds (groups, arrays or single chunk files, relative to the store);
        default ``[name]``. See :func:`chunk_paths` for a block of rows of some arrays.
    also : list of str
        Further groups/arrays re-sealed as their own units (e.g. the (L, n) loss arrays that every
        level updates).
    exclude : list of str
        Paths under the unit that are not part of it (state deleted later, e.g. optimizer state).
    delete : list of str
        Paths to delete as part of this write (clean-up). Recorded as pending in the same header
        write, deleted, then cleared; a kill in between is finished by the next writable open.
    **fields
        Header fields to set in the same write (``levels_done=i + 1`` ...).

    Returns the new header.
    """
    _refuse_assets(_root_path(group), "seal a level in")
    root = _root_path(group)
    header = read_header(group)
    manifest = _manifest(header)
    seq = max([u.get("seq", 0) for u in manifest.values() if isinstance(u, dict)] + [0]) + 1
    before = {k: header.get(k) for k in fields}
    delete = [_norm(d) for d in delete]
    unit = _norm(name)
    if not unit:
        raise ValueError("a unit needs a name; the whole store is sealed by mark_complete.")
    unit_paths = paths if paths is not None else [name]
    manifest[unit] = {
        "seq": seq,
        "paths": [_norm(p) for p in unit_paths],
        "files": _files_of(root, unit_paths, [*exclude, *delete]),
        "before": to_json(before),
        "sealed": now(),
    }
    for a in map(_norm, also):
        # an array every unit updates (e.g. (L, n) losses, one row per level): sealed row by
        # row, so that rows an unfinished unit writes later (fill-valued when sealed) are not
        # mistaken for damage, while every row written before the seal is checked
        manifest[a] = {
            "seq": seq,
            "paths": [a],
            "files": _files_of(root, [f"{a}/zarr.json"]),
            "rows": _row_crcs(group[a]),
            "before": to_json(before),
            "sealed": now(),
        }
    manifest = _forget(manifest, delete, keep=_norm(name))
    pending = sorted(set(_pending(header)) | set(delete))
    new = update_header(
        group, **fields, **{MANIFEST_KEY: manifest, PENDING_KEY: pending, "integrity": INTEGRITY}
    )
    if delete:
        new = finish_pending(group)
    return new


def _row_crcs(arr) -> list[int | None]:
    """CRC-32 of each row (first axis) of a zarr array's values; None for rows that hold only
    the fill value (not written yet)."""
    values = np.asarray(arr[...])
    values = values.reshape(values.shape[0], -1) if values.ndim else values.reshape(1, 1)
    fill = None if arr.fill_value is None else np.asarray(arr.fill_value)
    nan_fill = fill is not None and fill.dtype.kind == "f" and bool(np.isnan(fill))
    out: list[int | None] = []
    for row in values:
        unwritten = fill is not None and bool(
            np.all(np.isnan(row)) if nan_fill else np.all(row == fill)
        )
        out.append(None if unwritten else zlib.crc32(np.ascontiguousarray(row).tobytes()))
    return out


def _forget(manifest: dict, deleted, keep: str | None = None) -> dict:
    """The manifest without the files under ``deleted`` paths (and units left with nothing)."""
    if not deleted:
        return manifest
    out = {}
    for unit, rec in manifest.items():
        if unit == keep or not isinstance(rec, dict):
            out[unit] = rec
            continue
        paths = rec.get("paths") or [unit]
        if all(_under(p, deleted) for p in paths) and unit != "":
            continue  # a deleted subtree takes its own record with it
        files = {f: v for f, v in rec.get("files", {}).items() if not _under(f, deleted)}
        out[unit] = {**rec, "files": files}
    return out


def chunk_paths(group, arrays, lo: int, hi: int) -> list[str]:
    """Chunk files (relative to the store) that hold rows ``[lo, hi)`` of ``arrays``, for arrays
    chunked along their first axis only (e.g. a dataset's chunk of trajectories)."""
    out = []
    base = _norm(getattr(group, "path", "") or "")
    for name in arrays:
        arr = group[name]
        rel = _norm(arr.path)
        if base and rel.startswith(base + "/"):
            rel = rel[len(base) + 1 :]  # relative to the group (a child store seals itself)
        c0 = int(arr.chunks[0])
        rest = [range(-(-int(s) // int(c))) for s, c in zip(arr.shape[1:], arr.chunks[1:])]
        for i in range(lo // c0, -(-hi // c0)):
            for tail in itertools.product(*rest):
                key = arr.metadata.encode_chunk_key((i, *tail))
                out.append(f"{rel}/{key}")
    return out


def _pending(header) -> list[str]:
    p = header.get(PENDING_KEY)
    return [str(x) for x in p] if isinstance(p, list) else []


def delete_path(group, rel: str) -> None:
    """Delete a group or array inside the store (and its seal), safely against kills: recorded
    as a pending deletion first, so a kill during the deletion is finished on the next open."""
    rel = _norm(rel)
    if not rel:
        raise ValueError(
            "delete_path deletes inside a store; to replace a whole store use "
            "create_store(..., overwrite=True)."
        )
    _refuse_assets(_root_path(group), "delete in")
    header = read_header(group)
    manifest = _forget(_manifest(header), [rel])
    update_header(
        group, **{MANIFEST_KEY: manifest, PENDING_KEY: sorted(set(_pending(header)) | {rel})}
    )
    finish_pending(group)


def finish_pending(group) -> dict:
    """Finish deletions recorded by :func:`seal_level` / :func:`delete_path` (idempotent)."""
    root = _root_path(group)
    header = read_header(group)
    pending = _pending(header)
    if not pending:
        return header
    for rel in pending:
        target = root / _norm(rel)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    return update_header(group, **{PENDING_KEY: []})


def _what(rel: str) -> str:
    return "metadata file" if rel.endswith("zarr.json") else "chunk file"


def _check_rows(group, name: str, rows) -> str | None:
    try:
        arr = group[name]
        now_rows = _row_crcs(arr)
    except KeyError:
        return f"array {name} is missing"
    except Exception as err:  # noqa: BLE001 - any decoding failure is damage
        return (
            f"a chunk of {name} cannot be decoded ({type(err).__name__}: "
            f"{str(err)[:120]}); it is truncated or altered"
        )
    for r, want in enumerate(rows):
        if want is None:
            continue  # not written when sealed: unfinished work may have written it since
        got = now_rows[r] if r < len(now_rows) else None
        if got is None:
            return (
                f"row {r} of {name} is missing (it reads as the fill value: a chunk file was "
                "deleted)"
            )
        if got != want:
            return f"row {r} of {name} was altered after it was written"
    return None


def _check_unit(root: Path, unit: str, record: dict, group=None) -> str | None:
    label = unit
    unit = unit or "the store"
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, dict):
        return f"the manifest entry of {unit} is corrupted"
    paths = record.get("paths") or [label]
    if files and not any((root / p).exists() for p in paths):
        return f"{unit} is missing (the whole {'group' if len(paths) == 1 else 'unit'} is gone)"
    for rel, want in files.items():
        f = root / rel
        try:
            st = f.stat()
        except FileNotFoundError:
            return f"{_what(rel)} {rel} of {unit} is missing"
        except OSError as err:
            return f"chunk file {rel} of {unit} cannot be read ({err.strerror})"
        if not f.is_file():
            return f"{rel} of {unit} is not a file"
        size, crc = int(want[0]), int(want[1])
        if st.st_size != size:
            what = "truncated" if st.st_size < size else "longer than written"
            return (
                f"{_what(rel)} {rel} of {unit} is {what} ({st.st_size} bytes, sealed with {size})"
            )
        try:
            got = _crc32(f, st)
        except OSError as err:
            return f"chunk file {rel} of {unit} cannot be read ({err.strerror})"
        if got != crc:
            return (
                f"{_what(rel)} {rel} of {unit} was altered after it was written (CRC-32 "
                f"{got:08x}, sealed with {crc:08x})"
            )
    if isinstance(record.get("rows"), list) and group is not None:
        return _check_rows(group, label, record["rows"])
    return None


def _repair_hint(header: dict, unit: str) -> str:
    kind = header.get("kind", "store")
    if unit == "":
        return (
            f"Repair: delete the store and re-run the command that wrote the {kind} "
            "(CLI: --overwrite)."
        )
    return (
        f"Repair: roll back to before {unit} with mothlab.store.rollback(path, {unit!r}) "
        f"and resume the {kind} (run the same command again), or delete the store and re-run "
        "it (CLI: --overwrite)."
    )


def verify_store(group_or_path, header: dict | None = None) -> int:
    """Check every sealed file of a store; return how many files were checked.

    Raises :class:`StoreDamaged` (a ValueError) naming the first missing, truncated or altered
    file, the unit it belongs to and how to repair it. Files written after the last seal are not
    checked (they belong to unfinished work that a resume rewrites).
    """
    if isinstance(group_or_path, str | Path):
        group = _zarr_open(Path(group_or_path), "r")
    else:
        group = group_or_path
    root = _root_path(group)
    for attempt in range(3):
        header = read_header(group) if header is None or attempt else header
        manifest = _manifest(header)
        checked = 0
        problem = unit = None
        for u, record in sorted(
            manifest.items(), key=lambda kv: kv[1].get("seq", 0) if isinstance(kv[1], dict) else 0
        ):
            problem = _check_unit(root, u, record, group)
            if problem:
                unit = u
                break
            checked += len(record.get("files", {}))
        if problem is None:
            return checked
        # a writer may have replaced a re-sealable unit's file just before sealing it again:
        # if the header changed meanwhile, check against the new one
        time.sleep(0.05)
        if read_header(group) == header:
            break
    raise StoreDamaged(
        root,
        unit or "",
        f"damaged {header.get('kind', 'mothlab')} store: {problem}",
        _repair_hint(header, unit or ""),
    )


def rollback(path, unit: str) -> dict:
    """Forget ``unit`` and every unit sealed after it, so that a resume recomputes them.

    The header fields the unit's seal set (``levels_done``, ``chunks_done`` ...) get the values
    they had before it, and the store is marked incomplete. Returns the new header.
    """
    group = _zarr_open(Path(path), "r+")
    _refuse_assets(Path(path), "roll back")
    header = read_header(group)
    manifest = _manifest(header)
    unit = _norm(unit)
    if unit not in manifest:
        raise ValueError(
            f"{path} has no sealed unit {unit!r}; sealed: {', '.join(sorted(manifest)) or 'none'}."
        )
    seq = manifest[unit].get("seq", 0)
    before = dict(manifest[unit].get("before") or {})
    keep = {u: r for u, r in manifest.items() if r.get("seq", 0) < seq}
    fields = {k: v for k, v in before.items() if k not in _REQUIRED}
    return update_header(group, **fields, **{MANIFEST_KEY: keep}, complete=False)


def seal_existing(path, units=(), *, exclude=(), derived=()) -> dict:
    """Seal a store written before manifests existed (adopting it as it is now, so check it
    first): each of ``units`` (e.g. ``levels/0`` ...) and each ``derived`` group becomes a sealed
    unit (``exclude``d paths left out), and a complete store gets its completion seal. Returns
    the new header."""
    group = _zarr_open(Path(path), "r+")
    _refuse_assets(Path(path), "seal")
    header = read_header(group)
    for name in derived:
        if _norm(name) not in _derived(read_header(group)):
            update_header(group, derived=sorted({*_derived(read_header(group)), _norm(name)}))
    for name in [*units, *derived]:
        ex = [e for e in map(_norm, exclude) if _under(e, [_norm(name)])]
        seal_level(group, name, exclude=ex)
    if header.get("complete") is True:
        fields = {k: header[k] for k in ("completed",) if k in header}
        mark_complete(group, exclude=exclude)
        if fields:
            update_header(group, **fields)  # keep the original completion time
    return read_header(group)


# ---------------------------------------------------------------------------- catalog, assets
@dataclass(frozen=True)
class StoreInfo:
    """One mothlab store found by :func:`list_stores`."""

    path: Path
    kind: str
    complete: bool
    header: dict


def _read_header_file(path: Path) -> dict | None:
    try:
        meta = json.loads((path / "zarr.json").read_text())
        header = meta["attributes"][HEADER_KEY]
        return header if isinstance(header, dict) and isinstance(header.get("kind"), str) else None
    except Exception:  # noqa: BLE001 - anything unreadable simply is not a mothlab store
        return None


def list_stores(folder, kind: str | None = None) -> list[StoreInfo]:
    """The mothlab stores directly inside ``folder`` (sorted by name), optionally of one kind.

    Cheap: reads each candidate's header only (no chunk is checked; :func:`open_store` does that).
    A folder that does not exist holds no stores.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir()):
        if not p.is_dir():
            continue
        header = _read_header_file(p)
        if header is None or (kind is not None and header["kind"] != kind):
            continue
        out.append(StoreInfo(p, header["kind"], header.get("complete") is True, header))
    return out


def assets_path() -> Path:
    """The folder of shipped assets (the embedded default experiment, figures), resolved.

    ``$MOTHLAB_ASSETS`` when set; else the package's ``assets`` resource
    (``importlib.resources.files("mothlab") / "assets"``): in a checkout a link to the
    top-level ``assets/`` folder, in an installed wheel a copy of it; else the top-level
    ``assets/`` beside the package (a checkout whose file system dropped the link).
    """
    env = os.environ.get(ASSETS_ENV)
    if env:
        return Path(env).expanduser().resolve()
    try:
        packaged = Path(str(resources.files("mothlab") / "assets"))
        if packaged.is_dir():
            return packaged.resolve()
    except Exception:  # noqa: BLE001 - not importable as a package resource: try the tree
        pass
    return (Path(__file__).resolve().parent.parent / "assets").resolve()


def is_shipped(path) -> bool:
    """Whether ``path`` lies inside the shipped assets folder (read-only for mothlab)."""
    try:
        Path(path).resolve().relative_to(assets_path())
        return True
    except ValueError:
        return False


def _refuse_assets(path: Path, action: str) -> None:
    if os.environ.get(ALLOW_ASSET_WRITES_ENV) == "1" or not is_shipped(path):
        return
    raise StoreError(
        path,
        f"refusing to {action} a shipped asset (mothlab's assets folder "
        f"{assets_path()} is read-only)",
        "Write results beside it in your own "
        "experiments folder instead (e.g. copy the store there first); set "
        f"{ALLOW_ASSET_WRITES_ENV}=1 only to regenerate the shipped assets.",
    )
