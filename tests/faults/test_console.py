"""Console helpers (issue 11): only rank 0 prints; plain progress lines; umask modes."""

from __future__ import annotations

import io
import logging
import os
import stat

from synthssl.core.console import ProgressLine, format_eta, one_line, progress, publish_mode, setup_logging


def test_only_rank_0_prints_unless_all_ranks_are_asked_for():
    for rank, all_ranks, expected in [(0, False, "prog: hello\n"), (1, False, ""), (1, True, "prog: [rank 1] hello\n")]:
        stream = io.StringIO()
        setup_logging("prog", 0, rank, all_ranks, stream=stream)
        logging.getLogger("synthssl.train").info("hello")
        assert stream.getvalue() == expected
    stream = io.StringIO()
    setup_logging("prog", -1, 0, stream=stream)  # --quiet
    logging.getLogger("synthssl.render").info("progress")
    logging.getLogger("synthssl.render").warning("careful")
    assert stream.getvalue() == "prog: careful\n"
    setup_logging("test")


def test_progress_line_and_eta():
    line = ProgressLine(40, 10, unit="scene").line(20, "(shard-00001.h5 written)")
    assert line.startswith("scene 20/40  (shard-00001.h5 written)  ") and " scenes/s  ETA " in line
    assert " batches/s  ETA " in ProgressLine(40, unit="batch").line(20)
    assert format_eta(3725) == "1:02:05" and format_eta(float("inf")) == "?"


def test_one_line_takes_the_error_of_a_worker_traceback():
    exc = ValueError(
        "Caught ShardFormatError in DataLoader worker process 0.\nTraceback...\n  File x\n"
        "synthssl.dataset.errors.ShardFormatError: a.h5: dataset 'rgb': scene 2 cannot be read\n"
    )
    assert one_line(exc) == "a.h5: dataset 'rgb': scene 2 cannot be read"
    assert (
        one_line(ValueError("step 3: loss term 'loss' is nan; lower optim.lr"))
        == "step 3: loss term 'loss' is nan; lower optim.lr"
    )


def test_publish_mode_applies_the_umask(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"")
    os.chmod(path, 0o600)
    old = os.umask(0o027)
    try:
        publish_mode(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_progress_off_a_terminal_is_a_few_plain_lines_after_the_work():
    stream, seen = io.StringIO(), []
    for i in progress(range(25), "features x", stream=stream, min_interval=0.0):
        seen.append(i)
        assert stream.getvalue().count("\n") == (len(seen) - 1) // 3  # a line only after its items ran
    lines = stream.getvalue().splitlines()
    assert seen == list(range(25)) and "\r" not in stream.getvalue()
    assert len(lines) == 9 and lines[-1].startswith("features x: batch 25/25  ")  # every 3rd item, and the last
    quiet = io.StringIO()
    assert list(progress([1, 2], None, stream=quiet)) == [1, 2] and quiet.getvalue() == ""


def test_progress_off_a_terminal_prints_only_the_last_line_of_quick_work():
    stream = io.StringIO()
    assert list(progress(range(25), "scenes", unit="scene", stream=stream, min_interval=3600.0)) == list(range(25))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scenes: scene 25/25  ")
