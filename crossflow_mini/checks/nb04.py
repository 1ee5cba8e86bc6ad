"""Checks for the exercises of notebook 04 (CrossFlow text to image; paper Sec. 4 and Fig. 2, docs/METHOD.md
Sec. 2-3).

Each check recomputes the expected value from the library or the model at run time, so it holds under every
profile.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..datasets import shapes as sw
from ..tasks.t2i import evaluate as t2i_eval
from . import close, verdict


def exercise_1(decoded: torch.Tensor, pipe: Any, prompts: Sequence[str]) -> bool:
    """The text latent as a picture: the Text VE's mean for each prompt, decoded as if it were an image latent."""
    with torch.no_grad():
        expected = pipe.decode(pipe.encode_text(list(prompts), sample=False)).cpu()
    return verdict(close(torch.as_tensor(decoded).cpu(), expected, rtol=1e-4, atol=1e-4),
                   f"{len(prompts)} text latents decoded, no flow",
                   "encode_text(..., sample=False) gives the mean; pipe.decode turns latents into images in [-1, 1]")


def exercise_3(z_mixed: torch.Tensor, z_t: torch.Tensor, z0: torch.Tensor, z0_other: torch.Tensor, t: float,
               sigma_min: float) -> bool:
    """Where does the shape get decided: swap the text part of z_t, (1 - (1 - sigma_min) t) z0, for another
    prompt's."""
    expected = z_t + (1 - (1 - sigma_min) * t) * (z0_other - z0)
    return verdict(close(z_mixed, expected, rtol=1e-4, atol=1e-5),
                   f"z' = z_t + (1 - (1 - sigma_min) t)(z0' - z0) at t = {t:g}",
                   "the weight of z0 in z_t is 1 - (1 - sigma_min) t (notebook 01); replace that much of z0 by z0'")


@torch.no_grad()
def judged_accuracy(pipe: Any, judge: Any, split: sw.ShapesWorldSplit, idx: np.ndarray, seed: int = 0) -> float:
    """The judge's ``all`` accuracy of ``pipe``'s images (default sampling, z0 drawn with a generator seeded
    ``seed``) for the single-object prompts ``idx`` of ``split``."""
    latents = pipe([split.captions[i] for i in idx], generator=torch.Generator().manual_seed(seed),
                   output_type="latent").images
    return t2i_eval.judge_single_objects(judge, pipe.decode(latents).cpu(), split.subset(np.asarray(idx)))["all"]


def exercise_4(accuracy: float, pipe: Any, judge: Any, split: sw.ShapesWorldSplit, idx: np.ndarray) -> bool:
    """Train longer: the judge's ``all`` accuracy of the live demo model on the prompts ``idx``."""
    expected = judged_accuracy(pipe, judge, split, idx)
    return verdict(close(accuracy, expected, rtol=0, atol=1e-6),
                   f"the demo model's accuracy (all) on {len(idx)} prompts: {expected:.3f}",
                   "generate with demo_pipe (generator seeded 0, output_type='latent'), decode, and score with "
                   "t2i_eval.judge_single_objects against test.subset(idx)")


__all__ = ["judged_accuracy", "exercise_1", "exercise_3", "exercise_4"]
