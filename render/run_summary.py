"""What one render run did: `RunSummary`, printed as JSON by ``render-scenes``."""

from __future__ import annotations

from dataclasses import dataclass, field

from .shard_worker import ShardResult


@dataclass
class RunSummary:
    """What one `render_dataset` call did (printed as JSON by ``render-scenes``, `to_dict`)."""

    out: str
    scenes_rendered: int = 0
    shards_written: int = 0
    shards_skipped: int = 0
    shards_rerendered: int = 0
    """finished shards that failed verification on --resume and were rendered again."""
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    """summed over the scenes rendered; ``manifest``: the final merge."""
    mean_overlap: float | None = None
    """mean overlap of the scenes rendered in this run; None when none were rendered."""
    shards_done: list[tuple[float, int]] = field(default_factory=list)
    """(seconds since the rendering started, scenes) of each shard written, in finishing order
    (the benchmark's steady-state rate; not part of `to_dict`)."""

    @property
    def scenes_per_second(self) -> float:
        return self.scenes_rendered / self.seconds if self.seconds > 0 else 0.0

    def add_shard(self, result: ShardResult, elapsed: float) -> None:
        """Count the shard ``result`` finished ``elapsed`` seconds after the rendering started."""
        for k, v in result.stage_seconds.items():
            self.stage_seconds[k] = self.stage_seconds.get(k, 0.0) + v
        self.scenes_rendered += result.num_scenes
        self.shards_written += 1
        self.shards_done.append((elapsed, result.num_scenes))

    def to_dict(self) -> dict:
        return {
            "out": self.out,
            "scenes_rendered": self.scenes_rendered,
            "shards_written": self.shards_written,
            "shards_skipped": self.shards_skipped,
            "shards_rerendered": self.shards_rerendered,
            "seconds": round(self.seconds, 3),
            "scenes_per_second": round(self.scenes_per_second, 3),
            "mean_overlap": None if self.mean_overlap is None else round(self.mean_overlap, 4),
            "stage_seconds_per_scene": {
                k: round(v / max(self.scenes_rendered, 1), 5) for k, v in self.stage_seconds.items()
            },
        }


__all__ = ["RunSummary"]
