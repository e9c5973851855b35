"""docs/shard-format.md's pasteable torch Dataset (h5py, numpy, torch only) reads a render
folder, flat or nested, exactly as synthssl's own reader does."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from helpers.analytic_scene import write_shards
from helpers.provenance_shards import provenance_render

from synthssl.dataset import ShardCollection

DOC = Path(__file__).resolve().parents[2] / "docs" / "shard-format.md"


def snippet() -> str:
    """The code block right after the ``<!-- snippet: RenderedScenes -->`` marker."""
    found = re.search(r"<!-- snippet: RenderedScenes -->\s*```python\n(.*?)```", DOC.read_text(), re.S)
    assert found, "docs/shard-format.md lost its RenderedScenes snippet"
    return found.group(1)


def test_snippet_imports_only_h5py_numpy_torch():
    imports = set(re.findall(r"^\s*(?:import|from)\s+([\w., ]+)", snippet(), re.M))
    names = {n.split()[0].split(".")[0] for line in imports for n in line.split(",")}
    assert names <= {"json", "os", "h5py", "numpy", "torch"}, names
    code = [line for line in snippet().splitlines() if line.strip()]
    assert len(code) <= 17  # pasteable: about ten lines of logic (blank lines as ruff format puts them)


def test_snippet_reads_a_render_like_the_reader(tmp_path):
    flat = tmp_path / "flat"
    write_shards(flat, num_scenes=5, shard_size=2, size=16)
    nested = provenance_render(tmp_path / "nested", num_scenes=5, shard_size=2, size=16, per_folder=2)
    namespace: dict = {}
    exec(compile(snippet(), str(DOC), "exec"), namespace)
    for folder in (flat, nested):
        ours = ShardCollection([folder])
        theirs = namespace["RenderedScenes"](str(folder), fields=("rgb", "depth", "normal"))
        loader = torch.utils.data.DataLoader(theirs, batch_size=5)
        batch = next(iter(loader))
        assert batch["rgb"].shape == (5, 2, 16, 16, 3) and batch["rgb"].dtype == torch.uint8
        listed = json.loads((folder / "manifest.json").read_text())["shards"]  # the snippet's order: by file
        scene_ids = [e["first_scene"] + j for e in listed for j in range(e["num_scenes"])]
        assert sorted(scene_ids) == list(range(5))
        for i, sid in enumerate(scene_ids):
            for f in ("rgb", "depth", "normal"):
                np.testing.assert_array_equal(batch[f][i].numpy(), ours[sid][f])


def test_snippet_runs_without_synthssl_importable(tmp_path):
    write_shards(tmp_path, num_scenes=3, shard_size=2, size=8)
    code = (
        "import sys; sys.modules['synthssl'] = None\n"
        + snippet()
        + f"\nds = RenderedScenes({str(tmp_path)!r})\nprint(len(ds), tuple(ds[2]['depth'].shape))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split() == ["3", "(2,", "8,", "8)"], r.stderr[-1500:]
