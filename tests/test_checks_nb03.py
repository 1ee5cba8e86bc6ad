"""The checks of notebook 03's exercises: right answers pass, wrong ones fail with "not yet"."""

import math

import pytest
import torch

from crossflow_mini.checks import nb03
from crossflow_mini.pipelines import CrossFlowPipeline
from crossflow_mini.profiles import get_profile

CAPTION = "a red circle to the left of a blue square"


@pytest.fixture(scope="module")
def pipe():
    return CrossFlowPipeline.from_pretrained("t2i_shapes", get_profile("smoke"))   # tiny, trained on the fly


def test_exercise_1_kl_per_dimension(capsys):
    right = 0.5 * (math.exp(-4) - 1 + 4)
    assert nb03.exercise_1((right, right))
    assert not nb03.exercise_1((0.5 * (math.exp(-4) - 1 - 4), right))     # sign of log sigma^2 flipped
    assert not nb03.exercise_1(right)                                     # one number, not the pair
    assert "not yet" in capsys.readouterr().out


def test_exercise_2_mean_gives_one_image(pipe, capsys):
    prompt, n = "a large red circle on the left", 3
    mean = pipe.from_text_latents(pipe.encode_text([prompt] * n, sample=False), output_type="pt").images
    draws = pipe.from_text_latents(pipe.encode_text([prompt] * n, generator=torch.Generator().manual_seed(0)),
                                   output_type="pt").images
    spread_mean, spread_sampled = float(mean.std(0).mean()), float(draws.std(0).mean())
    assert nb03.exercise_2(spread_mean, spread_sampled, pipe, prompt, n)
    assert not nb03.exercise_2(spread_sampled, spread_mean, pipe, prompt, n)   # the two swapped
    assert "not yet" in capsys.readouterr().out


def test_exercise_3_temperature(pipe, capsys):
    s = pipe.model.source.logit_scale_param.detach().exp().clamp(max=100)
    assert nb03.exercise_3(float(1 / s), pipe.model)
    assert not nb03.exercise_3(float(s), pipe.model)                          # the scale, not the temperature
    assert "not yet" in capsys.readouterr().out


def test_exercise_4_linear_probe(capsys):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (200,), generator=g)
    mu = torch.randn(200, 16, generator=g) + 2 * torch.nn.functional.one_hot(labels, 16).float()
    x = torch.cat([mu, torch.ones(200, 1)], 1).double()
    w = torch.linalg.pinv(x[:100]) @ torch.nn.functional.one_hot(labels[:100], 5).double()
    right = float(((x[100:] @ w).argmax(1) == labels[100:]).double().mean())
    assert right > 0.5
    assert nb03.exercise_4(right, mu, labels, 5)
    x_nob = mu[:100].double()
    w_nob = torch.linalg.pinv(x_nob) @ torch.nn.functional.one_hot(labels[:100], 5).double()
    train_acc = float(((x_nob @ w_nob).argmax(1) == labels[:100]).double().mean())
    assert not nb03.exercise_4(train_acc, mu, labels, 5) or abs(train_acc - right) < 0.02   # scored on training rows
    assert not nb03.exercise_4(0.2, mu, labels, 5)
    assert "not yet" in capsys.readouterr().out


def test_exercise_5_attention(pipe, capsys):
    tokens = pipe.tokenize([CAPTION])
    n_real = int(tokens.mask.sum())
    ve = pipe.model.source
    with torch.no_grad():   # by hand: the last layer's input is the query after the earlier layers and self-attention
        h, m = ve.token_states(tokens)
        q = ve.queries.expand(1, -1, -1)
        for layer in ve.decoder[:-1]:
            q = layer(q, h, memory_key_padding_mask=~m)
        last = ve.decoder[-1]
        q = q + last._sa_block(last.norm1(q), None, None)
        _, weights = last.multihead_attn(last.norm2(q), h, h, key_padding_mask=~m, need_weights=True)
    right = weights[0, :, :n_real]
    assert torch.allclose(right.sum(1), torch.ones(len(right)), atol=1e-5)
    assert nb03.exercise_5(right, pipe, CAPTION)
    assert nb03.exercise_5(weights, pipe, CAPTION)                                 # (1, queries, max_tokens) too
    assert not nb03.exercise_5(right.T, pipe, CAPTION)
    assert not nb03.exercise_5(torch.full_like(right, 1 / n_real), pipe, CAPTION)  # uniform attention
    assert "not yet" in capsys.readouterr().out
