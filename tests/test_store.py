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


@pytest.mark.parametrize(
    "header, match",
    [
        ("a string", "corrupted mothlab header"),
        ({"kind": "dataset"}, "corrupted mothlab header"),
        (
            {"kind": "dataset", "schema_version": "one", "mothlab_version": "0", "created": "x"},
            "schema_version",
        ),
    ],
)
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


# ---------------------------------------------------------------------------- integrity
def _levels_store(path, n_levels=3, complete=True):
    """A small store written like an experiment: a sealed unit per level, the (L, n) loss array
    re-sealed with each level, optimizer state kept for the latest level only."""
    rng = np.random.default_rng(0)
    g = store.create_store(path, "demo", {"levels_done": 0})
    g.create_array("loss", shape=(n_levels, 5), dtype="float32", fill_value=np.nan)
    for i in range(n_levels):
        lv = g.require_group(f"levels/{i}")
        w = lv.create_array("w", shape=(5, 4), chunks=(2, 4), dtype="float32")
        w[...] = rng.random((5, 4))
        lv.create_array("m", shape=(5, 4), dtype="bool", fill_value=False)  # all fill: no file
        lv.require_group("opt").create_array("0", shape=(5,), dtype="float32")[...] = 1.0
        g["loss"][i] = rng.random(5)
        store.seal_level(
            g,
            f"levels/{i}",
            also=["loss"],
            exclude=[f"levels/{i}/opt"],
            delete=[f"levels/{i - 1}/opt"] if i else [],
            levels_done=i + 1,
        )
    if complete:
        store.mark_complete(g)
    return g


def _flip(f):
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0x10
    f.write_bytes(bytes(b))


@pytest.mark.parametrize(
    "damage, match",
    [
        (
            lambda p: (p / "levels/1/w/c/1/0").unlink(),
            "chunk file levels/1/w/c/1/0 of levels/1 is missing",
        ),
        (lambda p: (p / "loss/c/0/0").unlink(), "row 0 of loss is missing"),
        (lambda p: _flip(p / "loss/c/0/0"), "loss"),
        (lambda p: _flip(p / "levels/2/w/c/0/0"), "levels/2/w/c/0/0 of levels/2 was altered"),
        (
            lambda p: (p / "levels/0/w/c/2/0").write_bytes(
                (p / "levels/0/w/c/2/0").read_bytes()[:-2]
            ),
            "levels/0/w/c/2/0 of levels/0 is truncated",
        ),
        (lambda p: (p / "levels/0/w/c/2/0").write_bytes(b"\0" * 4096), "is longer than written"),
        (lambda p: __import__("shutil").rmtree(p / "levels/1"), "levels/1 is missing"),
        (lambda p: (p / "levels/1/w/zarr.json").write_text("{}"), "metadata file levels/1/w/zarr"),
    ],
)
@pytest.mark.parametrize("complete", [True, False])
def test_damage_is_refused_with_path_problem_and_repair(tmp_path, damage, match, complete):
    path = tmp_path / "s.zarr"
    _levels_store(path, complete=complete)
    store.open_store(path, "demo", mode="r")  # whole: opens
    damage(path)
    with pytest.raises(store.StoreDamaged, match=match) as err:
        store.open_store(path, "demo", mode="r")
    assert str(path) in str(err.value) and "rollback" in str(err.value)
    assert isinstance(err.value, ValueError)
    # a store opened without the check still opens (what a repair tool needs)
    store.open_store(path, "demo", mode="r", verify=False)


def test_all_fill_chunks_and_later_files_are_fine(tmp_path):
    path = tmp_path / "s.zarr"
    g = _levels_store(path)
    assert not (path / "levels/0/m/c").exists()  # zarr skipped the all-False mask
    assert not (path / "levels/0/opt").exists() and (path / "levels/2/opt").exists()
    header = store.read_header(g)
    assert sorted(header["manifest"]) == ["", "levels/0", "levels/1", "levels/2", "loss"]
    assert header["pending_deletions"] == []
    # results added after completion (not sealed yet) do not make the store damaged
    d = store.create_subgroup(g, "motifs/edges", "motifs", {"levels": 0})
    d.create_array("z", shape=(3,), dtype="float32")[...] = 2.0
    store.open_store(path, "demo", mode="r")
    store.seal_level(d, "z", levels=1)  # a child store seals itself, paths relative to it
    store.mark_complete(d)
    assert list(store.read_header(d)["manifest"]["z"]["files"]) == ["z/zarr.json", "z/c/0"]
    root, _ = store.open_store(path, "demo", mode="r")  # the child is not part of the parent
    _flip(path / "motifs/edges/z/c/0")
    store.open_store(path, "demo", mode="r")
    with pytest.raises(store.StoreDamaged, match="z/c/0 of z was altered"):
        store.open_subgroup(root, "motifs/edges", "motifs")
    # replacing child results deletes them through the store
    store.create_subgroup(g, "motifs/edges", "motifs", {}, overwrite=True)
    assert not (path / "motifs/edges/z").exists()
    assert store.open_subgroup(g, "motifs/edges", "motifs")[1]["complete"] is False


def test_rollback_forgets_the_unit_and_later_ones(tmp_path):
    path = tmp_path / "s.zarr"
    _levels_store(path)
    _flip(path / "levels/1/w/c/0/0")
    header = store.rollback(path, "levels/1")
    assert header["levels_done"] == 1 and header["complete"] is False
    assert sorted(header["manifest"]) == ["levels/0"]
    store.open_store(path, "demo", mode="r")  # what is left is whole: a resume can continue
    with pytest.raises(ValueError, match="no sealed unit 'levels/5'"):
        store.rollback(path, "levels/5")


def test_a_kill_during_clean_up_is_finished_on_the_next_writable_open(tmp_path):
    path = tmp_path / "s.zarr"
    g = _levels_store(path, n_levels=2, complete=False)
    # what a kill right after the sealing header write (before the deletion) leaves behind
    store.update_header(g, pending_deletions=["levels/0/opt"])
    g.require_group("levels/0/opt").create_array("0", shape=(5,), dtype="float32")[...] = 1.0
    store.open_store(path, "demo", mode="r")  # a reader leaves it alone
    assert (path / "levels/0/opt").exists()
    _, header = store.open_store(path, "demo", mode="r+")
    assert not (path / "levels/0/opt").exists() and header["pending_deletions"] == []
    assert (path / "levels/1/opt").exists()


def test_delete_path_and_chunk_paths(tmp_path):
    path = tmp_path / "s.zarr"
    g = store.create_store(path, "demo", {"chunks_done": 0})
    a = g.create_array("x", shape=(10, 3), chunks=(4, 3), dtype="float64")
    a[0:4] = 1.0
    assert store.chunk_paths(g, ["x"], 0, 4) == ["x/c/0/0"]
    assert store.chunk_paths(g, ["x"], 4, 10) == ["x/c/1/0", "x/c/2/0"]
    store.seal_level(g, "rows/0-4", paths=store.chunk_paths(g, ["x"], 0, 4), chunks_done=1)
    a[4:8] = 2.0  # an unsealed chunk (work in progress) is not checked
    (path / "x/c/1/0").write_bytes(b"junk")
    store.open_store(path, "demo")
    _flip(path / "x/c/0/0")
    with pytest.raises(store.StoreDamaged, match="rows/0-4"):
        store.open_store(path, "demo")
    store.delete_path(g, "x")
    assert not (path / "x").exists() and store.read_header(g)["manifest"] == {}
    with pytest.raises(ValueError, match="inside"):
        store.delete_path(g, "../elsewhere")


# ---------------------------------------------------------------------------- catalog, assets
def test_list_stores_by_kind(tmp_path):
    store.create_store(tmp_path / "a.zarr", "experiment", {})
    store.mark_complete(store.create_store(tmp_path / "b_dataset_like.zarr", "experiment", {}))
    store.create_store(tmp_path / "c.zarr", "dataset", {})
    zarr.open_group(str(tmp_path / "foreign.zarr"), mode="w")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "broken.zarr").mkdir()
    (tmp_path / "broken.zarr" / "zarr.json").write_text("{")
    found = store.list_stores(tmp_path)
    assert [(s.path.name, s.kind) for s in found] == [
        ("a.zarr", "experiment"),
        ("b_dataset_like.zarr", "experiment"),
        ("c.zarr", "dataset"),
    ]
    exps = store.list_stores(tmp_path, kind="experiment")
    assert [s.complete for s in exps] == [False, True]
    assert store.list_stores(tmp_path / "missing") == []


def test_assets_path_and_shipped_assets_are_read_only(tmp_path, monkeypatch):
    assert (store.assets_path() / "default_experiment.zarr" / "zarr.json").is_file()
    shipped = store.assets_path() / "default_experiment.zarr"
    g, header = store.open_store(shipped, "experiment", mode="r")  # sealed and whole
    assert header["complete"] and "" in header["manifest"]
    with pytest.raises(store.StoreError, match="shipped asset"):
        store.open_store(shipped, "experiment", mode="r+")
    with pytest.raises(store.StoreError, match="shipped asset"):
        store.create_subgroup(g, "motifs/edges", "motifs", {}, overwrite=True)
    with pytest.raises(store.StoreError, match="shipped asset"):
        store.create_store(store.assets_path() / "new.zarr", "experiment", {})
    assert not (store.assets_path() / "new.zarr").exists()
    monkeypatch.setenv(store.ASSETS_ENV, str(tmp_path))
    assert store.assets_path() == tmp_path.resolve()
    with pytest.raises(store.StoreError, match="MOTHLAB_ALLOW_ASSET_WRITES"):
        store.create_store(tmp_path / "x.zarr", "demo", {})
    monkeypatch.setenv(store.ALLOW_ASSET_WRITES_ENV, "1")
    store.create_store(tmp_path / "x.zarr", "demo", {})


def test_a_child_store_seals_its_levels_relative_to_itself(tmp_path):
    g = store.create_store(tmp_path / "s.zarr", "demo", {})
    c = store.create_subgroup(g, "motifs/edges", "motifs", {})
    a = c.create_array("counts", shape=(3, 2), chunks=(1, 2), dtype="int64", fill_value=0)
    d = c.create_array("done", shape=(3,), dtype="bool", fill_value=False)
    a[0] = [1, 2]
    d[0] = True
    assert store.chunk_paths(c, ["counts"], 0, 1) == ["counts/c/0/0"]
    store.seal_level(c, "levels/0", paths=store.chunk_paths(c, ["counts"], 0, 1), also=["done"])
    a[1] = [3, 4]  # the next level, written but not sealed yet
    d[1] = True
    root, _ = store.open_store(tmp_path / "s.zarr", "demo", mode="r")
    store.open_subgroup(root, "motifs/edges", "motifs")
    _flip(tmp_path / "s.zarr/motifs/edges/counts/c/0/0")
    with pytest.raises(store.StoreDamaged, match="counts/c/0/0 of levels/0"):
        store.open_subgroup(root, "motifs/edges", "motifs")
