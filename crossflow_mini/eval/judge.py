"""The ShapesWorld judge: reads a (generated) image back into objects with shape, colour, size and position.

The paper scores text-to-image models with GenEval (Table 2), where an object detector checks each prompt's
objects, counts, colours and positions. ShapesWorld makes an exact mini version possible, but the referee must
be near perfect before it judges generations, so it is trained on rendered images and its accuracy on held-out
renders is reported per attribute.

How it reads an image (a small fully convolutional network + connected components):

1. :class:`JudgeNet` predicts, for every pixel, whether it belongs to an object and - if it does - that
   object's shape, colour and size (per-pixel classification, trained from the renderer's exact masks);
2. :func:`read_scenes` groups object pixels into connected components (one per object: ShapesWorld keeps
   objects apart), discards specks, and gives each component the average of its pixels' class probabilities
   and the centre of its bounding box (how the renderer places objects) as the centre.

The count is the number of components; position words and relations follow from the centres with the same
functions that wrote the captions (:func:`~crossflow_mini.datasets.shapes.position_of`, ``relation_of``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..datasets import shapes as sw


@dataclass(frozen=True)
class JudgeConfig:
    """The ShapesWorld judge network (:mod:`crossflow_mini.judge`)."""

    width: int = 48
    dilations: tuple[int, ...] = (1, 2, 4, 1)
    image_size: int = 32

#: Pixels with at least this coverage by an object are that object's pixels in the training targets.
COVERAGE_THRESHOLD = 0.5
#: Connected components smaller than this (in pixels, at 32 x 32) are specks, not objects.
MIN_OBJECT_AREA = 6
IGNORE = -100  # cross-entropy ignore index for background pixels in the attribute heads


class JudgeNet(nn.Module):
    """Per-pixel logits: objectness (2), shape (len(SHAPES)), colour (len(COLOURS)), size (len(SIZES)).

    One stride-2 convolution, dilated 3 x 3 convolutions at 16 x 16 (receptive field > a large object), then
    logits upsampled back to 32 x 32."""

    HEADS = {"object": 2, "shape": len(sw.SHAPES), "colour": len(sw.COLOURS), "size": len(sw.SIZES)}

    def __init__(self, cfg: JudgeConfig = JudgeConfig()):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        layers: list[nn.Module] = [nn.Conv2d(3, w // 2, 3, padding=1), nn.GELU(),
                                   nn.Conv2d(w // 2, w, 3, stride=2, padding=1), nn.GELU()]
        for d in cfg.dilations:
            layers += [nn.Conv2d(w, w, 3, padding=d, dilation=d), nn.GroupNorm(8, w), nn.GELU()]
        self.body = nn.Sequential(*layers)
        self.skip = nn.Conv2d(3, w, 3, padding=1)  # full-resolution colour/edge detail for the heads
        self.head = nn.Conv2d(w, sum(self.HEADS.values()), 1)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"the judge reads RGB images (B, 3, H, W) in [-1, 1]; got {tuple(images.shape)}")
        h = F.interpolate(self.body(images), size=images.shape[-2:], mode="bilinear", align_corners=False)
        logits = self.head(F.gelu(h + self.skip(images)))
        return dict(zip(self.HEADS, logits.split(list(self.HEADS.values()), dim=1)))


def pixel_targets(split: sw.ShapesWorldSplit, idx: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Per-pixel training targets from the renderer's exact object masks (``(N, H, W)`` long tensors)."""
    idx = np.arange(len(split)) if idx is None else idx
    size = split.images.shape[1]
    masks = sw.render_masks(split.shapes[idx], split.sizes[idx], split.centres[idx], size)  # (N, K, H, W)
    owner = masks.argmax(1)
    is_obj = masks.max(1) >= COVERAGE_THRESHOLD
    out = {"object": torch.from_numpy(is_obj.astype(np.int64))}
    for name, table in (("shape", split.shapes), ("colour", split.colours), ("size", split.sizes)):
        lab = np.take_along_axis(table[idx], owner.reshape(len(idx), -1), 1).reshape(owner.shape)
        out[name] = torch.from_numpy(np.where(is_obj, lab, IGNORE).astype(np.int64))
    return out


def judge_loss(net: JudgeNet, images: torch.Tensor, targets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    logits = net(images)
    losses = {k: F.cross_entropy(logits[k], targets[k], ignore_index=IGNORE) for k in logits}
    return sum(losses.values()), {k: float(v.detach()) for k, v in losses.items()}


@dataclass
class ReadObject:
    shape: int
    colour: int
    size: int
    centre: tuple[float, float]  # (x, y) in [0, 1]
    area: int

    def names(self) -> dict:
        return {"shape": sw.SHAPES[self.shape], "colour": sw.COLOURS[self.colour], "size": sw.SIZES[self.size],
                "centre": self.centre}


@torch.no_grad()
def read_scenes(net: JudgeNet, images: torch.Tensor, batch_size: int = 256) -> list[list[ReadObject]]:
    """Read each image into its objects (ordered left to right, then top to bottom)."""
    from scipy import ndimage

    net.eval()
    device = next(net.parameters(), torch.empty(0)).device  # a parameter-free net (a test's oracle) runs on the CPU
    scenes: list[list[ReadObject]] = []
    for start in range(0, len(images), batch_size):
        logits = net(images[start:start + batch_size].to(device))
        obj = logits["object"].argmax(1).cpu().numpy()
        probs = {k: logits[k].softmax(1).cpu().numpy() for k in ("shape", "colour", "size")}
        size = obj.shape[-1]
        for b in range(obj.shape[0]):
            labels, n = ndimage.label(obj[b])
            found = []
            for comp in range(1, n + 1):
                mask = labels == comp
                area = int(mask.sum())
                if area < MIN_OBJECT_AREA:
                    continue
                ys, xs = np.nonzero(mask)
                pick = {k: int(p[b][:, mask].mean(1).argmax()) for k, p in probs.items()}
                # the centre of the bounding box, as the renderer defines it (a triangle's centroid sits lower)
                centre = (float((xs.min() + xs.max() + 1) / 2 / size), float((ys.min() + ys.max() + 1) / 2 / size))
                found.append(ReadObject(pick["shape"], pick["colour"], pick["size"], centre, area))
            found.sort(key=lambda o: (o.centre[0], o.centre[1]))
            scenes.append(found)
    return scenes


def _match(truth: list[tuple[int, int, int, float, float]], read: list[ReadObject]) -> list[int | None]:
    """For each true object the index of the nearest unused read object (greedy by centre distance)."""
    pairs = sorted(((np.hypot(t[3] - r.centre[0], t[4] - r.centre[1]), i, j)
                    for i, t in enumerate(truth) for j, r in enumerate(read)))
    out: list[int | None] = [None] * len(truth)
    used: set[int] = set()
    for _, i, j in pairs:
        if out[i] is None and j not in used:
            out[i] = j
            used.add(j)
    return out


def judge_accuracy(net: JudgeNet, split: sw.ShapesWorldSplit, limit: int | None = None) -> dict[str, float]:
    """The judge's own accuracy on rendered images with known attributes, per attribute.

    ``count``: share of images with the right number of objects. ``shape``/``colour``/``size``: share of true
    objects whose matched read object has the right value (a missed object counts as wrong). ``position``:
    share of single-object images whose read object lies in the right position region."""
    n = len(split) if limit is None else min(limit, len(split))
    scenes = read_scenes(net, split.images_tensor()[:n])
    hits = {"count": 0, "shape": 0, "colour": 0, "size": 0, "position": 0}
    n_obj = n_single = 0
    for i, read in enumerate(scenes):
        k = int(split.n_objects[i])
        hits["count"] += len(read) == k
        truth = [(split.shapes[i, s], split.colours[i, s], split.sizes[i, s], *split.centres[i, s]) for s in range(k)]
        for t, j in zip(truth, _match(truth, read)):
            n_obj += 1
            if j is not None:
                hits["shape"] += read[j].shape == t[0]
                hits["colour"] += read[j].colour == t[1]
                hits["size"] += read[j].size == t[2]
        if split.positions[i] >= 0:
            n_single += 1
            if len(read) == 1:
                hits["position"] += int(sw.position_of(np.array([read[0].centre]))[0]) == split.positions[i]
    return {"count": hits["count"] / n, "shape": hits["shape"] / n_obj, "colour": hits["colour"] / n_obj,
            "size": hits["size"] / n_obj, "position": hits["position"] / max(1, n_single), "n_images": n}
