"""The wheel, tried as a new user would: it ships the assets and configs, a wheel install renders
exactly the checkout's scenes, and a plain install (no extras) reads and validates shards.

Offline: the wheel is built from a copy of the source tree with ``pip wheel --no-deps
--no-build-isolation`` (setuptools from this venv), and installed with ``--no-deps`` into fresh
venvs that see only chosen packages of this venv, through a ``.pth`` file:

* ``full``: every package of this venv (the ``[all]`` install);
* ``plain``: only NumPy, h5py and PyYAML (what a plain ``pip install synthssl`` brings).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from pathlib import Path

import h5py
import numpy as np
import pytest

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
#: What the wheel is built from (everything pyproject.toml packages).
SOURCE_ITEMS = ("pyproject.toml", "README.md", "core", "render", "dataset", "train", "assets")
#: The distributions of a plain install: pyproject's [project] dependencies.
PLAIN_PREFIXES = ("numpy", "h5py", "yaml", "_yaml", "pyyaml")
BUNDLED_CATEGORIES = {"arch", "l_block", "mug", "star_prism"}


def _run(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """synthssl's wheel, built offline from a clean copy of the source tree."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for item in SOURCE_ITEMS:
        if (ROOT / item).is_dir():
            shutil.copytree(ROOT / item, src / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / item, src / item)
    out = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            base / "dist",
            src,
        ],
        cwd=base,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (whl,) = (base / "dist").glob("synthssl-*.whl")
    return whl


def _venv_seeing(root: Path, wheel: Path, site_dirs: list[Path]) -> Path:
    """A fresh venv at ``root`` with ``wheel`` installed (no deps) that also imports from ``site_dirs``."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    py = root / "bin" / "python"
    purelib = Path(
        _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root).stdout.strip()
    )
    # plain path lines: the directories' own .pth files (this checkout's editable hook) are not run
    (purelib / "_synthssl_test_deps.pth").write_text("".join(f"{d}\n" for d in site_dirs))
    out = _run(
        [sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", "-q", wheel], cwd=root
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return root


def _this_site_dirs() -> list[Path]:
    paths = sysconfig.get_paths()
    return sorted({Path(paths["purelib"]), Path(paths["platlib"])})


@pytest.fixture(scope="module")
def full_venv(tmp_path_factory, wheel) -> Path:
    return _venv_seeing(tmp_path_factory.mktemp("full") / "venv", wheel, _this_site_dirs())


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory, wheel) -> Path:
    """A venv whose only third-party packages are NumPy, h5py and PyYAML (linked from this venv)."""
    base = tmp_path_factory.mktemp("plain")
    deps = base / "deps"
    deps.mkdir()
    for site in _this_site_dirs():
        for entry in site.iterdir():
            if entry.name.lower().startswith(PLAIN_PREFIXES) and not (deps / entry.name).exists():
                (deps / entry.name).symlink_to(entry)
    return _venv_seeing(base / "venv", wheel, [deps])


# -- what the wheel holds ----------------------------------------------------------------------


def test_wheel_ships_the_assets_and_configs_byte_for_byte(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        shipped = {n: z.read(n) for n in names if n.startswith("synthssl/assets/")}
        for folder in ("render/configs", "train/configs"):
            for f in sorted((ROOT / folder).glob("*.yaml")):
                name = f"synthssl/{folder}/{f.name}"
                assert name in names, f"{name} is not in the wheel"
                assert z.read(name) == f.read_bytes()
    checkout = {
        f"synthssl/assets/{p.relative_to(ROOT / 'assets').as_posix()}": p.read_bytes()
        for p in (ROOT / "assets").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert shipped == checkout
    assert {Path(n).stem for n in shipped if not n.endswith(".md")} == BUNDLED_CATEGORIES


def test_wheel_metadata_plain_install_is_the_shard_format_only(wheel):
    with zipfile.ZipFile(wheel) as z:
        (meta,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        msg = Parser().parsestr(z.read(meta).decode())
    requires = msg.get_all("Requires-Dist")
    plain = sorted(r.split(">")[0].split("=")[0].strip().lower() for r in requires if "extra ==" not in r)
    assert plain == ["h5py", "numpy", "pyyaml"]
    assert set(msg.get_all("Provides-Extra")) >= {"render", "train", "all", "test"}
    torch_extras = {r.split('extra == "')[1].rstrip('"') for r in requires if r.startswith("torch") and "extra" in r}
    assert torch_extras == {"train"}


# -- a plain install ------------------------------------------------------------------------------


def test_plain_install_reads_and_validates_shards(plain_venv, analytic_shards, tmp_path):
    py, bin_ = plain_venv / "bin" / "python", plain_venv / "bin"
    code = (
        "import importlib.util, pkgutil, importlib, sys, json\n"
        "assert all(importlib.util.find_spec(m) is None for m in ('torch', 'trimesh', 'pyrender', 'cv2', 'tqdm'))\n"
        "import synthssl.dataset as d\n"
        "for m in pkgutil.walk_packages(d.__path__, 'synthssl.dataset.'):\n"  # every module imports
        "    importlib.import_module(m.name)\n"
        "from synthssl.dataset import ShardCollection\n"
        "c = ShardCollection([sys.argv[1]])\n"
        "s = c[len(c) - 1]\n"
        "print(json.dumps({'n': len(c), 'file': d.__file__, 'depth': float(s['depth'].sum())}))\n"
    )
    out = _run([py, "-c", code, analytic_shards], cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout)
    assert got["file"].startswith(str(plain_venv)), got["file"]
    assert got["n"] == 12
    with h5py.File(sorted(analytic_shards.glob("*.h5"))[-1]) as f:
        assert got["depth"] == pytest.approx(float(f["depth"][-1].astype(np.float64).sum()), rel=1e-6)

    valid = _run([bin_ / "render-scenes", "validate", analytic_shards, "--deep"], cwd=tmp_path)
    assert valid.returncode == 0, valid.stderr[-3000:]
    assert json.loads(valid.stdout)["num_scenes"] == 12
    broken = tmp_path / "broken"
    shutil.copytree(analytic_shards, broken)
    first = sorted(broken.glob("*.h5"))[0]
    first.write_bytes(first.read_bytes()[: first.stat().st_size // 2])
    invalid = _run([bin_ / "render-scenes", "validate", broken], cwd=tmp_path)
    assert invalid.returncode == 1 and "INVALID" in invalid.stderr

    deps = _run([sys.executable, "-m", "pip", "--python", py, "check"], cwd=tmp_path)
    assert deps.returncode == 0, deps.stdout + deps.stderr


@pytest.mark.parametrize(
    "argv, extra",
    [
        (["render-scenes", "out=x", "scenes=1"], "render"),
        (["render-scenes", "preview", "x", "--out", "s.png"], "render"),
        (["train-ssl", "simclr.yaml"], "train"),
        (["train-ssl", "eval", "--help"], "train"),
    ],
)
def test_plain_install_names_the_missing_extra(plain_venv, tmp_path, argv, extra):
    out = _run([plain_venv / "bin" / argv[0], *argv[1:]], cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pip install 'synthssl[{extra}]'" in lines[0], out.stderr
    assert not (tmp_path / "x").exists()


# -- a full install renders the checkout's data ---------------------------------------------------


_TABLE = (
    "import json, sys\n"
    "from synthssl.render import assets\n"
    "from synthssl.render.config import load_config\n"
    "from synthssl.render.identity import identity_of\n"
    "from synthssl.render.scene import SceneSampler\n"
    "cfg = load_config(None, {})\n"
    "print(json.dumps({'assets_file': assets.__file__, 'categories': SceneSampler(cfg).category_names,\n"
    "                  'identity': identity_of(cfg)}))\n"
)
#: Few tiny scenes whose objects are often bundled meshes (pybullet's 1,000 are left out so the 4
#: shipped ones are drawn), physics on as by default.
_RENDER_ARGS = [
    "scenes=4",
    "size=32",
    "shard_size=2",
    "workers=1",
    "seed=11",
    "objects.pybullet_assets=false",
    "objects.source_weights={primitive: 0.2, procedural: 0.2, asset: 0.6}",
    "--no-progress",
    "-q",
]


def _shard_content(folder: Path) -> dict:
    """Every dataset and root attribute of every shard (the render config without its ``out``)."""
    content = {}
    for path in sorted(folder.glob("**/*.h5")):
        with h5py.File(path) as f:
            attrs = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.attrs.items()}
            cfg = json.loads(attrs.pop("render_config"))
            cfg.pop("out")
            attrs["render_config"] = cfg
            content[path.relative_to(folder).as_posix()] = {"attrs": attrs, **{k: f[k][()] for k in f.keys()}}
    return content


@pytest.mark.gl
def test_wheel_install_renders_the_checkouts_scenes(full_venv, tmp_path):
    py = full_venv / "bin" / "python"
    wheel_table = _run([py, "-c", _TABLE], cwd=tmp_path)
    checkout_table = _run([sys.executable, "-c", _TABLE], cwd=tmp_path)
    assert wheel_table.returncode == 0 and checkout_table.returncode == 0, wheel_table.stderr + checkout_table.stderr
    wheel_t, checkout_t = json.loads(wheel_table.stdout), json.loads(checkout_table.stdout)
    assert wheel_t["assets_file"].startswith(str(full_venv)) and checkout_t["assets_file"].startswith(str(ROOT))
    assert wheel_t["categories"] == checkout_t["categories"]
    assert BUNDLED_CATEGORIES <= set(wheel_t["categories"])
    assert wheel_t["identity"] == checkout_t["identity"]

    renders = {
        "wheel": [full_venv / "bin" / "render-scenes"],
        "checkout": [sys.executable, "-m", "synthssl.render.cli"],
    }
    for name, cmd in renders.items():
        out = _run([*cmd, f"out={tmp_path / name}", *_RENDER_ARGS], cwd=tmp_path)
        assert out.returncode == 0, f"{name}: {out.stderr[-3000:]}"
    wheel_c, checkout_c = _shard_content(tmp_path / "wheel"), _shard_content(tmp_path / "checkout")
    assert wheel_c.keys() == checkout_c.keys() and len(wheel_c) == 2
    for shard, fields in checkout_c.items():
        assert fields.keys() == wheel_c[shard].keys()
        for key, value in fields.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(wheel_c[shard][key], value, err_msg=f"{shard}: {key}")
            else:
                assert wheel_c[shard][key] == value, f"{shard}: {key}"
    sources = [o["source"] for shard in checkout_c.values() for objs in shard["objects_json"] for o in json.loads(objs)]
    assert any(s.startswith("asset:bundled:") for s in sources), sources  # the shipped meshes were drawn
    assert json.loads((tmp_path / "wheel" / "identity.json").read_text()) == json.loads(
        (tmp_path / "checkout" / "identity.json").read_text()
    )
