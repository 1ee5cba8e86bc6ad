"""The Fashion-MNIST class-accuracy referee: a small CNN trained on the real training images.

The paper scores text-to-image models with FID, CLIP score and GenEval; on Fashion-MNIST the captions name only a
class, so "does the image show what the caption says" becomes "does a classifier trained on real photos read the
caption's class back". Its own accuracy on the real test images is reported beside every class accuracy it
gives to generations, as their ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F



@dataclass(frozen=True)
class ClassifierConfig:
    """The Fashion-MNIST class-accuracy referee: a small CNN trained on the real training images."""

    channels: tuple[int, ...] = (32, 64, 128)
    image_size: int = 32
    num_classes: int = 10

GROUPS = 8  # GroupNorm groups


class FashionClassifier(nn.Module):
    """``(B, 1, S, S)`` images in [-1, 1] -> ``(B, num_classes)`` logits: per width in ``channels`` a 3 x 3 conv
    and a stride-2 3 x 3 conv (GroupNorm + SiLU), then global average pooling and a linear layer."""

    def __init__(self, cfg: ClassifierConfig = ClassifierConfig()):
        super().__init__()
        if not cfg.channels or any(c % GROUPS for c in cfg.channels):
            raise ValueError(f"classifier channels must be non-empty multiples of {GROUPS}, got {cfg.channels}")
        self.cfg = cfg
        layers: list[nn.Module] = []
        c_in = 1
        for c in cfg.channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.GroupNorm(GROUPS, c), nn.SiLU(),
                       nn.Conv2d(c, c, 3, stride=2, padding=1), nn.GroupNorm(GROUPS, c), nn.SiLU()]
            c_in = c
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, cfg.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = self.cfg.image_size
        if images.ndim != 4 or images.shape[1] != 1 or tuple(images.shape[-2:]) != (size, size):
            raise ValueError(f"expected grey-scale images of shape (B, 1, {size}, {size}) in [-1, 1], "
                             f"got {tuple(images.shape)}")
        return self.head(self.body(images).mean(dim=(2, 3)))

    def loss(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        return loss, {"accuracy": float((logits.argmax(1) == labels).float().mean())}

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Predicted class of every image, ``(N,)`` long."""
        self.eval()
        device = next(self.parameters()).device
        with torch.no_grad():
            return torch.cat([self(images[i:i + batch_size].to(device)).argmax(1).cpu()
                              for i in range(0, len(images), batch_size)])


def class_accuracy(classifier: FashionClassifier, images: torch.Tensor,
                   labels: torch.Tensor | np.ndarray | list[int]) -> float:
    """The share of ``images`` the classifier reads as their ``labels``."""
    if not torch.is_tensor(labels):
        labels = torch.from_numpy(np.array(labels, dtype=np.int64))  # a copy: data-set arrays are read-only
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise ValueError("no images to classify")
    return float((classifier.predict(images) == labels).float().mean())


__all__ = ["FashionClassifier", "class_accuracy"]
