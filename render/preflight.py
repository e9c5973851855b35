"""What a render checks before it touches its output folder or renders a scene.

A mistake found here costs a second and leaves nothing behind; found later, it would cost a
start-up of the GL workers, or a whole render. `check_before_render` checks:

* the output folder ``out``: a folder this process can write into, or one it can create
  (`synthssl.core.writable`): `OutputWriteError` naming it and the cause;
* the photo folder, when photo textures are drawn (``appearance.texture_weights.photo > 0``):
  undecodable files are skipped and listed in one warning, and a folder with no decodable
  photo is a `ConfigError` naming ``appearance.photo_dir`` (`synthssl.render.photos`).

The config itself (key names, types, ranges, seed, shape names) is checked when it is built
(`synthssl.render.config`); asset folders when the render's provenance is computed
(`synthssl.render.provenance`), also before the folder is touched. ``render-scenes`` checks its
``--preview`` target here too (`check_preview_target`), before rendering.
"""

from __future__ import annotations

import os

from synthssl.core.writable import check_writable_file, check_writable_folder

from .config import RenderConfig
from .photos import check_photo_dir


def check_before_render(cfg: RenderConfig) -> None:
    """The checks of the module docstring for the render ``cfg``; raises OutputWriteError or ConfigError."""
    if cfg.out:
        check_writable_folder(cfg.out)
    a = cfg.appearance
    if a.texture_weights.get("photo", 0) > 0 and a.photo_dir is not None:
        check_photo_dir(a.photo_dir)


def check_preview_target(path: str | os.PathLike) -> None:
    """OutputWriteError unless the contact sheet ``path`` can be written (checked before a render)."""
    check_writable_file(path)


__all__ = ["check_before_render", "check_preview_target"]
