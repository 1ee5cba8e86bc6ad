"""Files that go bad: nothing lost, nothing silently wrong.

A truncated, empty or overwritten checkpoint, a broken ``config.json``, a damaged cache entry or training state:
each is detected and either refused with a message that names the file and the command that rebuilds it
(checkpoints, training states) or rebuilt with a warning (caches). The shipped files are never touched here: every
test damages copies in a temporary folder.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from crossflow_mini import checkpoints as ck
from crossflow_mini.__main__ import main
from crossflow_mini.training import STATE_FILE, TrainConfig, train
from crossflow_mini.utils import DamagedFileError, DamagedFileWarning


@dataclasses.dataclass(frozen=True)
class TinyCfg:
    width: int = 64
    train: TrainConfig = TrainConfig(steps=2)


def build(cfg: TinyCfg) -> torch.nn.Module:
    return torch.nn.Linear(cfg.width, 256)  # 64 KB of weights: room to overwrite 4 KB inside the tensor data


def _save(directory: Path, name: str = "tiny") -> Path:
    ck.save_checkpoint(directory / name, build(TinyCfg()).state_dict(), TinyCfg(), name=name, kind="Linear")
    return directory / name


def _data_start(blob: bytes) -> int:
    """Offset of the tensor data in a safetensors file (after the 8-byte length and the JSON header)."""
    return 8 + int.from_bytes(blob[:8], "little")


def damage(path: Path, how: str) -> None:
    """Damage a safetensors file in place: cut it in half, empty it, or overwrite 4 KB inside the tensor data."""
    blob = path.read_bytes()
    if how == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "overwritten":
        start = _data_start(blob) + (len(blob) - _data_start(blob)) // 4
        n = min(4096, len(blob) - start)
        noise = torch.randint(0, 256, (n,), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
        path.write_bytes(blob[:start] + bytes(noise.tolist()) + blob[start + n:])
    else:
        raise ValueError(how)
    assert path.read_bytes() != blob


# ------------------------------------------------------------------------------------------------ checkpoints
@pytest.mark.parametrize("how", ["truncated", "empty", "overwritten"])
def test_damaged_weights_are_refused_with_the_file_and_the_rebuild_command(tmp_path, how):
    directory = _save(tmp_path)
    damage(directory / ck.WEIGHTS_FILE, how)
    with pytest.raises(ck.CheckpointDamagedError) as err:
        ck.load_checkpoint(directory, TinyCfg())
    msg = str(err.value)
    assert str(directory / ck.WEIGHTS_FILE) in msg and "python -m crossflow_mini train tiny" in msg
    assert isinstance(err.value, ck.CheckpointError) and isinstance(err.value, DamagedFileError)


def test_overwritten_tensor_data_fails_the_checksum_not_silently_nan(tmp_path):
    directory = _save(tmp_path)
    damage(directory / ck.WEIGHTS_FILE, "overwritten")
    with pytest.raises(ck.CheckpointDamagedError, match="checksum"):
        ck.load_checkpoint(directory, TinyCfg())


@pytest.mark.parametrize("text", ["", "{\"name\": \"tiny\", \"kind\": ", "[]", "{\"name\": \"tiny\"}", "\x00\x00\x00"])
def test_damaged_config_json_is_refused_with_the_file_and_the_rebuild_command(tmp_path, text):
    directory = _save(tmp_path)
    (directory / ck.CONFIG_FILE).write_text(text)
    with pytest.raises(ck.CheckpointDamagedError) as err:
        ck.load_checkpoint(directory, TinyCfg())
    msg = str(err.value)
    assert str(directory / ck.CONFIG_FILE) in msg and "python -m crossflow_mini train tiny" in msg
    with pytest.raises(ck.CheckpointDamagedError):
        ck.read_meta(directory)


def test_weights_without_their_config_are_damaged_not_missing(tmp_path):
    directory = _save(tmp_path)
    (directory / ck.CONFIG_FILE).unlink()
    with pytest.raises(ck.CheckpointDamagedError, match="python -m crossflow_mini train tiny"):
        ck.load_checkpoint(directory, TinyCfg())


def test_load_or_train_refuses_a_damaged_shipped_checkpoint_and_rebuilds_a_damaged_cached_one(tmp_cache, tmp_path,
                                                                                               monkeypatch):
    calls = []

    def train_fn(cfg):
        calls.append(cfg)
        return build(cfg), {}

    monkeypatch.setattr(ck, "CHECKPOINT_DIR", tmp_path / "shipped")
    _save(tmp_path / "shipped", "unit_tiny")
    damage(tmp_path / "shipped" / "unit_tiny" / ck.WEIGHTS_FILE, "truncated")
    with pytest.raises(ck.CheckpointDamagedError, match="python -m crossflow_mini train unit_tiny"):
        ck.load_or_train("unit_tiny", TinyCfg(), build, train_fn)
    assert not calls  # a damaged shipped checkpoint is reported, never silently replaced

    shutil.rmtree(tmp_path / "shipped" / "unit_tiny")
    ck.load_or_train("unit_tiny", TinyCfg(), build, train_fn)  # trains once into the cache
    damage(ck.cached_dir("unit_tiny", TinyCfg()) / ck.WEIGHTS_FILE, "overwritten")
    with pytest.raises(ck.CheckpointDamagedError):  # a profile that may not train says so
        ck.load_or_train("unit_tiny", TinyCfg(), build, train_fn, allow_train=False)
    with pytest.warns(DamagedFileWarning, match="damaged"):
        ck.load_or_train("unit_tiny", TinyCfg(), build, train_fn)  # one that may: retrains, with a warning
    assert len(calls) == 2
    ck.load_checkpoint(ck.cached_dir("unit_tiny", TinyCfg()), TinyCfg())  # the cache entry is good again


def _shipped_copy(tmp_path: Path, monkeypatch, names: tuple[str, ...]) -> Path:
    """Copies of some shipped checkpoints in a temporary data/checkpoints (the real files stay untouched)."""
    root = tmp_path / "checkpoints"
    for name in names:
        shutil.copytree(ck.CHECKPOINT_DIR / name, root / name)
    monkeypatch.setattr(ck, "CHECKPOINT_DIR", root)
    return root


def test_list_reports_a_damaged_checkpoint_and_goes_on(tmp_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CROSSFLOW_PROFILE", "course")
    root = _shipped_copy(tmp_path, monkeypatch, ("judge_shapes", "classifier_fashion", "autoencoder_shapes"))
    damage(root / "classifier_fashion" / ck.WEIGHTS_FILE, "truncated")
    (root / "autoencoder_shapes" / ck.CONFIG_FILE).write_text("{\"name\": ")
    assert main(["list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()
             and not line.startswith(" ")}
    assert "shipped" in lines["judge_shapes"] and "damaged" not in lines["judge_shapes"]
    assert "damaged" in lines["classifier_fashion"] and "damaged" in lines["autoencoder_shapes"]
    assert "missing" in lines["t2i_shapes"] and "t2i_scaling" in lines  # the others are still listed


def test_list_names_the_damaged_file_and_the_command(tmp_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CROSSFLOW_PROFILE", "course")
    root = _shipped_copy(tmp_path, monkeypatch, ("judge_shapes",))
    damage(root / "judge_shapes" / ck.WEIGHTS_FILE, "overwritten")
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "damaged:" in out and str(root / "judge_shapes" / ck.WEIGHTS_FILE) in out
    assert "python -m crossflow_mini train judge_shapes" in out


def test_evaluate_with_a_damaged_checkpoint_prints_one_clear_error(tmp_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CROSSFLOW_PROFILE", "course")
    root = _shipped_copy(tmp_path, monkeypatch, ("judge_shapes",))
    damage(root / "judge_shapes" / ck.WEIGHTS_FILE, "empty")
    assert main(["evaluate", "judge_shapes"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "damaged" in err and "Traceback" not in err
    assert "python -m crossflow_mini train judge_shapes" in err


# ------------------------------------------------------------------------------------------------ caches
@pytest.mark.parametrize("how", ["truncated", "empty", "overwritten", "unchecked"])
def test_damaged_text_cache_is_rebuilt_with_a_warning(tmp_path, monkeypatch, how):
    from crossflow_mini.nn import text_encoder as te

    calls = []

    def fake_embed(self, captions):  # MiniLM stand-in: deterministic, and counts how often it runs
        calls.append(list(captions))
        g = torch.Generator().manual_seed(len(captions))
        return torch.randn(len(captions), 4, te.TOKEN_DIM, generator=g), torch.ones(len(captions), 4, dtype=torch.bool)

    monkeypatch.setattr(te.TextEncoder, "_embed", fake_embed)
    enc = te.TextEncoder(cache_root=tmp_path / "text")
    captions = [f"a red circle number {i}" for i in range(40)]
    first = enc.encode(captions)
    path = enc.cache_path(sorted(set(captions)))
    assert path.exists() and len(calls) == 1
    enc.encode(captions)
    assert len(calls) == 1  # a good cache entry is used
    if how == "unchecked":  # an entry written before cache files carried a checksum cannot be trusted either
        from safetensors.torch import load_file, save_file

        save_file(load_file(str(path)), str(path))
    else:
        damage(path, how)
    with pytest.warns(DamagedFileWarning, match=str(path.name)):
        again = enc.encode(captions)
    assert len(calls) == 2  # rebuilt, not used
    assert torch.equal(again.tokens, first.tokens) and torch.equal(again.mask, first.mask)
    enc.encode(captions)
    assert len(calls) == 2  # and the rebuilt entry is good


@pytest.mark.parametrize("how", ["truncated", "empty", "overwritten"])
def test_damaged_latent_cache_is_rebuilt_with_a_warning(tmp_cache, monkeypatch, how):
    from crossflow_mini import latents
    from crossflow_mini.nn.autoencoder import AutoencoderConfig, ImageAutoencoder

    ae = ImageAutoencoder(AutoencoderConfig(block_out_channels=(8, 8, 8), norm_num_groups=4)).eval()
    images = torch.rand(48, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    calls = []
    posterior = ae.posterior
    monkeypatch.setattr(ae, "posterior", lambda x: calls.append(len(x)) or posterior(x))
    first = latents.encode_images(ae, images)
    files = list((tmp_cache / "latents").glob("*.safetensors"))
    assert len(files) == 1 and len(calls) == 1
    damage(files[0], how)
    with pytest.warns(DamagedFileWarning, match=files[0].name):
        again = latents.encode_images(ae, images)
    assert len(calls) == 2
    assert torch.equal(again.mean, first.mean) and torch.equal(again.std, first.std)
    latents.encode_images(ae, images)
    assert len(calls) == 2


# ------------------------------------------------------------------------------------------------ training state
@pytest.mark.parametrize("how", ["truncated", "empty", "overwritten"])
def test_damaged_training_state_says_delete_the_run_folder_or_fresh(tmp_path, how):
    cfg = TrainConfig(steps=4, batch_size=4, lr=1e-2, warmup_steps=0, ema_decay=0.9, ckpt_every=2, log_every=1)
    x = torch.randn(16, 64, generator=torch.Generator().manual_seed(0))

    def loss_fn(model, idx):
        return model(x[idx]).pow(2).mean()

    def batches(step):
        return torch.arange(step % 4 * 4, step % 4 * 4 + 4)

    run = tmp_path / "run"
    train(build(TinyCfg()), loss_fn, batches, cfg, run_dir=run)
    train(build(TinyCfg()), loss_fn, batches, cfg, run_dir=run)  # a good state resumes (here: already done)
    damage(run / STATE_FILE, how)
    with pytest.raises(DamagedFileError) as err:
        train(build(TinyCfg()), loss_fn, batches, cfg, run_dir=run)
    msg = str(err.value)
    assert str(run) in msg and "--fresh" in msg


# ------------------------------------------------------------------------------------------------ bad profile
def test_bogus_profile_in_the_environment_gives_a_one_line_error_and_exit_2(monkeypatch, capsys):
    monkeypatch.setenv("CROSSFLOW_PROFILE", "bogus")
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: CROSSFLOW_PROFILE='bogus' is not a profile")
    assert "smoke, course, full" in err


def test_bogus_profile_in_a_notebook_says_what_to_do(monkeypatch):
    from crossflow_mini import course

    monkeypatch.setenv("CROSSFLOW_PROFILE", "bogus")
    with pytest.raises(ValueError, match="CROSSFLOW_PROFILE='bogus' is not a profile.*smoke, course, full"):
        course.start(seed=0, quiet=True)


# ------------------------------------------------------------------------------------------------ pipelines
@pytest.mark.parametrize("part, file, how", [("flow", ck.WEIGHTS_FILE, "truncated"),
                                             ("flow", ck.WEIGHTS_FILE, "overwritten"),
                                             ("autoencoder", ck.WEIGHTS_FILE, "empty"),
                                             ("flow", ck.CONFIG_FILE, "json")])
def test_from_pretrained_with_a_damaged_file_says_which_and_what_to_do(tmp_path, part, file, how):
    from crossflow_mini.nn.autoencoder import ImageAutoencoder
    from crossflow_mini.core.crossflow import CrossFlowModel
    from crossflow_mini.pipelines import CrossFlowPipeline
    from crossflow_mini.profiles import get_profile
    from crossflow_mini.registry import recipe as recipe_of

    recipe = recipe_of("t2i_shapes", get_profile("smoke"))
    CrossFlowPipeline(CrossFlowModel(recipe.model), ImageAutoencoder(recipe.autoencoder.model),
                      recipe).save_pretrained(tmp_path / "p")
    path = tmp_path / "p" / part / file
    if how == "json":
        path.write_text(path.read_text()[:100])
    else:
        damage(path, how)
    with pytest.raises(ck.CheckpointDamagedError) as err:
        CrossFlowPipeline.from_pretrained(tmp_path / "p")
    assert str(path) in str(err.value)
