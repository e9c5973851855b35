"""Per-step metrics: ``<run>/metrics.jsonl`` (one JSON object per logged step) + TensorBoard.

Each line: {"step": completed steps, "loss": ..., each loss term..., "lr": ...,
"images_per_s": ..., "photos_skipped": ..., "time": unix seconds}. On resume, lines
with step > the resumed step (written after the checkpoint by the interrupted run)
are dropped first, so the file reads like one uninterrupted run; a torn last line
(killed mid-write) is dropped too.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Optional

from synthssl.train.config import ConfigError
from synthssl.train.export import atomic_write_text

log = logging.getLogger("synthssl.train")


def resumable_lines(path: Path) -> list[str]:
    """The complete JSON lines of ``path``. A torn last line (the run was killed while writing
    it) is dropped with a warning; a damaged line elsewhere is a ConfigError naming it."""
    lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    for number, line in enumerate(lines, 1):
        try:
            json.loads(line)
        except json.JSONDecodeError as exc:
            if number < len(lines):
                raise ConfigError(
                    f"--resume: {path}: line {number} is not JSON ({exc}); repair or remove that line"
                ) from None
            log.warning("%s: dropped a torn last line (the run was stopped while writing it)", path)
            return lines[:-1]
    return lines


def _wandb_id(run_dir: Path) -> str:
    """A stable W&B run id for a run folder (kept in <run>/wandb_id so a copied folder keeps it)."""
    import uuid

    path = run_dir / "wandb_id"
    if not path.is_file():
        atomic_write_text(uuid.uuid4().hex[:16] + "\n", path)
    return path.read_text().strip()


class MetricsLogger:
    """Writes metrics.jsonl (and TensorBoard events); see the module docstring."""

    def __init__(
        self,
        run_dir: str | Path,
        tensorboard: bool,
        resume_step: Optional[int] = None,
        wandb_config: Optional[dict] = None,
    ):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            atomic_write_text("", self.path)
        elif self.path.exists():
            kept = [line for line in resumable_lines(self.path) if json.loads(line).get("step", 0) <= resume_step]
            atomic_write_text("".join(line + "\n" for line in kept), self.path)
        self._file = open(self.path, "a", encoding="utf-8")
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tb"))
        self.wandb = None
        if wandb_config is not None:  # W&B run id = the run folder's, so a --resume continues the same run
            import wandb

            self.wandb = wandb.init(
                project=wandb_config["log"]["wandb_project"],
                dir=str(run_dir),
                config=wandb_config,
                name=Path(run_dir).name,
                resume="allow",
                id=_wandb_id(Path(run_dir)),
            )

    def log(self, step: int, values: dict[str, float]) -> None:
        """Append one record for `step` (completed steps)."""
        record = {"step": int(step), **{k: float(v) for k, v in values.items()}, "time": time.time()}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(k if "/" in k else f"train/{k}", float(v), step)
        if self.wandb is not None:
            self.wandb.log({k if "/" in k else f"train/{k}": float(v) for k, v in values.items()}, step=step)

    def close(self) -> None:
        """Flush and close the files."""
        self._file.close()
        if self.writer is not None:
            self.writer.close()
        if self.wandb is not None:
            self.wandb.finish()
