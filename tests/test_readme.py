"""The README's Python example runs as written and gives what its comments say."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) == 1, "the README has one Python example; test any new one here"
    monkeypatch.chdir(tmp_path)  # it writes tiny.zarr where it runs
    ns: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), ns)
    assert ns["state0"].shape == (1000, 8) and ns["controls"].shape == (1000, 3)
    assert ns["traj"].shape == (1000, 21, 8)
    exp = ns["exp"]
    assert exp.test_loss.shape == (len(exp.sparsity_levels), exp.n_networks)
    assert (tmp_path / "tiny.zarr").is_dir()
    masks = ns["masks"]
    assert masks[0].shape[0] == exp.n_networks and masks[0].dtype == bool
