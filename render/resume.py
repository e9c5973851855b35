"""What is finished and what to render: the shard plan, the output folder as found, and resume.

Shard k holds scenes [k*shard_size, min((k+1)*shard_size, scenes)) and sits at
`~synthssl.dataset.layout.shard_relpath` ``(k)``; a job renders the shards with
``k % num_shards == shard_index`` (`plan_shards`).

`prepare_folder` readies the output folder before anything is rendered: it removes the
temporary files of dead writers, sets an unreadable ``manifest.json`` aside (it is rebuilt
from the shards), checks every readable shard against this run's content config (an error
naming the file and the differing key), refuses a plan with fewer scenes than the folder
holds, and claims the folder for this render (`synthssl.render.identity`). It returns a
`~synthssl.render.identity.FolderClaim`: a render that fails before any shard is in the folder
releases it, leaving the folder as it was found.

`shards_to_render` decides per planned shard: a shard file whose header matches the plan
(first scene and scene count) is *finished*. With ``resume`` a finished shard is verified
(structure and its first and last scenes; every scene and its sidecar's checksum with
``deep``) and skipped, or rendered again when that fails, saying so; without ``resume`` every
planned shard is rendered (again, to identical arrays).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from synthssl.core.errors import OutputWriteError, write_failure
from synthssl.dataset.errors import ShardFormatError
from synthssl.dataset.layout import relpath, shard_relpath, shard_relpaths
from synthssl.dataset.manifest import (
    LOCK_NAME,
    MANIFEST_NAME,
    read_manifest,
    read_sidecar,
    sha256_file,
    stale_tmp_files,
)
from synthssl.dataset.reader import Shard
from synthssl.dataset.validate import validate_shard

from .config import RenderConfig
from .identity import FolderClaim, check_scene_count, claim_folder, identity_of, missing_folders, release_folder
from .provenance import Provenance, content_config

log = logging.getLogger("synthssl.render")


@dataclass(frozen=True)
class ShardPlan:
    """Shard ``index`` of a render: ``num_scenes`` scenes from scene id ``first_scene`` on, written
    to ``relpath`` in the output folder."""

    index: int
    first_scene: int
    num_scenes: int
    relpath: str

    @property
    def scenes(self) -> range:
        return range(self.first_scene, self.first_scene + self.num_scenes)

    def describe(self) -> str:
        """``shard-00003.h5 (scenes 12-15)``, for messages."""
        return f"{self.relpath} (scenes {self.first_scene}-{self.first_scene + self.num_scenes - 1})"


def plan_shards(cfg: RenderConfig) -> list[ShardPlan]:
    """The shards this job (``shard_index`` of ``num_shards``) is responsible for."""
    n, s = cfg.scenes, cfg.shard_size
    return [
        ShardPlan(k, k * s, min(s, n - k * s), shard_relpath(k))
        for k in range((n + s - 1) // s)
        if k % cfg.num_shards == cfg.shard_index
    ]


def check_same_content(shard: Shard, cfg: RenderConfig) -> None:
    """ShardFormatError naming the first differing key when ``shard`` was rendered with another content config."""
    theirs = shard.attrs.get("render_config")
    theirs = json.loads(theirs) if isinstance(theirs, str) else (theirs or {})
    mine, theirs = content_config(cfg.to_dict()), content_config(theirs)
    diff = sorted(
        k
        for k in set(mine) | set(theirs)
        if json.dumps(mine.get(k), sort_keys=True) != json.dumps(theirs.get(k), sort_keys=True)
    )
    if diff:
        raise ShardFormatError(
            shard.path,
            "render_config",
            f"rendered with a different '{diff[0]}' than this run; use another out=DIR (or delete the old shards)",
        )


def is_finished(path: Path, plan: ShardPlan, cfg: RenderConfig) -> bool:
    """True if ``path`` is a finished shard of ``plan``; False if absent or unreadable (it is rendered
    again, with a warning when unreadable); ShardFormatError if it holds another render's scenes."""
    if not path.exists():
        return False
    try:
        shard = Shard(path)
    except ShardFormatError as exc:
        log.warning("%s; rendering it again", exc)
        return False
    try:
        check_same_content(shard, cfg)
        a = shard.attrs
        return int(a.get("first_scene", -1)) == plan.first_scene and int(a.get("num_scenes", -1)) == plan.num_scenes
    finally:
        shard.close()


def folder_shards(out: Path, cfg: RenderConfig) -> dict[str, tuple[int, int]]:
    """{relpath: (first scene, scenes)} of the readable shards in ``out``, each checked against ``cfg``'s content."""
    found = {}
    for rel in shard_relpaths(out):
        try:
            shard = Shard(out / rel)
        except ShardFormatError:
            continue  # unreadable: rendered again when planned
        try:
            check_same_content(shard, cfg)
            found[rel] = (int(shard.attrs["first_scene"]), int(shard.attrs["num_scenes"]))
        finally:
            shard.close()
    return found


def verify_finished(path: Path, entry: dict | None, deep: bool) -> str | None:
    """Why the finished shard ``path`` cannot be kept, or None: its structure and first and last scenes
    (every scene, and the checksum its sidecar ``entry`` recorded, with ``deep``)."""
    try:
        summary = validate_shard(path, deep=deep)
        if not deep and summary["num_scenes"]:
            shard = Shard(path)
            try:
                shard.read_scene(0)
                shard.read_scene(summary["num_scenes"] - 1)
            finally:
                shard.close()
    except ShardFormatError as exc:
        return str(exc)
    if deep and entry is not None and entry.get("sha256") != sha256_file(path):
        return f"{path}: sha256: checksum differs from the manifest (file changed or corrupt)"
    return None


@dataclass
class ResumeCounts:
    """What `shards_to_render` found among this job's planned shards."""

    skipped: int = 0
    """finished shards kept (``resume`` only)."""
    rerendered: int = 0
    """finished shards that failed verification on ``resume`` and are rendered again."""


def shards_to_render(out: Path, cfg: RenderConfig, resume: bool, deep: bool) -> tuple[list[ShardPlan], ResumeCounts]:
    """This job's shards that are not finished, or fail verification on ``resume`` (module docstring)."""
    todo: list[ShardPlan] = []
    counts = ResumeCounts()
    for plan in plan_shards(cfg):
        path = out / plan.relpath
        if not (resume and is_finished(path, plan, cfg)):
            todo.append(plan)
            continue
        problem = verify_finished(path, read_sidecar(path), deep)
        if problem:
            log.warning("%s; rendering %s again", problem, plan.relpath)
            counts.rerendered += 1
            todo.append(plan)
        else:
            counts.skipped += 1
    return todo, counts


def remove_stale_tmp(out: Path, quiet: bool = False) -> None:
    """Remove the temporary files of writers that died in ``out`` (a full disk stays full otherwise).
    ``quiet``: no warning (after this run's own workers were stopped)."""
    stale = stale_tmp_files(out)
    for p in stale:
        p.unlink(missing_ok=True)
    if stale and not quiet:
        log.warning(
            "removed %d temporary file(s) left by dead processes: %s",
            len(stale),
            ", ".join(relpath(out, p) for p in stale),
        )


def set_aside_broken_manifest(out: Path) -> None:
    """Rename an unreadable manifest.json to ``manifest.json.broken-<time>``: it is rebuilt from the shards."""
    try:
        read_manifest(out)
    except ShardFormatError as exc:
        aside = out / f"{MANIFEST_NAME}.broken-{time.strftime('%Y%m%d-%H%M%S')}"
        (out / MANIFEST_NAME).rename(aside)
        log.warning("%s; kept as %s and rebuilt from the shards", exc.problem.split(";")[0], aside.name)


def prepare_folder(out: Path, cfg: RenderConfig, provenance: Provenance) -> FolderClaim:
    """Create ``out``, clean dead writers' leftovers and claim it for the render ``cfg`` (whose
    provenance is ``provenance``); see the module docstring. Returns what was created, for
    `~synthssl.render.identity.release_folder`; when this fails, the folders it created are removed."""
    created = missing_folders(out)
    had = frozenset(name for name in (MANIFEST_NAME, LOCK_NAME) if (out / name).exists())
    try:
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(out)
        set_aside_broken_manifest(out)
        check_scene_count(out, cfg, folder_shards(out, cfg))
        claimed = claim_folder(out, identity_of(cfg, provenance))
    except BaseException as exc:
        release_folder(FolderClaim(out, created, claimed=bool(created), had=had))
        if isinstance(exc, OSError):
            raise OutputWriteError(
                out, write_failure(exc, out.parent if not out.exists() else out), "write into the output folder"
            ) from None
        raise
    return FolderClaim(out, created, claimed, had)


__all__ = [
    "ShardPlan",
    "ResumeCounts",
    "plan_shards",
    "check_same_content",
    "is_finished",
    "folder_shards",
    "verify_finished",
    "shards_to_render",
    "remove_stale_tmp",
    "set_aside_broken_manifest",
    "prepare_folder",
]
