"""Checks for notebook 06 (CrossFlow against standard flow matching). Each expected value is computed here from the
library or the stored results, never pasted (see :mod:`crossflow_mini.checks`)."""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from .. import report
from ..core.baseline import BaselineConfig, BaselineModel, matched_baseline
from ..core.crossflow import CrossFlowConfig, CrossFlowModel
from ..core.params import count_parameters
from . import close, verdict


def attention_by_key(net: torch.nn.Module, z: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor,
                     mask: torch.Tensor, block: int = 0) -> torch.Tensor:
    """The cross-attention weights of ``net.blocks[block]`` on each key (null token first, then the caption's
    tokens), averaged over heads and latent patches: ``(B, 1 + L)``, each row summing to 1 (Sec. 1 of the
    notebook; docs/METHOD.md Sec. 3, the baseline)."""
    seen: dict[str, Any] = {}
    attn = net.blocks[block].cross_attn
    hook = attn.register_forward_hook(lambda mod, args, out: seen.update(args=args))
    try:
        with torch.no_grad():
            net(z, t, tokens, mask)
    finally:
        hook.remove()
    x, context, keep = seen["args"]
    heads = attn.heads
    d = x.shape[-1] // heads
    q = attn.q(x).reshape(x.shape[0], -1, heads, d).transpose(1, 2)
    k = attn.kv(context).chunk(2, dim=-1)[0].reshape(x.shape[0], -1, heads, d).transpose(1, 2)
    scores = (q @ k.transpose(-1, -2) / math.sqrt(d)).masked_fill(~keep[:, None, None, :], float("-inf"))
    return torch.softmax(scores, dim=-1).mean(dim=(1, 2))


def exercise_1(answer: Any, net: torch.nn.Module, z: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor,
               mask: torch.Tensor) -> bool:
    """``answer``: block 0's attention weight on each key (null, then the tokens), averaged over heads and
    patches, for the captions ``tokens``/``mask`` at latent ``z`` and time ``t``."""
    expected = attention_by_key(net, z, t, tokens, mask)
    ok = close(answer, expected, rtol=1e-3, atol=1e-5)
    return verdict(ok, "block 0's cross-attention weight per key, averaged over heads and patches",
                   "record the hook's inputs (x, context, key mask), recompute softmax(q k^T / sqrt(d)) with the "
                   "masked keys at -inf, and average over heads and patches (one row per caption, null key first)")


def exercise_2(answer: Any, crossflow: CrossFlowConfig, baseline_template: BaselineConfig) -> bool:
    """``answer``: ``(CrossFlow's trainable parameters, the matched baseline's)`` for ``crossflow`` (the smallest
    size, ``enc_loss="text_recon"``) and a baseline matched to it from ``baseline_template``."""
    model = CrossFlowModel(crossflow)
    matched = BaselineModel(matched_baseline(model, baseline_template))
    expected = (count_parameters(model), count_parameters(matched))
    ok = close(answer, expected, rtol=0, atol=0.5)
    return verdict(ok, f"CrossFlow {expected[0]:,} vs matched baseline {expected[1]:,} parameters",
                   "count with count_parameters after building CrossFlowModel(config), and match the baseline with "
                   "matched_baseline(crossflow_model, template)")


def exercise_3(answer: Mapping[str, float], width: int, depth: int, scale_key: str) -> bool:
    """``answer``: method -> the stored scaling study's mini-GenEval overall at its longest length, for the size
    ``width`` x ``depth`` at guidance ``scale_key`` (e.g. ``"w=1"``)."""
    study = report.load("t2i_scaling")
    longest = max(study.at("steps"))
    expected = {m: study.at("runs", f"{m}:{width}x{depth}", "points", longest, scale_key, "overall")
                for m in ("crossflow", "baseline")}
    ok = isinstance(answer, Mapping) and set(answer) == set(expected) and all(
        close(answer[m], expected[m]) for m in expected)
    return verdict(ok, f"the stored points at {longest} steps, {width}x{depth}, {scale_key}",
                   "read them with report.load('t2i_scaling').at('runs', f'{method}:{size}', 'points', step, "
                   "w_key, 'overall') for both methods")


def exercise_4(answer: Mapping[str, int], steps: int) -> bool:
    """``answer``: network evaluations per image of an Euler sampler with ``steps`` steps, ``{"w=1": ...,
    "cfg": ...}`` (w = 1 needs the conditional velocity only; w other than 0 and 1 both branches, Sec. 4.2)."""
    expected = {"w=1": steps, "cfg": 2 * steps}
    ok = dict(answer) == expected if isinstance(answer, Mapping) else False
    return verdict(ok, f"{steps} network evaluations per image at w = 1, {2 * steps} with guidance",
                   "with guidance every step evaluates the conditional and the unconditional velocity")


__all__ = ["attention_by_key", "exercise_1", "exercise_2", "exercise_3", "exercise_4"]
