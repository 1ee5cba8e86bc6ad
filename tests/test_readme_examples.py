"""The README's first examples run as written, on the shipped checkpoints, and say what they claim."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks(section: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {section}")
    end = text.index("\n## ", start + 3)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


@pytest.fixture
def course(monkeypatch):
    monkeypatch.setenv("CROSSFLOW_PROFILE", "course")


def test_the_first_examples_run_on_the_shipped_checkpoints(course):
    blocks = _python_blocks("In a few lines")
    first, pipelines = blocks[0], blocks[1]
    scope: dict = {}
    exec(compile(first, "README: text to image", "exec"), scope)
    pipe = scope["pipe"]
    assert len(scope["images"]) == 1 and scope["z0"].shape == (2, *pipe.model.latent_shape)
    assert pipe.sampling.guidance_scale == 1.5 and pipe.sampling.steps == 20  # what the comment says
    assert len(pipe.vocabulary) == 46  # "captions with 46 words"
    rng = np.random.default_rng(0)
    scope.update(image=rng.integers(0, 255, (48, 40, 3), dtype=np.uint8),
                 low_res=torch.rand(1, 3, 12, 20) * 2 - 1,
                 images=pipe(["a red circle", "two blue squares"], output_type="np",
                             generator=torch.Generator().manual_seed(0)).images)
    exec(compile(pipelines, "README: the other pipelines", "exec"), scope)
    out = scope["depth"](scope["image"], generator=torch.Generator().manual_seed(0))
    assert out.depth.shape == (1, 32, 32) and out.depth.min() >= 0.5
    sr = scope["sr"](scope["low_res"], generator=torch.Generator().manual_seed(0))
    assert sr.images[0].size == (80, 48)  # 4x larger, any size of at least 8 px
    captions = scope["captioner"](scope["images"], generator=torch.Generator().manual_seed(0)).captions
    assert len(captions) == 2 and all(isinstance(c, str) and c for c in captions)
