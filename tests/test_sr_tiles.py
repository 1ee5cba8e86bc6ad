"""Super-resolution of any size: overlapping tiles blended without seams, one tile kept exactly, memory refused
before any work."""

from __future__ import annotations

import pytest
import torch

from crossflow_mini import registry
from crossflow_mini.core.build import build_model
from crossflow_mini.pipelines import SuperResolutionPipeline
from crossflow_mini.profiles import get_profile
from crossflow_mini.tasks.sr.pipeline import blend_window, tile_starts

SMOKE = get_profile("smoke", device="cpu")


def _pipe(name: str = "sr_regression") -> SuperResolutionPipeline:
    torch.manual_seed(0)
    recipe = registry.recipe(name, SMOKE)
    return SuperResolutionPipeline(build_model(recipe.model), recipe, device="cpu")


def test_tiles_cover_every_pixel_and_never_leave_the_image():
    for length in (16, 17, 40, 63, 100, 257):
        starts = tile_starts(length, 16, 12)
        assert starts[0] == 0 and starts[-1] + 16 == max(length, 16)
        covered = torch.zeros(length, dtype=torch.bool)
        for s in starts:
            covered[s:s + 16] = True
        assert covered.all() and all(b - a <= 12 for a, b in zip(starts, starts[1:]))


def test_the_window_fades_only_towards_neighbours():
    w = blend_window(16, 4, top=False, bottom=True, left=False, right=True)
    assert w[0, 0] == 1 and w[:12, :12].eq(1).all() and w[-1, -1] < 0.05
    inner = blend_window(16, 4)
    # two neighbours' raised cosines add up to one across the overlap
    torch.testing.assert_close(inner[8, 12:] + inner[8, :4], torch.ones(4))
    assert blend_window(16, 0).eq(1).all()


def _tile_biased(tiles: torch.Tensor) -> torch.Tensor:
    """A stand-in regression network: the upsampled tile plus an offset set by the tile's own mean - smooth inside a
    tile, different from tile to tile, like a real network whose output depends on what the tile sees."""
    return tiles + 0.5 * tiles.mean(dim=(1, 2, 3), keepdim=True)


def _seam_jumps(pipe: SuperResolutionPipeline, overlap: int) -> tuple[float, float]:
    ramp = torch.linspace(-0.9, 0.9, 4 * pipe.lr_size)  # a smooth left-to-right ramp, 4 tiles wide
    low = ramp[None, None, None, :].expand(1, 3, 2 * pipe.lr_size, -1).clone()
    pipe.model.predict = _tile_biased
    out = pipe(low, output_type="latent", overlap=overlap).images[0, 0]
    jumps = (out[:, 1:] - out[:, :-1]).abs().max(dim=0).values  # the largest step between neighbouring columns
    return float(jumps.max()), float(jumps.median())


def test_overlapping_tiles_leave_no_seam():
    """Without overlap neighbouring tiles meet in a one-pixel step several times the image's own slope; blended, the
    step is spread over the overlap - the wider the overlap, the closer the output stays to the ramp's slope."""
    pipe = _pipe()
    hard_max, slope = _seam_jumps(pipe, overlap=0)
    quarter, _ = _seam_jumps(pipe, overlap=pipe.hr_size // 4)  # the default
    half, _ = _seam_jumps(pipe, overlap=pipe.hr_size // 2)
    assert hard_max > 4 * slope  # the seams a non-overlapping tiling leaves (what the blending must remove)
    assert quarter < hard_max / 2 and half < quarter and half < 3 * slope


def test_a_single_tile_is_the_models_own_output():
    pipe = _pipe("sr_crossflow")
    low = torch.rand(1, 3, pipe.lr_size, pipe.lr_size) * 2 - 1
    out = pipe(low, output_type="latent", generator=torch.Generator().manual_seed(0))
    up = pipe.upsample(low)
    direct = pipe.model.generate(up, generator=torch.Generator().manual_seed(0)).sample.clamp(-1, 1)
    assert torch.equal(out.images, direct)


def test_any_size_at_least_one_tile_runs_and_keeps_its_shape():
    pipe = _pipe()
    for h, w in ((pipe.lr_size, pipe.lr_size), (pipe.lr_size + 3, 2 * pipe.lr_size + 1)):
        out = pipe(torch.zeros(1, 3, h, w), output_type="pt")
        assert out.images.shape == (1, 3, h * pipe.scale_factor, w * pipe.scale_factor)
    with pytest.raises(ValueError, match=f"at least {pipe.lr_size} pixels"):
        pipe(torch.zeros(1, 3, pipe.lr_size - 1, 40))


def test_an_input_too_large_for_memory_is_refused_before_any_work():
    pipe = _pipe()

    def must_not_run(*_):
        raise AssertionError("the model ran although the input was refused")

    pipe.model.predict = must_not_run
    with pytest.raises(ValueError, match=r"16000 x 16000 output = 256 megapixels .* over the limit of 16; crop"):
        pipe(torch.zeros(1, 3, 4000, 4000))
    with pytest.raises(ValueError, match="x 21 trajectory steps"):  # a trajectory keeps every step's image
        _pipe("sr_crossflow")(torch.zeros(1, 3, 400, 400), return_trajectory=True, num_inference_steps=20)
