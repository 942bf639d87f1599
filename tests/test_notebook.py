"""The notebook in app/ runs top to bottom (nbclient, kernel python3) on a real experiment."""

import os
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "app" / "mothlab.ipynb"


def test_notebook_runs(tmp_path, tiny_experiment, monkeypatch):
    exp_dir = tmp_path / "experiments"
    exp_dir.mkdir()
    shutil.copytree(tiny_experiment, exp_dir / "tiny.zarr")
    monkeypatch.setenv("MOTHLAB_EXPERIMENTS", str(exp_dir))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute(env=dict(os.environ))
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "hover force" in text and "median test loss" in text and "pruned out in" in text
    # the last cell displays the app
    last = nb.cells[-1]["outputs"]
    assert last and any("application/vnd.holoviews_load.v0+json" in o.get("data", {})
                        or "text/html" in o.get("data", {}) or "text/plain" in o.get("data", {})
                        for o in last)
