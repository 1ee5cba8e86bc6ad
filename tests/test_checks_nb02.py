"""The checks of notebook 02's exercises: right answers pass, wrong ones fail with "not yet"."""

import dataclasses

import numpy as np
import pytest
import torch

from crossflow_mini.checks import nb02
from crossflow_mini.datasets import shapes as sw
from crossflow_mini.nn.autoencoder import AutoencoderConfig, ImageAutoencoder
from crossflow_mini.tasks.autoencoder import AutoencoderRecipe, fit
from crossflow_mini.training import TrainConfig

TINY = AutoencoderConfig(block_out_channels=(8, 8, 8), norm_num_groups=4)


@pytest.fixture(scope="module")
def ae():
    torch.manual_seed(0)
    return ImageAutoencoder(TINY).eval()


@pytest.fixture(scope="module")
def split():
    return sw.generate_split("test", sw.ShapesDataConfig(n_train=8, n_val=8, n_test=48))


def test_exercise_1_kl_to_mse(ae, split, capsys):
    x = split.images_tensor()[:8]
    with torch.no_grad():
        post = ae.posterior(x)
        kl = (0.5 * (post.mean ** 2 + post.logvar.exp() - 1 - post.logvar)).mean()   # per dimension, by hand
        mse = ((ae.reconstruct(x) - x) ** 2).mean()
    right = float(1e-2 * kl / mse)
    assert nb02.exercise_1(right, ae, x)
    assert not nb02.exercise_1(right * post.mean[0].numel(), ae, x)      # KL summed, not per dimension
    assert not nb02.exercise_1(right * 1e-4, ae, x)                      # the shipped beta, not 1e-2
    assert "not yet" in capsys.readouterr().out


def test_exercise_2_latent_numbers(capsys):
    assert nb02.exercise_2(4.0, AutoencoderConfig())                     # 4 x 16 x 16 against 4 x 8 x 8
    assert not nb02.exercise_2(2.0, AutoencoderConfig())
    assert "not yet" in capsys.readouterr().out


def test_exercise_3_worst_kind(ae, split, capsys):
    x = split.images_tensor()
    with torch.no_grad():
        r = ae.reconstruct(x)
    mse = (((r.clamp(-1, 1) + 1) / 2 - (x + 1) / 2) ** 2).flatten(1).mean(1)
    psnr = -10 * torch.log10(mse)
    means = {k: float(psnr[torch.from_numpy(split.kinds == j)].mean()) for j, k in enumerate(sw.SCENE_KINDS)}
    right = min(means, key=means.get)
    assert nb02.exercise_3(right, ae, x, split.kinds)
    assert not nb02.exercise_3(max(means, key=means.get), ae, x, split.kinds)
    assert "not yet" in capsys.readouterr().out


def test_exercise_4_sigma_to_spread(ae, split, capsys):
    x = split.images_tensor()[:16]
    with torch.no_grad():
        post = ae.posterior(x)
    right = float(post.std.mean() / post.mean.std(dim=0).mean())
    assert nb02.exercise_4(right, ae, x)
    assert not nb02.exercise_4(float(post.var.mean() / post.mean.std(dim=0).mean()), ae, x)   # variance, not sigma
    assert "not yet" in capsys.readouterr().out


def test_exercise_5_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CROSSFLOW_CACHE", str(tmp_path))
    recipe = AutoencoderRecipe(model=TINY, shapes=sw.ShapesDataConfig(n_train=64, n_val=8, n_test=8),
                               train=TrainConfig(steps=4, batch_size=8, warmup_steps=1, ckpt_every=2, log_every=1,
                                                 lr_schedule="cosine", ema_decay=0.9))
    uninterrupted = fit(recipe)

    def stop(step, logs):
        if step + 1 > recipe.train.ckpt_every:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(recipe, name="resume", resume=False, callback=stop)
    resumed = fit(recipe, name="resume")
    assert nb02.exercise_5(resumed, uninterrupted)
    fresh = fit(recipe, name="resume", resume=False)                     # not resumed
    assert not nb02.exercise_5(fresh, uninterrupted)
    other = fit(dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, seed=1)))
    assert not nb02.exercise_5(resumed, other)                           # a different run
    assert "not yet" in capsys.readouterr().out
