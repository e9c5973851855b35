"""Scene statistics of two render settings: do they render the same kind of scenes?

Renders scenes 0..N-1 with the current defaults and with ``--against`` overrides (by default the
settings of render version 2: pybullet settling and 4x MSAA) and prints one JSON object: per
setting the view overlap (mean, std), the share of pixels on objects (mean, std), objects per scene,
the share of scenes with a wall in view and the share of pixels of every category; and the
difference of the means with its standard error (a difference within about two standard errors is
noise).

    python bench/bench_scene_stats.py [--scenes 200] [--size 64] [--against KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

VERSION_2 = ["physics.simulate=true", "appearance.antialias_by=msaa"]


def scene_stats(scenes: int, size: int, overrides: list[str]) -> tuple[dict, dict[str, np.ndarray]]:
    """(the summary of scenes 0..``scenes``-1 rendered with ``overrides``: overlap, object-pixel share,
    objects per scene, walls in view, category pixel shares; the per-scene ``overlap`` and
    ``object_pixels`` arrays the differences are taken over)."""
    from synthssl.dataset.schema import FIRST_OBJECT_ID, WALL_ID
    from synthssl.render.api import SceneSource
    from synthssl.render.scene import SceneSampler

    with SceneSource(None, overrides=overrides, size=size) as source:
        rendered = [source.render(i) for i in range(scenes)]
        names = SceneSampler(source.config).category_names
    per_scene = {
        "overlap": np.array([float(r["overlap"].mean()) for r in rendered]),
        "object_pixels": np.array([float((r["instance"] >= FIRST_OBJECT_ID).mean()) for r in rendered]),
    }
    category = np.concatenate([r["category"].ravel() for r in rendered])
    share = np.bincount(category, minlength=len(names)) / category.size
    summary = {
        "overrides": overrides,
        **{k: {"mean": float(v.mean()), "std": float(v.std(ddof=1))} for k, v in per_scene.items()},
        "objects_per_scene": float(np.mean([int(r["object_count"]) for r in rendered])),
        "scenes_with_a_wall_in_view": float(np.mean([bool((r["instance"] == WALL_ID).any()) for r in rendered])),
        "category_pixel_share": {n: round(float(s), 4) for n, s in zip(names, share)},
    }
    return summary, per_scene


def mean_difference(a: np.ndarray, b: np.ndarray) -> dict:
    """mean(b) - mean(a) and its standard error (independent samples)."""
    return {
        "difference": round(float(b.mean() - a.mean()), 4),
        "standard_error": round(float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))), 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=200)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--against", nargs="*", default=VERSION_2, metavar="KEY=VALUE")
    args = p.parse_args()
    current, current_scenes = scene_stats(args.scenes, args.size, [])
    other, other_scenes = scene_stats(args.scenes, args.size, list(args.against))
    out = {"scenes": args.scenes, "size": args.size, "current": current, "against": other}
    out.update({k: mean_difference(other_scenes[k], current_scenes[k]) for k in current_scenes})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
