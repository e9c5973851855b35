"""Repository promises: every sub-package is installed, each package imports only the packages
docs/architecture.md allows, and core/, dataset/ and render/ stay torch-free."""

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


#: The synthssl packages each package may import (docs/architecture.md); render and train never
#: import each other, and nothing imports bench/, scripts/ or tests/.
MAY_IMPORT = {"core": set(), "dataset": {"core"}, "render": {"dataset", "core"}, "train": {"dataset", "core"}}
#: Torch and the libraries built on it: never imported by the packages of the reader and renderer.
TORCH_MODULES = {"torch", "torchvision", "timm", "tensorboard"}
TORCH_FREE = ("core", "dataset", "render")


def _imported_modules(path: Path, folder: str) -> set[str]:
    """Absolute names of every module ``path`` (a file of package ``folder``) imports, at any scope
    (function-level imports included), with relative imports resolved against its package."""
    rel = path.relative_to(ROOT / folder).with_suffix("")
    package = [*MAPPING[folder].split("."), *rel.parts[:-1]]  # the package a module of rel lives in
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)  # `from synthssl import render`
    return names


def _package_imports() -> dict[str, list[tuple[str, str]]]:
    """{folder: [(file relative to the checkout, imported module name), ...]} of every package."""
    return {
        folder: [
            (path.relative_to(ROOT).as_posix(), name)
            for path in sorted((ROOT / folder).rglob("*.py"))
            for name in sorted(_imported_modules(path, folder))
        ]
        for folder in MAPPING
    }


def test_each_package_imports_only_what_the_architecture_allows():
    wrong = [
        f"{file} imports {name} ({folder}/ may import {sorted(MAY_IMPORT[folder]) or 'no other synthssl package'})"
        for folder, imports in _package_imports().items()
        for file, name in imports
        if name.startswith("synthssl.")
        and name.split(".")[1] in MAPPING
        and name.split(".")[1] not in MAY_IMPORT[folder] | {folder}
    ]
    assert not wrong, "\n".join(wrong)
    outside = {path.stem for path in (ROOT / "bench").glob("*.py")} | {"bench", "helpers", "scripts", "tests"}
    into_the_checkout = [
        f"{file} imports {name} (a module of bench/ or tests/, which the wheel does not ship)"
        for imports in _package_imports().values()
        for file, name in imports
        if name.split(".")[0] in outside
    ]
    assert not into_the_checkout, "\n".join(into_the_checkout)


def test_core_dataset_and_render_never_name_torch_and_only_dataset_opens_hdf5():
    """No import statement of torch in core/, dataset/ or render/, at any scope (the subprocess test
    below also catches imports through third-party modules); h5py is imported by dataset/ alone, so
    render/ and train/ reach shards only through synthssl.dataset."""
    imports = _package_imports()
    torch = [
        f"{file} imports {name}"
        for folder in TORCH_FREE
        for file, name in imports[folder]
        if name.split(".")[0] in TORCH_MODULES
    ]
    hdf5 = [
        f"{file} imports {name}"
        for folder in MAPPING
        if folder != "dataset"
        for file, name in imports[folder]
        if name.split(".")[0] == "h5py"
    ]
    assert not torch, "\n".join(torch)
    assert not hdf5, "\n".join(hdf5)


def test_importing_core_dataset_and_render_loads_no_torch():
    code = (
        "import pkgutil, importlib, sys\n"
        "import synthssl.core, synthssl.dataset, synthssl.render\n"
        "for pkg in (synthssl.core, synthssl.dataset, synthssl.render):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "core/, dataset/ or render/ imported torch"


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
    assert main([f"out={tmp_path / 'out'}", "scenes=1", "size=16", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "objects.bundled_assets" in err[0] and "no shipped meshes" in err[0], err
    assert not list((tmp_path / "out").glob("*.h5"))
