"""The image autoencoder: shapes, latent scale, PSNR, the recipe, and the CLI around it."""

from __future__ import annotations

import math

import pytest
import torch

from crossflow_mini import registry as recipes
from crossflow_mini.__main__ import main
from crossflow_mini.nn.autoencoder import ImageAutoencoder, psnr
from crossflow_mini.nn.autoencoder import AutoencoderConfig
from crossflow_mini.profiles import get_profile
from crossflow_mini.tasks import autoencoder as ae_recipe

TINY = AutoencoderConfig(block_out_channels=(8, 8, 8), norm_num_groups=4)


def test_latent_shape_and_round_trip_shapes():
    ae = ImageAutoencoder(TINY).eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    z = ae.encode(x)
    assert z.shape == (3, 4, 8, 8) == (3, *TINY.latent_shape)
    assert ae.decode(z).shape == x.shape


def test_wrong_image_size_is_refused_clearly():
    ae = ImageAutoencoder(TINY)
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        ae.encode(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="latents of shape"):
        ae.decode(torch.zeros(2, 4, 4, 4))


def test_latent_scale_makes_unit_std():
    ae = ImageAutoencoder(TINY).eval()
    x = torch.rand(64, 3, 32, 32) * 2 - 1
    scale = ae.fit_latent_scale(x)
    assert scale > 0 and float(ae.latent_scale) == pytest.approx(scale)
    z = torch.cat([ae.posterior(x).sample() for _ in range(4)]) * ae.latent_scale
    assert z.std().item() == pytest.approx(1.0, abs=0.05)
    assert "latent_scale" in ae.state_dict()  # the scale travels with the weights


def test_psnr_closed_form():
    ref = torch.zeros(2, 3, 4, 4)
    est = ref.clone()
    est[0] += 0.2  # [-1, 1] scale: 0.1 on the [0, 1] scale -> MSE 0.01 -> 20 dB
    vals = psnr(ref, est)
    assert vals[0].item() == pytest.approx(20.0, abs=1e-4)
    assert vals[1].item() > 100  # identical images


def test_smoke_recipe_trains_and_lowers_the_loss(tmp_cache):
    recipe = recipes.recipe("autoencoder_shapes", get_profile("smoke"))
    r = ae_recipe.fit(recipe)
    assert r.history["mse"][-1] < r.history["mse"][0]
    metrics = ae_recipe.evaluate_autoencoder(r.ema, recipe, limit=32)
    assert math.isfinite(metrics["psnr_db"]) and metrics["n_images"] == 32


def test_cli_train_list_evaluate_smoke(tmp_cache, monkeypatch, capsys):
    monkeypatch.setenv("CROSSFLOW_PROFILE", "smoke")
    assert main(["train", "autoencoder_shapes"]) == 0
    assert "psnr_db" in capsys.readouterr().out
    assert main(["list"]) == 0
    assert "cached" in capsys.readouterr().out
    model = recipes.load("autoencoder_shapes", get_profile("smoke"))  # now found in the cache, not retrained
    assert isinstance(model, ImageAutoencoder)
    assert main(["evaluate", "autoencoder_shapes"]) == 0


def test_cli_unknown_name(capsys):
    assert main(["train", "autoencoder_mars"]) == 2
    assert "unknown checkpoint" in capsys.readouterr().err
