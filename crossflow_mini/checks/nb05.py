"""Checks for the exercises of notebook 05 (classifier-free guidance with an indicator; paper Sec. 4.2,
docs/METHOD.md Sec. 4).

Each check recomputes the expected value from the library or the model at run time, so it holds under every
profile.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from ..core import guidance
from ..tasks.t2i import evaluate as t2i_eval
from . import close, verdict


def exercise_1(at_zero: Mapping[str, float], model: Any, autoencoder: Any, judge: Any, data: Any,
               idx: np.ndarray) -> bool:
    """w = 0: the judge's colour and shape accuracy of the unconditional map, on the prompts ``idx`` of ``data``
    (seed 0, the model's default steps)."""
    expected = t2i_eval.judge_prompts(model, autoencoder, judge, data, idx, 0.0)
    try:
        got = [float(at_zero[k]) for k in ("colour", "shape")]
    except (KeyError, TypeError, ValueError):
        return verdict(False, "a result with 'colour' and 'shape'", "pass what t2i_eval.judge_prompts returns")
    ok = close(got, [expected["colour"], expected["shape"]], rtol=0, atol=1e-6)
    return verdict(ok, f"at w = 0: colour {expected['colour']:.3f}, shape {expected['shape']:.3f} "
                       f"({expected['n_prompts']} prompts)",
                   "judge the same prompts (idx) with guidance scale 0.0 and the default seed")


def own_target_share(z1: torch.Tensor, p_uncond: float, method: str, seeds: int) -> float:
    """Over ``seeds`` draws of the unconditional mask (seed s draws mask and swap), the share of unconditional
    samples whose swapped target is their own."""
    kept, marked = 0, 0
    for s in range(seeds):
        g = torch.Generator().manual_seed(s)
        mask = guidance.unconditional_mask(len(z1), p_uncond, generator=g)
        swapped, indicator = guidance.swap_targets(z1, mask, generator=g, method=method)
        rows = torch.nonzero(indicator == guidance.UNCONDITIONAL).flatten()
        kept += sum(bool(torch.equal(swapped[i], z1[i])) for i in rows)
        marked += len(rows)
    return kept / max(1, marked)


def exercise_3(share: float, z1: torch.Tensor, p_uncond: float, seeds: int) -> bool:
    """The swap method: the share of unconditional samples that keep their own target under ``swap="random"``."""
    expected = own_target_share(z1, p_uncond, "random", seeds)
    return verdict(close(share, expected, rtol=0, atol=1e-9),
                   f"with swap='random', {expected:.0%} of the unconditional samples keep their own target",
                   "draw the mask with unconditional_mask and swap with swap_targets(..., method='random'), seed s "
                   "for both, over the seeds; count the marked samples whose target equals their own")


__all__ = ["own_target_share", "exercise_1", "exercise_3"]
