"""The training-dynamics study (SR, depth): a row is trained once, scored at every snapshot with both the EMA and the
raw weights and at the end with every Euler step count, and cached so a rerun reads it back."""

from __future__ import annotations

import dataclasses

import pytest

from crossflow_mini.eval.sr import psnr_ssim
from crossflow_mini import registry
from crossflow_mini.profiles import get_profile
from crossflow_mini.studies import dynamics
from crossflow_mini.studies.configs import SR_LEVERS, SR_MEASURED
from crossflow_mini.tasks.sr.data import prepare


@pytest.fixture(scope="module")
def smoke():
    return get_profile("smoke", device="cpu")


def test_an_sr_row_is_scored_at_every_snapshot_and_read_back(tmp_cache, smoke):
    # the smoke recipe's source adds a little noise; the shipped one (and this row) starts from the upsampling alone
    cfg = dataclasses.replace(smoke.sr_dynamics, rows=(("identity_start", "sr_crossflow", (
        ("model.velocity.zero_out", True), ("model.source.noise_std", 0.0))),))
    row = dynamics.run_row("identity_start", cfg, smoke)
    assert sorted(row["curve"], key=int) == [str(s) for s in cfg.snapshots]
    for point in row["curve"].values():
        assert set(point) == {"ema", "raw"} and set(point["ema"]) == {"psnr", "ssim"}
    assert set(row["final_steps"]) == {f"steps={k}" for k in cfg.final_steps}
    # an identity start: before training the flow returns its source, so it scores exactly as bicubic
    val = prepare(registry.recipe("sr_crossflow", smoke), "val", cfg.val_items)
    assert row["curve"]["0"]["ema"]["psnr"] == round(psnr_ssim(val.upsampled, val.hr)["psnr"], 4)
    assert dynamics.run_row("identity_start", cfg, smoke) == row  # cached: read back, not trained again


def test_the_shipped_start_is_not_an_identity(tmp_cache, smoke):
    levers = {r[0]: r for r in SR_LEVERS}
    shipped = dynamics.row_recipe(levers["shipped"], smoke)
    identity = dynamics.row_recipe(levers["identity_start"], smoke)
    assert not shipped.model.velocity.zero_out and identity.model.velocity.zero_out


def test_an_unknown_row_is_named_with_the_known_ones(smoke):
    with pytest.raises(KeyError, match="unknown row 'nope'; rows: identity_start"):
        dynamics.run_row("nope", smoke.sr_dynamics, smoke)


def test_the_measured_rows_are_levers_of_the_list():
    assert set(SR_MEASURED) <= {r[0] for r in SR_LEVERS}
    assert [r[0] for r in get_profile("full", device="cpu").sr_dynamics.rows] == [
        r[0] for r in SR_LEVERS if r[0] in SR_MEASURED]
