"""mothlab.store: headers, completeness, and refusal of missing, foreign, corrupted stores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from mothlab import __version__, store


def test_create_open_update_complete(tmp_path):
    path = tmp_path / "s.zarr"
    group = store.create_store(path, "demo", {"seed": np.int64(3), "ranges": (1.0, 2.0)})
    assert not store.is_complete(group)
    _, header = store.open_store(path, "demo")
    assert header["kind"] == "demo"
    assert header["schema_version"] == store.SCHEMA_VERSION
    assert header["mothlab_version"] == __version__
    assert header["seed"] == 3 and header["ranges"] == [1.0, 2.0]
    assert header["complete"] is False and "created" in header
    new = store.update_header(group, chunks_done=2, timings={"s": np.float32(1.5)})
    assert new["chunks_done"] == 2 and new["timings"] == {"s": 1.5}
    store.mark_complete(group)
    group2, header2 = store.open_store(path, "demo", mode="r")
    assert store.is_complete(group2) and header2["complete"] is True
    assert header2["chunks_done"] == 2 and "completed" in header2
    # the header on disk is plain JSON (no pickle), readable without mothlab
    raw = json.loads((path / "zarr.json").read_text())
    assert raw["attributes"]["mothlab"]["seed"] == 3


def test_fixed_fields_cannot_change(tmp_path):
    group = store.create_store(tmp_path / "s.zarr", "demo", {})
    with pytest.raises(ValueError, match="fixed"):
        store.update_header(group, kind="other")
    with pytest.raises(ValueError, match="reserved"):
        store.create_store(tmp_path / "t.zarr", "demo", {"kind": "x"})


@pytest.mark.parametrize("bad", [object(), {"a": float("nan")}])
def test_non_json_header_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="JSON"):
        store.create_store(tmp_path / "s.zarr", "demo", {"x": bad})


def test_missing_store(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        store.open_store(tmp_path / "nope.zarr", "dataset")


def test_plain_directory_and_file_are_not_stores(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a zarr store"):
        store.open_store(tmp_path / "dir", "dataset")
    (tmp_path / "file.zarr").write_text("hello")
    with pytest.raises(ValueError, match="not a zarr store"):
        store.open_store(tmp_path / "file.zarr", "dataset")


def test_foreign_zarr_group(tmp_path):
    g = zarr.open_group(str(tmp_path / "f.zarr"), mode="w")
    g.attrs["author"] = "someone else"
    g.create_array("x", shape=(3,), dtype="f4")
    with pytest.raises(ValueError, match="not a mothlab store"):
        store.open_store(tmp_path / "f.zarr", "dataset")
    # and creating a store there refuses to delete it, even with overwrite
    with pytest.raises(ValueError, match="not a mothlab store; refusing"):
        store.create_store(tmp_path / "f.zarr", "dataset", {}, overwrite=True)
    with pytest.raises(ValueError, match="refusing"):
        store.create_store(tmp_path, "dataset", {}, overwrite=True)
    assert (tmp_path / "f.zarr" / "zarr.json").exists()


def test_garbage_metadata(tmp_path):
    path = tmp_path / "g.zarr"
    store.create_store(path, "dataset", {})
    (path / "zarr.json").write_text("{ this is not json")
    with pytest.raises(ValueError, match="corrupted zarr store"):
        store.open_store(path, "dataset")


@pytest.mark.parametrize("header, match", [
    ("a string", "corrupted mothlab header"),
    ({"kind": "dataset"}, "corrupted mothlab header"),
    ({"kind": "dataset", "schema_version": "one", "mothlab_version": "0", "created": "x"},
     "schema_version"),
])
def test_corrupted_header(tmp_path, header, match):
    path = tmp_path / "c.zarr"
    g = store.create_store(path, "dataset", {})
    g.attrs["mothlab"] = header
    with pytest.raises(ValueError, match=match):
        store.open_store(path, "dataset")


def test_other_kind_and_newer_schema(tmp_path):
    path = tmp_path / "d.zarr"
    g = store.create_store(path, "dataset", {})
    with pytest.raises(ValueError, match="'dataset' store, not a 'experiment' store"):
        store.open_store(path, "experiment")
    h = store.read_header(g)
    h["schema_version"] = store.SCHEMA_VERSION + 1
    g.attrs["mothlab"] = h
    with pytest.raises(ValueError, match="Upgrade mothlab"):
        store.open_store(path, "dataset")


def test_overwrite_rules(tmp_path):
    path = tmp_path / "o.zarr"
    store.create_store(path, "dataset", {"v": 1})
    with pytest.raises(ValueError, match="overwrite=True"):
        store.create_store(path, "dataset", {"v": 2})
    store.create_store(path, "dataset", {"v": 2}, overwrite=True)
    assert store.open_store(path, "dataset")[1]["v"] == 2
    # an empty directory is fine to create into
    (tmp_path / "empty").mkdir()
    store.create_store(tmp_path / "empty", "dataset", {})
    with pytest.raises(ValueError, match="mode"):
        store.open_store(path, "dataset", mode="w")
