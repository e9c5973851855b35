"""Which pip extra a command needs, and a one-line exit when it is not installed.

A plain ``pip install synthssl`` holds the shard format only (this package: NumPy, h5py,
PyYAML); rendering needs ``synthssl[render]``, training, evaluation and prediction
``synthssl[train]`` (``synthssl[all]`` is both). A command calls :func:`require_extra`
before its first import of an extra's module, so a missing extra is one line naming what
to install (exit 2), not an ImportError traceback from deep inside a library.

:data:`EXTRA_MODULES` lists the import name of every required distribution of each extra
in pyproject.toml's ``[project.optional-dependencies]`` (tests/test_packaging.py checks
that the two agree). Optional ones (pybullet: physics is used whenever it imports) are
not required here.
"""

from __future__ import annotations

import importlib.util
import sys

#: extra -> the modules its commands import (one per required distribution of the extra).
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "render": ("trimesh", "pyrender", "cv2", "scipy", "tqdm"),
    "train": ("torch", "torchvision", "tensorboard", "timm", "cv2", "scipy", "tqdm"),
}


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` (a key of :data:`EXTRA_MODULES`) that cannot be imported here."""
    return [m for m in EXTRA_MODULES[extra] if importlib.util.find_spec(m) is None]


def require_extra(extra: str, command: str) -> None:
    """Return when ``extra``'s modules are installed; else print one line naming the extra to
    install and exit 2 (SystemExit). ``command`` names the command in the message."""
    missing = missing_modules(extra)
    if missing:
        print(
            f"{command}: needs the synthssl[{extra}] extra, which is not installed here (missing: "
            f"{', '.join(missing)}); install it with: pip install 'synthssl[{extra}]'",
            file=sys.stderr,
        )
        raise SystemExit(2)


__all__ = ["EXTRA_MODULES", "missing_modules", "require_extra"]
