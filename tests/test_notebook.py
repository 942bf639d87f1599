"""The notebook in app/ runs top to bottom (nbclient, kernel python3) and shows the app's content:
the numbers it prints come from the library, the last cell renders the MothLab app itself."""

import os
import re
import shutil
from pathlib import Path

import nbclient  # the test extra: a missing one fails, never skips
import nbformat

NOTEBOOK = Path(__file__).resolve().parents[1] / "app" / "mothlab.ipynb"


def test_notebook_runs_and_shows_the_app(tmp_path, tiny_experiment, monkeypatch):
    exp_dir = tmp_path / "experiments"
    exp_dir.mkdir()
    shutil.copytree(tiny_experiment, exp_dir / "tiny.zarr")
    monkeypatch.setenv("MOTHLAB_EXPERIMENTS", str(exp_dir))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute(env=dict(os.environ))
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert str(exp_dir) in text  # the experiments folder it reads is the one the server uses
    assert "hover force" in text and "median test loss" in text and "pruned out in" in text
    assert "θ̇₀" in text and "networks with an optimal level" in text
    # the last cell renders the app: Panel's model bundle with every tab's title in it
    last = nb.cells[-1]["outputs"]
    bundles = [
        o["data"] for o in last if "application/vnd.holoviews_exec.v0+json" in o.get("data", {})
    ]
    assert bundles, [list(o.get("data", {})) for o in last]
    rendered = "".join(str(v) for o in last for v in o.get("data", {}).values())
    # tab titles (the Train, explorer, motifs and fly tabs are built when first shown) and the
    # Flight tab's own content, which is on the first page
    for title in ("Flight", "Sparsity explorer", "Motifs", "Fly", "State versus time"):
        assert title in rendered, title
    assert re.search(r"Train (&|&amp;|\\u0026) prune", rendered), "no Train & prune tab"
    assert "mothlab-moth" in rendered  # the flight figure itself, not a placeholder
    assert "cdn.holoviz.org" not in rendered and "cdn.bokeh.org" not in rendered
