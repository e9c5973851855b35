"""Repository promises: every sub-package is installed, and render/ + dataset/ stay torch-free."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
MAPPING = {
    "core": "synthssl.core",
    "render": "synthssl.render",
    "dataset": "synthssl.dataset",
    "train": "synthssl.train",
}


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for folder, name in MAPPING.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    assert found <= listed, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"


def test_render_and_dataset_never_import_torch():
    code = (
        "import pkgutil, importlib, sys\n"
        "import synthssl.dataset, synthssl.render\n"
        "for pkg in (synthssl.dataset, synthssl.render):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "render/ or dataset/ imported torch"


#: Import name of each distribution the extras require (pyproject.toml -> core/extras.py).
IMPORT_NAMES = {"opencv-python-headless": "cv2", "pyyaml": "yaml"}


def _dist_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def test_extra_guards_match_pyproject_extras():
    """require_extra() checks exactly the modules of each extra's required distributions (those with
    an environment marker, like pybullet, are optional), and [all] is render + train."""
    from synthssl.core.extras import EXTRA_MODULES

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["all"] == ["synthssl[render,train]"]
    for extra, modules in EXTRA_MODULES.items():
        required = {_dist_name(r) for r in extras[extra] if ";" not in r}
        assert sorted(IMPORT_NAMES.get(d, d) for d in required) == sorted(modules), extra
    assert set(EXTRA_MODULES) == {"render", "train"}


def test_plain_dependencies_are_what_dataset_imports():
    """Every third-party module dataset/ imports is a plain dependency (a plain install runs it);
    tests/test_wheel_install.py runs it in a venv holding only those."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    plain = {IMPORT_NAMES.get(d, d) for d in map(_dist_name, project["dependencies"])}
    imported = set()
    for path in [*(ROOT / "dataset").rglob("*.py"), *(ROOT / "core").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):  # real import statements, not docstring prose
            if isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m not in ("synthssl", "__future__")}
    assert third_party - {"tqdm"} == plain, (
        "dataset/ and core/ imports must be plain dependencies (tqdm: only on a TTY)"
    )


def test_an_install_without_its_assets_is_refused_not_rendered_with_fewer_categories(tmp_path, monkeypatch, capsys):
    from synthssl.render import assets
    from synthssl.render.cli import main

    monkeypatch.setattr(assets, "BUNDLED_ASSETS", tmp_path / "site-packages" / "synthssl" / "assets")
    assert main(["--out", str(tmp_path / "out"), "--scenes", "1", "--size", "16", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "objects.bundled_assets" in err[0] and "no shipped meshes" in err[0], err
    assert not list((tmp_path / "out").glob("*.h5"))
