"""The exercise checks of notebook 06: right answers (computed here another way) pass, wrong ones print "not yet"."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from crossflow_mini import registry
from crossflow_mini.checks import nb06
from crossflow_mini.core.baseline import BaselineModel, matched_baseline
from crossflow_mini.core.crossflow import CrossFlowModel
from crossflow_mini.profiles import get_profile
from crossflow_mini.results import results_path

SMOKE = get_profile("smoke")


@pytest.fixture(scope="module")
def baseline_net():
    torch.manual_seed(0)
    return BaselineModel(registry.recipe("t2i_baseline_shapes", SMOKE).model).velocity.eval()


def _by_einsum(net, z, t, tokens, mask):
    """Block 0's cross-attention weights per key, from its pre-hook inputs and einsum (not the check's code)."""
    seen = {}
    block = net.blocks[0]
    handle = block.cross_attn.register_forward_pre_hook(lambda mod, args: seen.update(args=args))
    with torch.no_grad():
        net(z, t, tokens, mask)
    handle.remove()
    x, context, keep = seen["args"]
    h = block.cross_attn.heads
    q = block.cross_attn.q(x).unflatten(-1, (h, -1))
    k = block.cross_attn.kv(context)[..., :x.shape[-1]].unflatten(-1, (h, -1))
    logits = torch.einsum("bphd,bkhd->bhpk", q, k) / q.shape[-1] ** 0.5
    logits = logits + torch.where(keep, 0.0, -1e9)[:, None, None, :]
    return logits.softmax(-1).mean(dim=(1, 2))


def test_exercise_1(baseline_net, capsys):
    cfg = baseline_net.cfg
    tokens, mask = torch.randn(2, 6, cfg.token_dim), torch.ones(2, 6, dtype=torch.bool)
    mask[1, 3:] = False
    z, t = torch.randn(2, *cfg.latent_shape), torch.full((2,), 0.5)
    right = _by_einsum(baseline_net, z, t, tokens, mask)
    assert torch.allclose(right.sum(-1), torch.ones(2)) and right[1, 4:].abs().max() < 1e-6  # padding gets none
    assert nb06.exercise_1(right, baseline_net, z, t, tokens, mask)
    wrong = torch.full_like(right, 1 / right.shape[-1])
    assert not nb06.exercise_1(wrong, baseline_net, z, t, tokens, mask)
    assert "not yet" in capsys.readouterr().out


def test_exercise_2(capsys):
    small = registry.recipe("t2i_shapes", SMOKE).model
    recon = dataclasses.replace(small, source=dataclasses.replace(small.source, enc_loss="text_recon"))
    template = registry.recipe("t2i_baseline_shapes", SMOKE).model
    model = CrossFlowModel(recon)
    n_cf = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_base = sum(p.numel() for p in BaselineModel(matched_baseline(model, template)).parameters() if p.requires_grad)
    assert nb06.exercise_2((n_cf, n_base), recon, template)
    with_tower = sum(p.numel() for p in CrossFlowModel(small).parameters() if p.requires_grad)
    assert with_tower != n_cf  # the image tower is gone, a reconstruction head came
    assert not nb06.exercise_2((with_tower, n_base), recon, template)
    assert not nb06.exercise_2((n_cf, n_base + 1), recon, template)
    assert "not yet" in capsys.readouterr().out


def test_exercise_3(capsys):
    raw = json.loads(results_path("t2i_scaling").read_text())["metrics"]
    width, depth = raw["sizes"][0]
    longest = str(max(raw["steps"]))
    right = {m: raw["runs"][f"{m}:{width}x{depth}"]["points"][longest]["w=1"]["overall"]
             for m in ("crossflow", "baseline")}
    assert nb06.exercise_3(right, width, depth, "w=1")
    shortest = str(min(raw["steps"]))
    early = {m: raw["runs"][f"{m}:{width}x{depth}"]["points"][shortest]["w=1"]["overall"] for m in right}
    assert early != right and not nb06.exercise_3(early, width, depth, "w=1")
    assert not nb06.exercise_3([0.1, 0.2], width, depth, "w=1")
    assert "not yet" in capsys.readouterr().out


def test_exercise_4(capsys):
    assert nb06.exercise_4({"w=1": 20, "cfg": 40}, 20)
    assert not nb06.exercise_4({"w=1": 20, "cfg": 20}, 20)
    assert "not yet" in capsys.readouterr().out
