"""The command line and the checkpoint files protect a newcomer's work: no setting silently ignored, no shipped file
replaced by accident, a typo answered with the closest name, and repair hints that name what to run."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from crossflow_mini import checkpoints as ck
from crossflow_mini import registry
from crossflow_mini.cli import main
from crossflow_mini.core.build import build_model
from crossflow_mini.nn.autoencoder import ImageAutoencoder
from crossflow_mini.pipelines import CrossFlowPipeline
from crossflow_mini.profiles import get_profile

SMOKE = get_profile("smoke", device="cpu")


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_grad_accum_must_be_a_positive_integer(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "depth_crossflow", "--grad-accum", value])
    assert exit_.value.code == 2
    assert "--grad-accum" in capsys.readouterr().err


def test_reproduce_a_typo_lists_studies_and_checkpoints_with_the_closest(capsys, monkeypatch):
    monkeypatch.setenv("CROSSFLOW_PROFILE", "smoke")
    assert main(["reproduce", "captionng"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'captioning'" in err and "Studies: arithmetic, captioning" in err and "t2i_shapes" in err
    assert main(["reproduce", "nope"]) == 2
    assert "unknown study or checkpoint 'nope'" in capsys.readouterr().err
    assert main(["train", "t2i_shape"]) == 2
    assert "Did you mean 't2i_shapes'" in capsys.readouterr().err


def _saved_pipeline(tmp_path):
    r = registry.recipe("t2i_shapes", SMOKE)
    torch.manual_seed(0)
    pipe = CrossFlowPipeline(build_model(r.model), ImageAutoencoder(r.autoencoder.model), r, device="cpu")
    pipe.source = "t2i_shapes"
    return pipe.save_pretrained(tmp_path / "mine")


def test_a_damaged_part_of_a_saved_pipeline_says_how_to_save_it_again(tmp_path):
    folder = _saved_pipeline(tmp_path)
    weights = folder / "flow" / ck.WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ck.CheckpointDamagedError) as err:
        CrossFlowPipeline.from_pretrained(folder)
    message = str(err.value)
    assert "save it again with `CrossFlowPipeline.from_pretrained('t2i_shapes').save_pretrained(" in message
    assert "train flow" not in message  # "flow" is a part's folder, not a command


def test_a_damaged_cached_run_names_the_command_that_made_it(tmp_path):
    directory = tmp_path / "my_run-0123456789ab"
    ck.save_checkpoint(directory, {"w": torch.zeros(2)}, registry.recipe("judge_shapes", SMOKE), name="my_run",
                       kind="JudgeNet", command="python -m crossflow_mini train judge_shapes --set train.steps=3 "
                                                "--name my_run")
    (directory / ck.WEIGHTS_FILE).write_bytes(b"not safetensors")
    hint = ck.repair_hint("my_run", directory / ck.WEIGHTS_FILE)
    assert hint.endswith("`python -m crossflow_mini train judge_shapes --set train.steps=3 --name my_run`.")


def test_a_folder_without_a_checksum_does_not_load_until_trusted(tmp_path, capsys, monkeypatch):
    folder = _saved_pipeline(tmp_path)
    meta = json.loads((folder / "flow" / ck.CONFIG_FILE).read_text())
    del meta[ck.CHECKSUM_KEY]
    (folder / "flow" / ck.CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(ck.UnverifiedCheckpointError, match=r"cannot be checked.*python -m crossflow_mini trust"):
        CrossFlowPipeline.from_pretrained(folder)
    # flipped weights with the checksum removed are not loaded either
    assert main(["trust", str(folder / "flow")]) == 0
    assert "now loads" in capsys.readouterr().out
    CrossFlowPipeline.from_pretrained(folder)  # trusted: it loads, and is checked from now on
    weights = folder / "flow" / ck.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ck.CheckpointDamagedError, match="fails its checksum"):
        CrossFlowPipeline.from_pretrained(folder)


def test_a_shipped_checkpoint_is_never_replaced_without_overwrite(tmp_path, monkeypatch, capsys):
    """``train NAME`` on the course profile writes the cache, says how to ship, and leaves data/checkpoints alone;
    ``promote`` then ships exactly that file."""
    shipped = tmp_path / "shipped"
    shutil.copytree(ck.shipped_dir("judge_shapes"), shipped / "judge_shapes")
    monkeypatch.setattr(ck, "CHECKPOINT_DIR", shipped)
    monkeypatch.setenv("CROSSFLOW_CACHE", str(tmp_path / "cache"))
    before = (shipped / "judge_shapes" / ck.WEIGHTS_FILE).read_bytes()
    course = get_profile("course", device="cpu", overrides={"recipes": {"judge_shapes": {
        "train.steps": 2, "train.batch_size": 8, "shapes.n_train": 64, "shapes.n_val": 16, "shapes.n_test": 32,
        "model.width": 8, "model.dilations": (1,)}}})
    out, _ = registry.train_and_save("judge_shapes", course)
    assert str(out).startswith(str(tmp_path / "cache"))
    assert (shipped / "judge_shapes" / ck.WEIGHTS_FILE).read_bytes() == before
    monkeypatch.setattr("crossflow_mini.results.RESULTS_DIR", tmp_path / "results")
    (tmp_path / "results").mkdir()
    target = registry.promote("judge_shapes", course)
    assert (target / ck.WEIGHTS_FILE).read_bytes() == (out / ck.WEIGHTS_FILE).read_bytes() != before
    assert json.loads((tmp_path / "results" / "judge_shapes.json").read_text())["metrics"]["test"]
