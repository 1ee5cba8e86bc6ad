"""Checks for notebook 08 (image captioning). Each expected value is recomputed with the shipped pipeline and the
same seeds (see :mod:`crossflow_mini.checks`)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from ..datasets.shapes_text import parse_caption
from . import close, verdict

STEP_COUNTS = (1, 2, 4, 8)
N_GENERATORS = 8


def parse_share(captions: list[str]) -> float:
    """The share of ``captions`` that are sentences of the ShapesWorld grammar (paper Sec. 5.4: scene accuracy by
    parsing, docs/METHOD.md)."""
    return float(np.mean([parse_caption(c) is not None for c in captions]))


def exercise_1(answer: Mapping[int, float], pipe: Any, images: torch.Tensor) -> bool:
    """``answer``: Euler steps ``k`` (1, 2, 4, 8) -> the share of parseable captions of ``images`` (generator
    seeded with 0)."""
    expected = {k: parse_share(pipe(images, num_inference_steps=k, generator=torch.Generator().manual_seed(0)).captions)
                for k in STEP_COUNTS}
    ok = isinstance(answer, Mapping) and set(answer) == set(expected) and all(
        close(answer[k], expected[k]) for k in expected)
    return verdict(ok, "parse rate per number of steps: " + ", ".join(f"{k}: {v:.2f}" for k, v in expected.items()),
                   "caption with pipe(images, num_inference_steps=k, generator=torch.Generator().manual_seed(0)) and "
                   "count the captions whose parse_caption is not None, for k = 1, 2, 4, 8")


def exercise_3(answer: Mapping[str, int], pipe: Any, image: torch.Tensor) -> bool:
    """``answer``: how many different captions CrossFlow writes for ``N_GENERATORS`` copies of ``image`` in one call
    (generator seeded with 0: one z0 draw per copy), and the direct captioner's count (always 1: it has no noise)."""
    copies = image[:1].expand(N_GENERATORS, *image.shape[1:])
    captions = set(pipe(copies, generator=torch.Generator().manual_seed(0)).captions)
    expected = {"crossflow": len(captions), "direct": 1}
    ok = isinstance(answer, Mapping) and dict(answer) == expected
    return verdict(ok, f"CrossFlow writes {expected['crossflow']} different captions in {N_GENERATORS} draws, the "
                   f"direct captioner 1", "caption the eight copies in one call and count set(...) of the captions; "
                   "the direct captioner is a deterministic function of the image")


__all__ = ["STEP_COUNTS", "N_GENERATORS", "parse_share", "exercise_1", "exercise_3"]
