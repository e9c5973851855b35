"""bench/bench_render.py: the per-process measurement (steady state summed over rounds, ratios of
the same rounds, the photo folders, the tree of another commit, the probe's protocol) and the
scaling benchmark's steady-state rate, which leaves the workers' start-up out."""

from __future__ import annotations

import os

import pytest
from bench_render import (
    REPO,
    TIME_STAGES,
    Arm,
    Probe,
    extract_tree,
    main,
    photo_folder_times,
    render_config,
    round_ratios,
    steady_rate,
    steady_summary,
)


def test_steady_rate_leaves_start_up_out():
    # one worker: 5 s start-up, then a 2-scene shard every second
    one = [(5.0 + i, 2) for i in range(1, 5)]
    assert steady_rate(one, 1) == pytest.approx(2.0)
    # two workers, the same per-worker speed, start-ups of 5 and 5.5 s: twice the rate, not less
    two = sorted([(5.0 + i, 2) for i in range(1, 5)] + [(5.5 + i, 2) for i in range(1, 5)])
    assert steady_rate(two, 2) / (2 * steady_rate(one, 1)) == pytest.approx(1.0)
    assert steady_rate(two[:2], 2) is None  # every shard finished in the first round: no steady state


def _round(scenes: int, cpu: float, stages: dict[str, float], imreads: int = 0, wall: float = 1.0) -> dict:
    return {"scenes": scenes, "cpu": cpu, "wall": wall, "stage_cpu": stages, "imreads": imreads}


def test_steady_summary_sums_rounds_and_keeps_time_stages_only():
    rounds = [
        _round(4, 0.5, {"build": 0.2, "physics": 0.1, "view_tries": 9.0}, imreads=2, wall=1.0),
        _round(4, 1.5, {"build": 0.6, "physics": 0.1, "view_tries": 11.0}, imreads=0, wall=3.0),
    ]
    s = steady_summary(rounds)
    assert s["pairs"] == 8
    assert s["pairs_per_cpu_second"] == 4.0
    assert s["cpu_ms_per_pair"] == 250.0
    assert s["pairs_per_second"] == 2.0
    assert s["photo_decodes_per_pair"] == 0.25
    assert s["per_round_pairs_per_cpu_second"] == [8.0, 2.667]
    assert s["stage_cpu_ms_per_pair"] == {"build": 100.0, "physics": 25.0}
    assert s["stage_pairs_per_cpu_second"] == {"build": 10.0, "physics": 40.0}


def test_round_ratios_compare_the_same_round():
    mine = [_round(4, 1.0, {}), _round(4, 2.0, {})]
    theirs = [_round(4, 3.0, {}), _round(4, 2.0, {})]
    assert round_ratios(mine, theirs) == [3.0, 1.0]


def test_photo_folder_times_links_every_photo_under_new_names(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.jpg").write_bytes(b"a")
    (src / "sub" / "b.PNG").write_bytes(b"b")
    (src / "notes.txt").write_text("not a photo")
    assert photo_folder_times(src, tmp_path / "x3", 3) == 6
    names = sorted(p.name for p in (tmp_path / "x3").iterdir())
    assert names == ["00-0000.jpg", "00-0001.png", "01-0000.jpg", "01-0001.png", "02-0000.jpg", "02-0001.png"]
    assert (tmp_path / "x3" / "02-0001.png").read_bytes() == b"b"


def test_against_an_unknown_revision_is_one_line_and_exit_2(capsys, monkeypatch):
    # main() points SYNTHSSL_CACHE_DIR and PYOPENGL_PLATFORM at its own choices; undone after this test
    monkeypatch.setenv("SYNTHSSL_CACHE_DIR", os.environ.get("SYNTHSSL_CACHE_DIR", ""))
    monkeypatch.setenv("PYOPENGL_PLATFORM", os.environ.get("PYOPENGL_PLATFORM", "egl"))
    with pytest.raises(SystemExit) as exc:
        main(["--against", "no-such-revision-xyz", "--photo-multiple", "1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench_render: --against: 'no-such-revision-xyz' is not a commit of")
    assert len(err.splitlines()) == 1


def test_extract_tree_writes_the_commits_files(tmp_path):
    commit = extract_tree("a247366", tmp_path / "tree")
    assert commit.startswith("a247366")
    assert (tmp_path / "tree" / "render" / "pipeline.py").is_file()
    assert not (tmp_path / "tree" / "core").exists()  # that release had no synthssl.core


@pytest.mark.gl
def test_probe_reports_start_up_and_a_measured_shard():
    cfg = render_config(32, None, "auto")
    cfg["appearance"] = {"texture_weights": {"noise": 1.0, "photo": 0.0}}
    probe = Probe(REPO, cfg, "1")
    try:
        assert probe.ready() > 0
        answer = probe.shard(1, 1, 2)
    finally:
        probe.close()
    assert probe.proc.returncode == 0
    assert answer["scenes"] == 2 and answer["imreads"] == 0
    assert answer["cpu"] > 0 and answer["wall"] > 0
    assert set(TIME_STAGES) <= set(answer["stage_cpu"])


def test_render_config_overrides_apply_to_nested_keys_as_yaml():
    cfg = render_config(64, "/photos", "egl", ["appearance.antialias=false", "camera.max_tries=2", "seed=5"])
    assert cfg["appearance"] == {"photo_dir": "/photos", "antialias": False}
    assert cfg["camera"] == {"max_tries": 2} and cfg["seed"] == 5 and cfg["size"] == 64
    with pytest.raises(ValueError, match="--set: expected key=value, got 'antialias'"):
        render_config(64, None, "egl", ["antialias"])


def test_set_current_changes_this_checkouts_arm_only():
    cfg = render_config(64, "/photos", "egl", ["seed=5"])
    mine = Arm("current", REPO, overrides=["physics.simulate=false", "appearance.antialias_by=edges"])
    theirs = Arm("a247366", None)
    assert mine.config(cfg)["physics"] == {"enabled": True, "simulate": False}
    assert mine.config(cfg)["appearance"] == {"photo_dir": "/photos", "antialias_by": "edges"}
    assert theirs.config(cfg) == cfg and cfg["physics"] == {"enabled": True}  # the shared config is untouched
    with pytest.raises(ValueError, match="--set-current: expected key=value, got 'simulate'"):
        Arm("current", REPO, overrides=["simulate"]).config(cfg)


def test_scaling_gets_its_own_size_and_backend_flags(monkeypatch):
    import bench_render

    seen = []
    monkeypatch.setattr(bench_render, "scaling_main", lambda argv: seen.append(argv))
    main(["--scaling", "--size", "64", "--backend", "egl", "--quick"])
    assert seen == [["--size", "64", "--backend", "egl", "--quick"]]
