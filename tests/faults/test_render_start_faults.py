"""A failed render start claims nothing; its mistakes and Ctrl-C are one line (issue 33).

Each test asserts what the user sees (exit status, the one line on stderr, no traceback) and
what is left in the output folder: nothing when the render wrote no shard, the finished
shards (and no temporary file) when it was interrupted after some.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.faults import child_pids, cmdline, one_line, start_cli, start_in_own_group, wait_for

from synthssl.dataset.validate import validate_directory

TINY = ("size=16", "shard_size=2", "seed=3", "physics.enabled=false", "--no-progress")


def _render(out, *extra: str, scenes: int = 4) -> list[str]:
    return [f"out={out}", f"scenes={scenes}", "workers=1", *TINY, *extra]


def _listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["preview", "{tmp}/missing", "--out", "{tmp}/sheet.png"],
            "render-scenes preview: {tmp}/missing: not a directory",
        ),
        (["preview", "{tmp}/empty", "--out", "{tmp}/sheet.png"], "render-scenes preview: {tmp}/empty: no shard-*.h5"),
        (
            ["preview", "{tmp}/empty", "--out", "{tmp}/file/sheet.png"],
            "render-scenes preview: cannot write {tmp}/file/sheet.png: Not a directory (ENOTDIR)",
        ),
        (["seed=-1", "out={tmp}/shards"], "render-scenes: seed: expected a whole number in 0..2**63-1, got -1"),
        (["objects.primitives=[teapot]", "out={tmp}/shards"], "render-scenes: objects.primitives: expected names"),
    ],
)
def test_mistakes_at_the_command_line_exit_2_with_one_line(tmp_path, args, expected):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("a file, not a folder")
    proc = start_cli("render.cli", *[a.format(tmp=tmp_path) for a in args])
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, stderr
    assert one_line(stderr).startswith(expected.format(tmp=tmp_path)), stderr
    assert len(stderr.strip().splitlines()) == 1 and stdout == ""
    assert not (tmp_path / "shards").exists() and not (tmp_path / "sheet.png").exists()


def test_a_preview_that_cannot_be_written_is_refused_before_rendering(tmp_path, capsys):
    from synthssl.render.cli import main

    (tmp_path / "file").write_text("a file, not a folder")
    out = tmp_path / "shards"
    assert main([*_render(out), "--preview", str(tmp_path / "file" / "sheet.png")]) == 2
    line = one_line(capsys.readouterr().err)
    assert line == f"render-scenes: cannot write {tmp_path / 'file' / 'sheet.png'}: Not a directory (ENOTDIR)"
    assert not out.exists()  # checked before the render, not after it
    assert main([*_render(out), "--preview", str(tmp_path)]) == 2
    assert one_line(capsys.readouterr().err) == f"render-scenes: cannot write {tmp_path}: Is a directory (EISDIR)"
    assert not out.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_preview_into_a_read_only_folder_is_refused_before_rendering(tmp_path, capsys):
    from synthssl.render.cli import main

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    out = tmp_path / "shards"
    try:
        assert main([*_render(out), "--preview", str(locked / "sheet.png")]) == 2
    finally:
        locked.chmod(0o755)
    line = one_line(capsys.readouterr().err)
    assert line == f"render-scenes: cannot write {locked / 'sheet.png'}: Permission denied (EACCES)"
    assert not out.exists()


def _photo_folder(folder: Path) -> Path:
    """One readable 48x64 photo (a uniform colour) and two files that are no images."""
    folder.mkdir()
    img = np.zeros((48, 64, 3), np.uint8)
    img[:] = (30, 200, 10)  # BGR
    assert cv2.imwrite(str(folder / "good.png"), img)
    (folder / "junk.jpg").write_text("not an image")
    (folder / "empty.png").write_bytes(b"")
    return folder


def test_a_photo_folder_with_no_decodable_photo_is_one_line_and_touches_nothing(tmp_path, capsys):
    from synthssl.render.cli import main

    photos = _photo_folder(tmp_path / "photos")
    (photos / "good.png").unlink()
    out = tmp_path / "shards"
    assert main(_render(out, f"appearance.photo_dir={photos}")) == 2
    line = one_line(capsys.readouterr().err)
    assert line == (
        f"render-scenes: appearance.photo_dir: none of the 2 image files under {photos} can be decoded "
        "(empty.png, junk.jpg); give a folder of readable jpg/png photos or set appearance.texture_weights.photo=0"
    )
    assert not out.exists()


def test_a_photo_whose_pixels_do_not_decode_is_replaced_by_the_next(tmp_path, caplog):
    from synthssl.render.textures import make_texture

    photos = tmp_path / "photos"
    photos.mkdir()
    img = np.zeros((48, 64, 3), np.uint8)
    img[:] = (30, 200, 10)
    assert cv2.imwrite(str(photos / "b.png"), img)
    (photos / "a.png").write_bytes((photos / "b.png").read_bytes()[:60])  # a valid header, then nothing
    assert cv2.haveImageReader(str(photos / "a.png")) and cv2.imread(str(photos / "a.png")) is None
    with caplog.at_level("WARNING", logger="synthssl.render"):
        textures = [make_texture("photo", np.random.default_rng(k), 8, str(photos)) for k in range(6)]
    assert all((t == (10, 200, 30)).all() for t in textures)  # RGB: every draw ends on b.png
    assert caplog.messages == [f"appearance.photo_dir: cannot decode {photos / 'a.png'}; using the next photo instead"]


@pytest.mark.gl
def test_an_undecodable_photo_is_skipped_and_listed_and_the_render_runs(tmp_path, capsys):
    from synthssl.render.cli import main

    photos = _photo_folder(tmp_path / "photos")
    out = tmp_path / "shards"
    assert main(_render(out, f"appearance.photo_dir={photos}", "appearance.texture_weights={photo: 1.0}")) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines() == [
        f"render-scenes: appearance.photo_dir: skipping 2 of 3 image files under {photos} that cannot be "
        "decoded: empty.png, junk.jpg"
    ]
    assert validate_directory(out, deep=True)["num_scenes"] == 4


@pytest.mark.gl
def test_a_render_that_fails_before_its_first_shard_claims_nothing(tmp_path, monkeypatch):
    from synthssl.render.cli import main
    from synthssl.render.config import load_config
    from synthssl.render.pipeline import render_dataset
    from synthssl.render.shard_worker import ShardWorker

    def broken(self, plan, on_scene=None):
        raise RuntimeError("the GL context was lost")

    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("the user's own file")
    new = tmp_path / "new" / "deeper" / "shards"
    monkeypatch.setattr(ShardWorker, "write", broken)
    for out in (kept, new):
        with pytest.raises(RuntimeError, match="GL context was lost"):
            render_dataset(load_config(None, _render(out)[:-1]), progress=False)
    assert _listing(kept) == ["notes.txt"]  # no identity.json, manifest, lock or temporary file
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()
    # the corrected command, even with another seed (another render identity), runs into the same folder
    assert main(_render(kept, "seed=4")) == 0
    assert validate_directory(kept)["num_scenes"] == 4 and (kept / "notes.txt").exists()


def _start_in_own_group(args: list[str]) -> subprocess.Popen:
    """``render-scenes ARGS`` as a terminal runs it: Ctrl-C reaches the group."""
    return start_in_own_group("render.cli", *args)


def _workers(pid: int) -> list[int]:
    return [p for p in child_pids(pid) if "spawn_main" in cmdline(p) and "resource_tracker" not in cmdline(p)]


def _stopped(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _ctrl_c(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        os.killpg(proc.pid, signal.SIGINT)  # the whole group, as Ctrl-C at a terminal
        return proc.communicate(timeout=60)  # a hang fails here
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.gl
@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.ddp)])
def test_ctrl_c_during_a_render_is_one_line_keeps_finished_shards_and_resume_completes(tmp_path, workers):
    out = tmp_path / "shards"
    args = [f"out={out}", "scenes=16", *TINY]
    proc = _start_in_own_group([*args, f"workers={workers}"])
    wait_for(lambda: (out / "shard-00000.h5").exists() or proc.poll() is not None, 240, "the first shard")
    pids = _workers(proc.pid)
    assert len(pids) == (0 if workers == 1 else 2)
    stdout, stderr = _ctrl_c(proc)
    assert proc.returncode == 130, stderr
    line = one_line(stderr)
    kept = sorted(p.name for p in out.glob("shard-*.h5"))
    assert line == (
        f"render-scenes: interrupted (Ctrl-C): {len(kept)} finished shard(s) in {out} are kept, no temporary "
        "file is left; run the same command with --resume to complete"
    )
    assert len(stderr.strip().splitlines()) == 1 and stdout == ""
    assert all(_stopped(pid) for pid in pids)
    assert not list(out.rglob("*.tmp-*"))
    assert validate_directory(out)["num_scenes"] == 2 * len(kept)  # the manifest lists what is kept

    from synthssl.render.cli import main

    assert main([*args, "workers=1", "--resume"]) == 0
    assert validate_directory(out, deep=True)["num_scenes"] == 16


@pytest.mark.gl
@pytest.mark.ddp
@pytest.mark.slow
def test_ctrl_c_while_the_workers_start_leaves_the_folder_as_found(tmp_path):
    out = tmp_path / "shards"
    proc = _start_in_own_group([f"out={out}", "scenes=16", "workers=2", *TINY])
    wait_for(lambda: len(_workers(proc.pid)) == 2 or proc.poll() is not None, 240, "two worker processes")
    workers = _workers(proc.pid)
    stdout, stderr = _ctrl_c(proc)  # the workers are still importing: they must not print a traceback
    assert proc.returncode == 130, stderr
    assert one_line(stderr) == (
        f"render-scenes: interrupted (Ctrl-C): no shard was finished; {out} is left as it was found; run the "
        "same command with --resume to complete"
    )
    assert len(stderr.strip().splitlines()) == 1 and stdout == ""
    assert all(_stopped(pid) for pid in workers)
    assert not out.exists()
