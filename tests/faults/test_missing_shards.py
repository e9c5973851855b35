"""Missing and unlisted shards are never silent (issue 33).

A shard its folder's manifest lists that is gone stops the read with one line naming it and
``render-scenes --resume``; only ``allow_missing`` (train-ssl: ``data.allow_missing_shards``)
reads the rest, and then the skipped scenes are counted and named. Shard files the manifest
does not list are read and named in one warning (docs/shard-format.md).
"""

from __future__ import annotations

import json
import shutil

import pytest
from helpers.faults import one_line, train_args

from synthssl.dataset.errors import ShardFormatError
from synthssl.dataset.reader import ShardCollection


@pytest.fixture
def folder(tiny_shards, tmp_path):
    """A copy of the fault suite's 12 analytic scenes in 3 shards of 4, with their manifest."""
    return shutil.copytree(tiny_shards, tmp_path / "shards")


def test_a_listed_shard_that_is_gone_is_refused_unless_allowed(folder, caplog):
    (folder / "shard-00001.h5").unlink()
    with pytest.raises(ShardFormatError) as refused:
        ShardCollection([folder])
    message = str(refused.value)
    assert message.startswith(f"{folder / 'shard-00001.h5'}: listed in manifest.json (4 scenes) but missing;"), message
    assert "render-scenes command plus --resume" in message and "allow_missing" in message
    assert "\n" not in message

    with caplog.at_level("WARNING", logger="synthssl.dataset"):
        rest = ShardCollection([folder], allow_missing=True)
    assert len(rest) == 8 and rest.skipped_scenes == 4
    assert rest.missing_shards == [folder / "shard-00001.h5"] and rest.unlisted_shards == []
    assert sorted(rest.scene_ids.tolist()) == [0, 1, 2, 3, 8, 9, 10, 11]
    assert caplog.messages == [
        f"{folder}: skipping 4 scenes of 1 shard(s) listed in manifest.json but missing (shard-00001.h5; "
        "allow_missing); render them again with the same render-scenes command plus --resume"
    ]
    # one .h5 file given alone stands for itself: the rest of its folder's manifest is not asked for
    assert len(ShardCollection([folder / "shard-00002.h5"])) == 4


def test_shards_the_manifest_does_not_list_are_read_and_named(folder, caplog):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["shards"] = [e for e in manifest["shards"] if e["file"] != "shard-00002.h5"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level("WARNING", logger="synthssl.dataset"):
        coll = ShardCollection([folder])
    assert len(coll) == 12 and coll.unlisted_shards == [folder / "shard-00002.h5"] and coll.skipped_scenes == 0
    assert caplog.messages == [
        f"{folder}: 1 shard file(s) not listed in its manifest.json (shard-00002.h5); read from their own "
        f"records; list them with render-scenes index {folder}"
    ]


def test_a_merge_after_a_deletion_says_what_it_dropped(folder, caplog):
    from synthssl.dataset.manifest import index_folder

    (folder / "shard-00000.h5").unlink()
    with caplog.at_level("WARNING", logger="synthssl.dataset"):
        manifest = index_folder(folder)
    assert manifest["num_scenes"] == 8 and [e["file"] for e in manifest["shards"]] == [
        "shard-00001.h5",
        "shard-00002.h5",
    ]
    assert caplog.messages == [
        f"{folder}: 1 shard(s) listed in manifest.json are gone (shard-00000.h5); the merged manifest.json no "
        "longer lists them (render them again with the same render-scenes command plus --resume)"
    ]


@pytest.mark.gl
@pytest.mark.slow
def test_a_deleted_rendered_shard_stops_validate_the_reader_and_train_ssl(tmp_path, capsys):
    """As a user meets it: render 8 scenes in 4 shards, index, delete one."""
    from synthssl.render.cli import main as render_scenes
    from synthssl.train.cli import main as train_ssl

    out = tmp_path / "shards"
    render = [f"out={out}", "scenes=8", "shard_size=2", "size=32", "seed=5", "physics.enabled=false", "--no-progress"]
    assert render_scenes(render) == 0
    assert render_scenes(["index", str(out)]) == 0
    capsys.readouterr()
    (out / "shard-00002.h5").unlink()

    assert render_scenes(["validate", str(out)]) == 1
    line = one_line(capsys.readouterr().err)
    assert line == f"render-scenes validate: INVALID: {out / 'shard-00002.h5'}: listed in the manifest but missing"

    with pytest.raises(ShardFormatError, match=r"shard-00002\.h5: listed in manifest\.json \(2 scenes\) but missing"):
        ShardCollection([out])
    rest = ShardCollection([out], allow_missing=True)
    assert len(rest) == 6 and rest.skipped_scenes == 2 and sorted(rest.scene_ids.tolist()) == [0, 1, 2, 3, 6, 7]

    run = tmp_path / "run"
    args = train_args(out, run, **{"train.steps": 2})
    assert train_ssl(args) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("train-ssl: ") and f"data.shards: {out / 'shard-00002.h5'}: listed in manifest.json" in line
    assert "--resume" in line and "data.allow_missing_shards=true" in line
    assert not (run / "checkpoint.pt").exists()

    assert train_ssl([*args, "data.allow_missing_shards=true"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"{out}: skipping 2 scenes of 1 shard(s) listed in manifest.json but missing (shard-00002.h5;" in err

    assert render_scenes([*render, "--resume"]) == 0  # the repair the messages name
    assert len(ShardCollection([out])) == 8
    assert render_scenes(["validate", str(out)]) == 0
