"""How each anti-aliasing of the colour pass shapes object boundaries, and what it costs.

Renders the same scenes with ``appearance.antialias_by=msaa`` (4x multisampling), ``edges``
(`synthssl.render.edge_antialias`) and without anti-aliasing, and prints one JSON object: per
method, the colour steps across instance boundaries (absolute difference of the grey level of
two neighbouring boundary pixels, 0-255: mean, median, 90th percentile, share above 40), the mean
absolute difference from the MSAA image at boundary pixels, and the colour pass's CPU
milliseconds per view. A method shapes boundaries like MSAA when its steps are distributed like
MSAA's.

    python bench/bench_antialias.py [--scenes 24] [--size 128] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

METHODS = {
    "msaa": {"antialias": True, "antialias_by": "msaa"},
    "edges": {"antialias": True, "antialias_by": "edges"},
    "none": {"antialias": False},
}


def render_views(size: int, scenes: int, seed: int, appearance: dict) -> tuple[np.ndarray, np.ndarray, float]:
    """(rgb uint8 [V, H, W, 3], instance [V, H, W], colour-pass CPU ms per view) of ``scenes`` scenes."""
    from synthssl.render.api import SceneSource
    from synthssl.render.renderer import SceneRenderer

    spent = [0.0]
    original = SceneRenderer.render_color

    def timed(self, *args, **kwargs):
        t = time.process_time()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent[0] += time.process_time() - t

    SceneRenderer.render_color = timed
    try:
        with SceneSource(None, size=size, seed=seed, physics={"enabled": False}, appearance=appearance) as src:
            rendered = [src.render(i) for i in range(scenes)]
    finally:
        SceneRenderer.render_color = original
    rgb = np.concatenate([r["rgb"] for r in rendered])
    instance = np.concatenate([r["instance"] for r in rendered])
    return rgb, instance, 1000.0 * spent[0] / len(rgb)


def boundary_steps(rgb: np.ndarray, instance: np.ndarray) -> np.ndarray:
    """Grey-level steps between horizontally or vertically adjacent pixels that are both on an
    instance boundary (the contour map)."""
    from synthssl.dataset.contour import contour_from_instance

    edge = contour_from_instance(instance).astype(bool)
    grey = rgb.astype(np.float64).mean(axis=-1)
    across = np.abs(np.diff(grey, axis=2))[edge[:, :, 1:] & edge[:, :, :-1]]
    down = np.abs(np.diff(grey, axis=1))[edge[:, 1:] & edge[:, :-1]]
    return np.concatenate([across, down])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=24)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    from synthssl.dataset.contour import contour_from_instance

    views = {name: render_views(args.size, args.scenes, args.seed, a) for name, a in METHODS.items()}
    reference, instance, _ = views["msaa"]
    edge = contour_from_instance(instance).astype(bool)
    out = {"scenes": args.scenes, "views": int(len(reference)), "size": args.size, "boundary_share": float(edge.mean())}
    for name, (rgb, inst, ms) in views.items():
        if not np.array_equal(inst, instance):
            raise RuntimeError(f"{name}: the id pass differs from msaa's (the scenes should be the same)")
        steps = boundary_steps(rgb, inst)
        out[name] = {
            "step_mean": round(float(steps.mean()), 2),
            "step_median": round(float(np.median(steps)), 2),
            "step_p90": round(float(np.percentile(steps, 90)), 2),
            "step_share_above_40": round(float((steps > 40).mean()), 4),
            "abs_diff_from_msaa_at_boundaries": round(float(np.abs(rgb.astype(float) - reference)[edge].mean()), 2),
            "color_pass_cpu_ms_per_view": round(ms, 2),
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
