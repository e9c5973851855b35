"""The folder that the GPU check carries to a lent GPU machine: prepared here, installed there.

A lent GPU machine (docs/install.md, "A lent GPU machine") has CPython 3.12 with CUDA torch,
torchvision, numpy, scipy, h5py, OpenCV, timm and tensorboard, but no internet, no synthssl and
none of the rendering packages; a copy of this checkout travels to it, at most 64 MiB in all. The
torch wheels of this project's own set-up (torch 2.14.1 + torchvision 0.29.1, several GB) cannot
travel and are not needed: the machine's own torch is used. What travels, in the git-ignored
folder ``.gpu-carry/`` (about 33 MB):

* ``wheels/``: trimesh, pyrender, PyOpenGL, freetype-py (pyrender's fonts) and setuptools (to
  build synthssl there), the versions installed here, for CPython 3.12 (pure Python or manylinux);
* ``pybullet-VERSION-cp312.tar.xz``: PyPI has no pybullet wheel for CPython 3.12, so ``prepare``
  compiles one from the sdist with a local CPython 3.12 (5-15 minutes on 2 cores, once:
  the file is kept and reused), and keeps the stripped module (12 MB) and the
  ``pybullet_data/random_urdfs`` meshes the default scenes draw from (the rest of pybullet_data,
  robots and textures, is left out);
* ``debs/``: libglvnd's EGL and GL loaders (``libegl1 libglvnd0 libopengl0 libgl1 libglx0
  libgles2``), unpacked into ``/`` there so that PyOpenGL finds ``libEGL.so.1`` and the NVIDIA
  driver's EGL;
* ``photos/mate/``: the photos of the default ``appearance.photo_dir`` (Debian's
  mate-backgrounds) of at most 4 MiB each (all but two high-resolution copies of one picture),
  copied to that folder there;
* ``commit.json``: this checkout's commit when ``prepare`` ran (the copy that travels has no
  ``.git``).

    python scripts/gpu_carry.py prepare [--dir .gpu-carry] [--python312 PATH]   # here, with the network
    python scripts/gpu_carry.py install --site DIR [--dir .gpu-carry]          # there, as root
    python scripts/gpu_carry.py verify                                         # imports and versions

``install`` and ``verify`` print one JSON object. ``scripts/gpu_check.sh --prepare`` runs
``prepare`` and prints the device call to make.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO / ".gpu-carry"
#: What the device's CPython (3.12) lacks, taken at the versions installed here.
WHEELS = ("trimesh", "pyrender", "PyOpenGL", "freetype-py", "setuptools")
PYBULLET_FALLBACK_VERSION = "3.2.7"
DEVICE_PYTHON = "3.12"
#: libglvnd's loaders: libEGL.so.1, libOpenGL.so.0, libGL.so.1 and what they need.
DEBS = ("libegl1", "libglvnd0", "libopengl0", "libgl1", "libglx0", "libgles2")
PHOTO_DIR = Path("/usr/share/backgrounds/mate")
PHOTO_MAX_BYTES = 4 << 20
#: The working tree that travels is at most 64 MiB; keep room for files others add meanwhile.
TRAVEL_LIMIT_BYTES = 64 << 20
TRAVEL_WARN_BYTES = 56 << 20
PIP_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64")


class CarryError(RuntimeError):
    """A step of prepare or install failed; the message is one line for the user."""


def log(message: str) -> None:
    print(f"[gpu_carry] {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd``; CarryError naming ``what`` and the last line of its output when it fails."""
    res = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if res.returncode != 0:
        tail = (res.stderr.strip() or res.stdout.strip() or "no output").splitlines()[-1]
        raise CarryError(f"{what} failed (exit {res.returncode}): {tail[:300]}")
    return res


def installed_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        raise CarryError(
            f"{name} is not installed in {sys.executable}; run prepare from the project's environment "
            "(source .venv/bin/activate, after scripts/setup.sh)"
        ) from None


# -- prepare (here) ----------------------------------------------------------------
def wheel_key(name: str, version: str) -> str:
    """``name==version`` with the name normalised as in wheel file names (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower() + "==" + version


def prepare_wheels(dest: Path) -> list[str]:
    """Download the wheels of :data:`WHEELS` for CPython 3.12 on x86-64 into ``dest``."""
    wanted = {wheel_key(n, installed_version(n)): n for n in WHEELS}
    dest.mkdir(parents=True, exist_ok=True)
    for wheel in dest.glob("*.whl"):  # one version of each: two stop the install there
        if wheel_key(*wheel.name.split("-")[:2]) not in wanted:
            wheel.unlink()
    have = {wheel_key(*w.name.split("-")[:2]) for w in dest.glob("*.whl")}
    missing = [f"{wanted[k]}=={k.split('==')[1]}" for k in wanted if k not in have]
    if missing:
        log(f"downloading wheels for CPython {DEVICE_PYTHON}: {' '.join(missing)}")
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        cmd += ["--python-version", DEVICE_PYTHON, "--implementation", "cp", "-d", str(dest)]
        for platform in PIP_PLATFORMS:
            cmd += ["--platform", platform]
        run(cmd + missing, "pip download")
    return sorted(p.name for p in dest.glob("*.whl"))


def find_python312(given: str | None) -> str:
    """A CPython 3.12 interpreter: ``given``, python3.12 on PATH, or a pyenv 3.12 build."""
    candidates = [given] if given else []
    candidates += [shutil.which("python3.12") or ""]
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))
    for c in candidates:
        if not c:
            continue
        try:
            out = subprocess.run([c, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == "(3, 12)":
            return c
    if given:
        raise CarryError(f"--python312: {given} is not a working CPython 3.12")
    raise CarryError(
        "no CPython 3.12 found to build pybullet for the GPU machine's Python 3.12 "
        "(give --python312 PATH, or install one, e.g. pyenv install 3.12)"
    )


def prepare_pybullet(carry: Path, python312_hint: str | None) -> Path:
    """Build pybullet for CPython 3.12 once and keep the module and random_urdfs as a .tar.xz."""
    try:
        version = importlib.metadata.version("pybullet")
    except importlib.metadata.PackageNotFoundError:
        version = PYBULLET_FALLBACK_VERSION
    target = carry / f"pybullet-{version}-cp312.tar.xz"
    if target.is_file():
        return target
    for old in carry.glob("pybullet-*-cp312.tar.xz"):
        old.unlink()
    python312 = find_python312(python312_hint)
    log(f"compiling pybullet {version} for CPython 3.12 with {python312} (5-15 minutes on 2 cores, once)")
    with tempfile.TemporaryDirectory(prefix="gpu-carry-pybullet-") as tmp:
        env = dict(os.environ, CFLAGS="-g0", CXXFLAGS="-g0")  # no debug info: faster to build, 18 MB instead of 134
        cmd = [python312, "-m", "pip", "wheel", "-q", "--no-deps", "--no-binary", "pybullet", "-w", tmp]
        run(cmd + [f"pybullet=={version}"], "building the pybullet wheel", env=env)
        wheel = next(Path(tmp).glob("pybullet-*.whl"))
        root = Path(tmp) / "x"
        with zipfile.ZipFile(wheel) as z:
            keep = [
                n
                for n in z.namelist()
                if (n.startswith("pybullet.") and n.endswith(".so"))
                or n == "pybullet_data/__init__.py"
                or n.startswith("pybullet_data/random_urdfs/")
            ]
            z.extractall(root, keep)
        for so in root.glob("pybullet.*.so"):
            run(["strip", "--strip-unneeded", str(so)], "strip")
        part = target.with_suffix(".part")
        with tarfile.open(part, "w:xz") as tar:
            for name in sorted(keep):
                tar.add(root / name, arcname=name, recursive=False)
        part.rename(target)
    return target


def prepare_debs(dest: Path) -> list[str]:
    """Download the libglvnd loader packages (amd64) into ``dest`` with apt-get."""
    dest.mkdir(parents=True, exist_ok=True)
    if all(list(dest.glob(f"{name}_*.deb")) for name in DEBS):
        return sorted(p.name for p in dest.glob("*.deb"))
    lists = Path(tempfile.gettempdir()) / "gpu-carry-apt-amd64"
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    opts = ["-oAPT::Architecture=amd64", "-oAPT::Architectures=amd64", f"-oDir::State::Lists={lists}"]
    log(f"downloading Debian packages: {' '.join(DEBS)}")
    run(["apt-get", *opts, "-q", "update"], "apt-get update")
    run(["apt-get", *opts, "-q", "download", *DEBS], "apt-get download", cwd=dest)
    return sorted(p.name for p in dest.glob("*.deb"))


def prepare_photos(dest: Path) -> dict:
    """Copy the photos of :data:`PHOTO_DIR` of at most :data:`PHOTO_MAX_BYTES` into ``dest``."""
    if not PHOTO_DIR.is_dir():
        raise CarryError(f"{PHOTO_DIR} is missing (the default appearance.photo_dir); run scripts/setup.sh first")
    files = sorted(p for p in PHOTO_DIR.rglob("*") if p.is_file())
    kept = [p for p in files if p.stat().st_size <= PHOTO_MAX_BYTES]
    if dest.exists():
        shutil.rmtree(dest)
    for p in kept:
        out = dest / p.relative_to(PHOTO_DIR)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, out)
    return {
        "folder": str(PHOTO_DIR),
        "photos": len(kept),
        "left_out": [str(p.relative_to(PHOTO_DIR)) for p in files if p not in kept],
    }


def commit_info() -> dict:
    """HEAD of this checkout and whether tracked files differ from it."""
    try:
        head = run(["git", "rev-parse", "HEAD"], "git rev-parse", cwd=REPO).stdout.strip()
        dirty = bool(run(["git", "status", "--porcelain", "-uno"], "git status", cwd=REPO).stdout.strip())
    except (CarryError, OSError):
        return {"hash": None, "dirty": None}
    return {"hash": head, "dirty": dirty}


def travelling_bytes(carry: Path) -> tuple[int, int]:
    """(bytes of the tracked and untracked-not-ignored files, bytes under ``carry``)."""
    names = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], "git ls-files", cwd=REPO).stdout
    tree = sum((REPO / n).stat().st_size for n in names.split("\0") if n and (REPO / n).is_file())
    return tree, sum(p.stat().st_size for p in carry.rglob("*") if p.is_file())


def ensure_ignored(carry: Path) -> None:
    res = subprocess.run(["git", "check-ignore", "-q", str(carry)], cwd=REPO)
    if res.returncode != 0:
        raise CarryError(f"{carry} is not ignored by git; add /{carry.name}/ to .gitignore")


def prepare(carry: Path, python312: str | None) -> dict:
    """Fill ``carry`` (idempotent: what is there at the right version is kept)."""
    carry.mkdir(parents=True, exist_ok=True)
    ensure_ignored(carry)
    summary = {
        "wheels": prepare_wheels(carry / "wheels"),
        "debs": prepare_debs(carry / "debs"),
        "pybullet": prepare_pybullet(carry, python312).name,
        "photos": prepare_photos(carry / "photos" / "mate"),
        "commit": commit_info(),
    }
    (carry / "commit.json").write_text(json.dumps(summary["commit"]) + "\n")
    tree, carried = travelling_bytes(carry)
    summary["bytes"] = {"tree": tree, "carry": carried, "total": tree + carried, "limit": TRAVEL_LIMIT_BYTES}
    if tree + carried > TRAVEL_LIMIT_BYTES:
        raise CarryError(
            f"the tree ({tree / 2**20:.1f} MiB) and {carry.name} ({carried / 2**20:.1f} MiB) exceed the "
            "64 MiB that travels; remove large untracked files from the checkout"
        )
    if tree + carried > TRAVEL_WARN_BYTES:
        log(f"warning: {(tree + carried) / 2**20:.1f} MiB would travel, close to the 64 MiB limit")
    return summary


# -- install (there) ---------------------------------------------------------------
#: The libraries PyOpenGL opens with PYOPENGL_PLATFORM=egl (libglvnd's dispatchers).
GL_LOADERS = ("libEGL.so.1", "libOpenGL.so.0", "libGL.so.1")


def missing_gl_loaders() -> list[str]:
    """The :data:`GL_LOADERS` that the dynamic linker's cache does not list."""
    try:
        cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    except OSError:
        cache = ""
    return [lib for lib in GL_LOADERS if f"{lib} " not in cache]


def install(carry: Path, site: Path) -> dict:
    """Unpack and install what ``carry`` holds; synthssl itself is built from this checkout."""
    if not carry.is_dir():
        raise CarryError(f"{carry} is missing: run scripts/gpu_check.sh --prepare here and name it in carry")
    if f"{sys.version_info[0]}.{sys.version_info[1]}" != DEVICE_PYTHON:
        log(f"warning: Python {sys.version.split()[0]} here, the carried pybullet is for {DEVICE_PYTHON}")
    done: dict = {"site": str(site)}
    debs = sorted((carry / "debs").glob("*.deb"))
    lacking = missing_gl_loaders()
    done["gl_loaders_missing"] = lacking
    if lacking and debs and os.geteuid() == 0:
        for deb in debs:
            run(["dpkg", "-x", str(deb), "/"], f"dpkg -x {deb.name}")
        run(["ldconfig"], "ldconfig")
        done["debs"] = [d.name for d in debs]
    else:
        done["debs"] = []  # the system has the loaders (or this is no root): nothing is unpacked
    site.mkdir(parents=True, exist_ok=True)
    wheels = sorted(str(p) for p in (carry / "wheels").glob("*.whl"))
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
    pip += ["--no-cache-dir", "--disable-pip-version-check", "--upgrade", "--target", str(site)]
    run(pip + wheels, "pip install of the carried wheels")
    done["wheels"] = [Path(w).name for w in wheels]
    for tar_path in carry.glob("pybullet-*-cp312.tar.xz"):
        with tarfile.open(tar_path) as tar:
            tar.extractall(site, filter="data")
        done["pybullet"] = tar_path.name
    photos = carry / "photos" / "mate"
    if photos.is_dir() and not PHOTO_DIR.is_dir():
        shutil.copytree(photos, PHOTO_DIR)
        done["photos"] = str(PHOTO_DIR)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    run(pip + ["--no-build-isolation", str(REPO)], "pip install of synthssl from this checkout", env=env, cwd=REPO)
    done["synthssl"] = "built from this checkout"
    return done


# -- verify (both) -----------------------------------------------------------------
VERIFY_CODE = """
import importlib.metadata as md, json, os, sys
out = {"python": sys.version.split()[0], "executable": sys.executable, "versions": {}}
for name in ("torch", "torchvision", "numpy", "h5py", "opencv-python-headless", "scipy", "trimesh",
             "pyrender", "PyOpenGL", "pybullet", "timm", "synthssl"):
    try:
        out["versions"][name] = md.version(name)
    except md.PackageNotFoundError:
        out["versions"][name] = None
import synthssl.render.pipeline, synthssl.train.trainer  # noqa: F401  every import a run needs
from synthssl.render import physics
out["physics"] = physics.physics_available()
out["synthssl_from"] = os.path.dirname(synthssl.render.__file__)
print(json.dumps(out))
"""


def verify(site: Path | None) -> dict:
    """Import what the check needs in a fresh interpreter (with ``site`` first on the path)."""
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    res = run([sys.executable, "-c", VERIFY_CODE], "importing synthssl's render and train packages", env=env)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    pp = sub.add_parser("prepare", help="fill the carried folder (here, with the network)")
    pp.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    pp.add_argument("--python312", default=None, help="a CPython 3.12 to build pybullet with")
    pi = sub.add_parser("install", help="install the carried folder (on the GPU machine)")
    pi.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    pi.add_argument("--site", type=Path, required=True, help="folder the packages are installed into")
    pv = sub.add_parser("verify", help="import what the check needs and print the versions")
    pv.add_argument("--site", type=Path, default=None)
    args = p.parse_args(argv)
    try:
        if args.command == "prepare":
            out = prepare(args.dir.resolve(), args.python312)
        elif args.command == "install":
            out = install(args.dir.resolve(), args.site.resolve())
            out["verify"] = verify(args.site.resolve())
        else:
            out = verify(args.site.resolve() if args.site else None)
    except CarryError as exc:
        print(f"gpu_carry {args.command}: {exc}", file=sys.stderr)
        return 2 if args.command == "prepare" else 1
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
