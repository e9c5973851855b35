"""The ```python blocks of README.md and docs/api.md run as written, in order, from a fresh folder.

Each document's blocks are joined into one script (later blocks use what earlier ones made, as a
reader running them one after the other would) and run in a new Python process whose working
folder is an empty temporary one, so every relative path in them (``data/shards``, ``runs/...``)
is created by the blocks themselves. The blocks are written small (tens of scenes at 32 px, a
few training steps), so they run in about a minute on a 2-core CPU. They read the photos that
``scripts/setup.sh`` installs (``/usr/share/backgrounds/mate``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "docs" / "api.md"]
PHOTOS = Path("/usr/share/backgrounds/mate")


def python_blocks(text: str) -> list[str]:
    """The bodies of the fenced ```python blocks of a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def test_python_blocks_are_found():
    text = "a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = x\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = x\n"]
    for doc in DOCUMENTS:
        assert python_blocks(doc.read_text(encoding="utf-8")), f"{doc.name} has no python block"


@pytest.mark.slow
@pytest.mark.gl
@pytest.mark.skipif(not PHOTOS.is_dir(), reason="needs the photos scripts/setup.sh installs (mate-backgrounds)")
@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda d: d.name)
def test_python_blocks_run_as_written(doc, tmp_path):
    blocks = python_blocks(doc.read_text(encoding="utf-8"))
    script = "\n".join(f"# --- block {k + 1} of {doc.name}\n{body}" for k, body in enumerate(blocks))
    (tmp_path / "blocks.py").write_text(script, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "blocks.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{doc.name}: its python blocks failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
