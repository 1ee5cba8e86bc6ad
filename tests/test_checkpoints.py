"""Checkpoints: safetensors round trip, refusal of a mismatched config, load_or_train keyed by the config hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings

import pytest
import torch

from crossflow_mini import checkpoints as ck
from crossflow_mini.nn.autoencoder import AutoencoderConfig
from crossflow_mini.training import TrainConfig
from crossflow_mini.configs import config_hash, from_dict, to_dict


@dataclasses.dataclass(frozen=True)
class TinyCfg:
    width: int = 3
    train: TrainConfig = TrainConfig(steps=2)


def build(cfg: TinyCfg) -> torch.nn.Module:
    return torch.nn.Linear(cfg.width, 2)


def test_round_trip(tmp_path):
    cfg = TinyCfg()
    m = build(cfg)
    ck.save_checkpoint(tmp_path / "tiny", m.state_dict(), cfg, name="tiny", kind="Linear", metrics={"acc": 0.5})
    state, meta = ck.load_checkpoint(tmp_path / "tiny", cfg, kind="Linear")
    m2 = build(cfg)
    m2.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))
    assert meta["metrics"] == {"acc": 0.5} and meta["config_hash"] == config_hash(cfg)
    assert meta["command"] == "python -m crossflow_mini train tiny"


def test_fp16_files_load_into_fp32(tmp_path):
    cfg = TinyCfg()
    m = build(cfg)
    ck.save_checkpoint(tmp_path / "t", m.state_dict(), cfg, name="t", kind="Linear", dtype=torch.float16)
    state, _ = ck.load_checkpoint(tmp_path / "t", cfg)
    assert state["weight"].dtype == torch.float16
    m2 = build(cfg)
    m2.load_state_dict(state)
    assert m2.weight.dtype == torch.float32
    assert torch.allclose(m2.weight, m.weight, atol=1e-3)


def test_mismatched_config_is_refused_with_the_rebuild_command(tmp_path):
    ck.save_checkpoint(tmp_path / "tiny", build(TinyCfg()).state_dict(), TinyCfg(), name="tiny", kind="Linear")
    with pytest.raises(ck.CheckpointMismatchError) as err:
        ck.load_checkpoint(tmp_path / "tiny", TinyCfg(width=4))
    msg = str(err.value)
    assert "width" in msg and "python -m crossflow_mini train tiny" in msg


def test_config_written_by_other_code_is_refused(tmp_path):
    ck.save_checkpoint(tmp_path / "tiny", build(TinyCfg()).state_dict(), TinyCfg(), name="tiny", kind="Linear")
    meta = json.loads((tmp_path / "tiny" / ck.CONFIG_FILE).read_text())
    meta["config"]["depth"] = 7  # a field this code does not know
    (tmp_path / "tiny" / ck.CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(ck.CheckpointMismatchError, match="unknown to the code|missing"):
        ck.load_checkpoint(tmp_path / "tiny", TinyCfg())


def test_weights_and_config_must_agree(tmp_path):
    ck.save_checkpoint(tmp_path / "a", build(TinyCfg()).state_dict(), TinyCfg(), name="a", kind="Linear")
    ck.save_checkpoint(tmp_path / "b", build(TinyCfg(width=5)).state_dict(), TinyCfg(width=5), name="b", kind="Linear")
    (tmp_path / "a" / ck.WEIGHTS_FILE).write_bytes((tmp_path / "b" / ck.WEIGHTS_FILE).read_bytes())
    with pytest.raises(ck.CheckpointMismatchError, match="disagree"):
        ck.load_checkpoint(tmp_path / "a", TinyCfg())


def test_wrong_kind_and_missing(tmp_path):
    ck.save_checkpoint(tmp_path / "x", build(TinyCfg()).state_dict(), TinyCfg(), name="x", kind="Linear")
    with pytest.raises(ck.CheckpointMismatchError, match="holds a 'Linear'"):
        ck.load_checkpoint(tmp_path / "x", TinyCfg(), kind="ImageAutoencoder")
    with pytest.raises(ck.CheckpointNotFoundError, match="python -m crossflow_mini train nope"):
        ck.load_checkpoint(tmp_path / "nope", TinyCfg())


def test_no_pickle_in_checkpoint_files(tmp_path):
    ck.save_checkpoint(tmp_path / "x", build(TinyCfg()).state_dict(), TinyCfg(), name="x", kind="Linear")
    blob = (tmp_path / "x" / ck.WEIGHTS_FILE).read_bytes()
    assert b"\x80\x04" not in blob[:16] and blob[8:9] == b"{"  # a safetensors JSON header, not a pickle


def test_load_or_train_trains_once_then_loads_by_hash(tmp_cache):
    calls = []

    def train(cfg):
        calls.append(cfg)
        m = build(cfg)
        torch.nn.init.constant_(m.weight, float(cfg.width))
        return m, {"trained": True}

    m1, meta1 = ck.load_or_train("unit_tiny", TinyCfg(), build, train)
    m2, meta2 = ck.load_or_train("unit_tiny", TinyCfg(), build, train)
    assert len(calls) == 1 and torch.equal(m1.weight, m2.weight) and meta2["metrics"] == {"trained": True}
    m3, _ = ck.load_or_train("unit_tiny", TinyCfg(width=4), build, train)  # another config -> another entry
    assert len(calls) == 2 and m3.weight.shape == (2, 4)
    with pytest.raises(ck.CheckpointNotFoundError, match="python -m crossflow_mini train unit_tiny"):
        ck.load_or_train("unit_tiny", TinyCfg(width=9), build, train, allow_train=False)


def test_config_dict_round_trip():
    cfg = AutoencoderConfig(block_out_channels=(8, 16, 16))
    assert from_dict(AutoencoderConfig, to_dict(cfg)) == cfg
    with pytest.raises(ValueError, match="no field"):
        from_dict(AutoencoderConfig, {**to_dict(cfg), "bogus": 1})
    assert config_hash(cfg) != config_hash(AutoencoderConfig())


def test_weights_checksum_is_stored_beside_the_config_not_in_its_hash(tmp_path):
    cfg = TinyCfg()
    ck.save_checkpoint(tmp_path / "x", build(cfg).state_dict(), cfg, name="x", kind="Linear")
    meta = json.loads((tmp_path / "x" / ck.CONFIG_FILE).read_text())
    assert meta[ck.CHECKSUM_KEY] == hashlib.sha256((tmp_path / "x" / ck.WEIGHTS_FILE).read_bytes()).hexdigest()
    assert ck.CHECKSUM_KEY not in meta["config"] and meta["config_hash"] == config_hash(cfg)
    ck.update_metrics(tmp_path / "x", {"acc": 1.0})  # rewriting the config keeps the checksum
    assert ck.read_meta(tmp_path / "x")[ck.CHECKSUM_KEY] == meta[ck.CHECKSUM_KEY]


def test_checkpoint_without_checksum_is_refused_naming_the_commands_until_its_checksum_is_recorded(tmp_path):
    cfg = TinyCfg()
    ck.save_checkpoint(tmp_path / "old", build(cfg).state_dict(), cfg, name="old", kind="Linear")
    meta = json.loads((tmp_path / "old" / ck.CONFIG_FILE).read_text())
    del meta[ck.CHECKSUM_KEY]  # edited, or saved before checksums existed
    (tmp_path / "old" / ck.CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(ck.UnverifiedCheckpointError,
                       match="python -m crossflow_mini train old.*python -m crossflow_mini trust"):
        ck.load_checkpoint(tmp_path / "old", cfg)
    ck.record_checksum(tmp_path / "old")  # what `python -m crossflow_mini trust FOLDER` does
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ck.load_checkpoint(tmp_path / "old", cfg)  # checked now, no warning


@pytest.mark.parametrize("name", sorted(p.name for p in ck.CHECKPOINT_DIR.iterdir() if p.is_dir()))
def test_every_shipped_checkpoint_carries_the_checksum_of_its_weights(name):
    meta = ck.read_meta(ck.CHECKPOINT_DIR / name)
    assert meta.get(ck.CHECKSUM_KEY), f"{name}: config.json has no {ck.CHECKSUM_KEY}"
    digest = hashlib.sha256((ck.CHECKPOINT_DIR / name / ck.WEIGHTS_FILE).read_bytes()).hexdigest()
    assert meta[ck.CHECKSUM_KEY] == digest, f"{name}: model.safetensors does not match its {ck.CHECKSUM_KEY}"
