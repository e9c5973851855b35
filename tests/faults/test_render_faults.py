"""Render faults (issue 11): a killed worker, render identity, checksums, tmp files, full disk."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket

import pytest
from helpers.faults import child_pids, cmdline, corrupt_chunk, one_line, start_cli, wait_for

from synthssl.dataset.validate import validate_directory

TINY = ("size=16", "shard_size=4", "seed=3", "physics.enabled=false", "--no-progress")


@pytest.mark.gl
@pytest.mark.ddp
@pytest.mark.slow
def test_killed_worker_fails_fast_naming_it_and_resume_completes(tmp_path):
    out = tmp_path / "shards"
    # 16 shards of 4 scenes: when the first shard lands, the workers still have most of the render
    # to do, so the killed worker dies in the middle of a shard (with 4 shards it could be done).
    args = [f"out={out}", "scenes=64", *TINY]
    proc = start_cli("render.cli", *args, "workers=2")
    try:
        wait_for(lambda: (out / "shard-00000.h5").exists() or proc.poll() is not None, 240, "the first shard")
        workers = [
            p for p in child_pids(proc.pid) if "spawn_main" in cmdline(p) and "resource_tracker" not in cmdline(p)
        ]
        assert workers, "no worker processes found"
        os.kill(workers[0], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=30)  # a hang fails here
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr
    line = one_line(stderr)
    assert f"worker process {workers[0]} (killed by signal 9 (SIGKILL)) died while shard-" in line, line
    assert "--resume" in line and stdout == ""
    kept = sorted(p.name for p in out.glob("shard-*.h5"))
    assert kept and "shard-00000.h5" in kept and not list(out.glob("*.tmp-*"))
    assert validate_directory(out)["num_scenes"] == 4 * len(kept)  # the finished shards are intact

    from synthssl.render.cli import main

    assert main([*args, "workers=1", "--resume"]) == 0  # in-process, one worker: faster
    assert validate_directory(out, deep=True)["num_scenes"] == 64


def _render(out, *extra: str, scenes: int = 8) -> list[str]:
    return [f"out={out}", f"scenes={scenes}", "workers=1", *TINY, *extra]


@pytest.mark.slow
@pytest.mark.gl
@pytest.mark.ddp
def test_two_renders_with_different_seeds_started_together_do_not_mix(tmp_path):
    out = tmp_path / "shards"
    base = _render(out)
    procs = [start_cli("render.cli", *base, f"seed={seed}") for seed in (3, 4)]
    results = [(p.wait(timeout=240), p.communicate()[1]) for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    loser = next(err for rc, err in results if rc == 2)
    line = one_line(loser)
    assert "identity.json: seed: this folder holds a render with seed=" in line and "another out=DIR" in line, line
    winner_seed = 3 if results[0][0] == 0 else 4
    assert validate_directory(out, deep=True)["num_scenes"] == 8
    from synthssl.dataset.reader import Shard, ShardCollection

    assert {int(Shard(p).attrs["seed"]) for p in ShardCollection([out]).shard_paths} == {winner_seed}


@pytest.mark.gl
def test_resume_with_fewer_scenes_is_refused_and_drops_nothing(tmp_path, capsys):
    from synthssl.render.cli import main

    out = tmp_path / "shards"
    assert main(_render(out, scenes=6)) == 0
    capsys.readouterr()
    assert main(_render(out, "--resume", scenes=5)) == 2
    line = one_line(capsys.readouterr().err)
    assert "scenes=5: this folder already holds scenes up to 5" in line and "scenes=6 or more" in line, line
    assert validate_directory(out, deep=True)["num_scenes"] == 6


@pytest.mark.gl
def test_checksums_are_never_reblessed_and_resume_deep_rerenders_a_changed_shard(tmp_path, capsys):
    import h5py

    from synthssl.render.cli import main

    out = tmp_path / "shards"
    assert main(_render(out)) == 0
    with h5py.File(out / "shard-00001.h5", "r+") as f:
        f["rgb"][0, 0, 0, 0] = 255 - f["rgb"][0, 0, 0, 0]  # a changed pixel: --deep must notice
    assert main(["validate", str(out), "--deep"]) == 1
    assert main(_render(out, "--resume")) == 0  # structurally fine: kept, its recorded checksum untouched
    assert main(["validate", str(out), "--deep"]) == 1
    assert "shard-00001.h5: sha256: checksum differs" in capsys.readouterr().err
    assert main(_render(out, "--resume", "--deep")) == 0
    captured = capsys.readouterr()
    assert (
        "checksum differs from the manifest (file changed or corrupt); rendering shard-00001.h5 again" in captured.err
    )
    assert json.loads(captured.out.splitlines()[-1])["shards_rerendered"] == 1
    assert validate_directory(out, deep=True)["num_scenes"] == 8


@pytest.mark.gl
def test_dead_writers_tmp_files_are_listed_and_removed_by_the_next_run(tmp_path, capsys):
    from synthssl.render.cli import main

    out = tmp_path / "shards"
    assert main(_render(out, scenes=4)) == 0
    dead = out / f"shard-00001.h5.tmp-{socket.gethostname()}-{2**22 + 12345}"  # above pid_max: never alive
    foreign = out / "shard-00001.h5.tmp-other-node-17"
    for p in (dead, foreign):
        p.write_bytes(b"\0" * 4096)
    capsys.readouterr()
    assert main(["validate", str(out)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["tmp_files"] == sorted([dead.name, foreign.name])
    assert "2 temporary file(s)" in captured.err
    assert main(_render(out, "--resume", scenes=8)) == 0
    assert "removed 1 temporary file(s) left by dead processes" in capsys.readouterr().err
    assert not dead.exists() and foreign.exists()  # another host's writer may still be running
    assert validate_directory(out)["num_scenes"] == 8


@pytest.mark.gl
def test_a_full_disk_is_one_line_leaves_no_tmp_and_resume_completes(tmp_path, capsys, monkeypatch):
    from synthssl.dataset.writer import ShardWriter
    from synthssl.render.cli import main

    out = tmp_path / "shards"
    real = ShardWriter.append
    calls = []

    def full_disk(self, scene):
        calls.append(1)
        if len(calls) == 6:  # the second scene of the second shard
            raise OSError(errno.ENOSPC, "Can't write data (file write failed: errno = 28, error message = 'No space')")
        return real(self, scene)

    monkeypatch.setattr(ShardWriter, "append", full_disk)
    assert main(_render(out)) == 2
    line = one_line(capsys.readouterr().err)
    assert line == f"render-scenes: cannot write {out / 'shard-00001.h5'}: No space left on device (ENOSPC)", line
    assert sorted(p.name for p in out.iterdir()) == [
        ".manifest.lock",
        "identity.json",
        "manifest.json",
        "shard-00000.h5",
        "shard-00000.json",
    ]  # + its sidecar
    monkeypatch.setattr(ShardWriter, "append", real)
    assert main(_render(out, "--resume")) == 0
    assert validate_directory(out, deep=True)["num_scenes"] == 8


@pytest.mark.parametrize(
    "extra, expected",
    [
        (("views=1",), "views: expected >= 2"),
        (("objects.asset_dirs=[/nonexistent/meshes]",), "objects.asset_dirs: /nonexistent/meshes is not a folder"),
        (("camera.fov=[4e1, 6.5e1]", "views=0"), "views: expected >= 2"),
    ],
)
def test_render_mistakes_are_one_line_errors(tmp_path, capsys, extra, expected):
    from synthssl.render.cli import main

    assert main(_render(tmp_path / "shards", *extra)) == 2
    line = one_line(capsys.readouterr().err)
    assert expected in line, line


@pytest.mark.gl
def test_an_unwritable_output_folder_and_a_broken_manifest_are_one_line(tmp_path, capsys):
    from synthssl.render.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(_render(blocker / "shards")) == 2
    line = one_line(capsys.readouterr().err)
    assert f"cannot write into the output folder {blocker / 'shards'}: Not a directory (ENOTDIR)" in line, line

    out = tmp_path / "shards"
    assert main(_render(out, scenes=2)) == 0
    (out / "manifest.json").write_text("{ not json")
    capsys.readouterr()
    assert main(["validate", str(out)]) == 1
    line = one_line(capsys.readouterr().err)
    assert "manifest.json: not valid JSON" in line and "--fix-manifest" not in line and "--resume" in line, line
    assert main(_render(out, "--resume", scenes=2)) == 0  # as the message says: the manifest is rebuilt
    assert "kept as manifest.json.broken-" in capsys.readouterr().err
    assert validate_directory(out, deep=True)["num_scenes"] == 2


def test_a_junk_asset_file_is_skipped_with_a_message_about_the_file(tmp_path, caplog):
    from synthssl.render.assets import load_asset_mesh

    junk = tmp_path / "junk.obj"
    junk.write_bytes(bytes(range(256)) * 8)
    with caplog.at_level("WARNING", logger="synthssl.render"):
        assert load_asset_mesh(str(junk), 10000) is None
    assert f"skipping asset {junk}: " in caplog.text and "charset_normalizer" not in caplog.text, caplog.text


@pytest.mark.gl
def test_resume_rerenders_an_undecodable_shard_instead_of_keeping_it(tmp_path, capsys):
    from synthssl.render.cli import main

    out = tmp_path / "shards"
    assert main(_render(out)) == 0
    corrupt_chunk(out / "shard-00001.h5", "rgb", 3)  # its last scene
    capsys.readouterr()
    assert main(_render(out, "--resume")) == 0
    captured = capsys.readouterr()
    assert "dataset 'rgb': scene 3 (scene id 7) cannot be read" in captured.err
    assert "rendering shard-00001.h5 again" in captured.err
    summary = json.loads(captured.out.splitlines()[-1])
    assert summary["shards_rerendered"] == 1 and summary["shards_skipped"] == 1
    assert validate_directory(out, deep=True)["num_scenes"] == 8
