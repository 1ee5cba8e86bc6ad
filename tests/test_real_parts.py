"""Real pretrained parts from disk, offline: the steps of docs/SCALING_UP.md on tiny randomly initialised stand-ins.

A tiny CLIP (text and image towers, as the openai/clip-vit-large-patch14 folder holds them) and a tiny T5 saved
with ``save_pretrained``, a tiny diffusers AutoencoderKL with its ``scaling_factor``, and a folder of a dozen
captioned images in the ``datasets`` imagefolder layout (and as webdataset shards) - then the same loaders and the
same ``t2i_folder`` training the page describes, end to end.
"""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
import torch

from crossflow_mini.core.text_ve import TextVEConfig
from crossflow_mini.datasets.captioned import CaptionedImagesConfig, load_captioned, load_image
from crossflow_mini.nn.text_encoder import TextEncoder, TextEncoderConfig, load_text_model, text_model_info, text_ve_for

CAPTIONS = ["a red circle", "a blue square", "two green triangles", "a small yellow star", "a big red square",
            "a purple circle on the left", "three blue dots", "a green star", "an orange square", "a tiny red dot",
            "a blue circle", "a yellow triangle", "a red star", "a green circle", "a blue star", "a red triangle"]
CLIP_LENGTH, CLIP_WIDTH = 20, 32


def _clip_tokenizer(folder):
    import string

    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in string.ascii_lowercase:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt")), len(vocab)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Tiny stand-ins of CLIP ViT-L/14, T5 and SD-VAE, saved as their real folders are, and an image folder."""
    from diffusers import AutoencoderKL
    from transformers import CLIPConfig, CLIPModel, T5Config, T5Model

    root = tmp_path_factory.mktemp("parts")
    torch.manual_seed(0)
    tok, vocab = _clip_tokenizer(root)
    clip = CLIPModel(CLIPConfig(
        text_config=dict(vocab_size=vocab, hidden_size=CLIP_WIDTH, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=CLIP_LENGTH, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=16),
        projection_dim=16))
    clip.save_pretrained(root / "clip")
    tok.save_pretrained(root / "clip")
    t5 = T5Model(T5Config(vocab_size=vocab, d_model=24, d_kv=12, d_ff=48, num_layers=1, num_heads=2,
                          decoder_start_token_id=0, pad_token_id=1, eos_token_id=1))
    t5.save_pretrained(root / "t5")
    tok.save_pretrained(root / "t5")
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
                        up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(8, 8, 8), layers_per_block=1,
                        latent_channels=4, norm_num_groups=4, sample_size=32, scaling_factor=0.5)
    vae.save_pretrained(root / "vae")
    rng = np.random.default_rng(0)
    images = root / "images"
    for split, captions in (("train", CAPTIONS[:12]), ("validation", CAPTIONS[12:])):
        (images / split).mkdir(parents=True)
        with open(images / split / "metadata.jsonl", "w") as fh:
            for i, caption in enumerate(captions):
                _png(rng, 40 + 4 * (i % 3), 48).save(images / split / f"{i:04d}.png")
                fh.write(json.dumps({"file_name": f"{i:04d}.png", "text": caption}) + "\n")
    shards = root / "shards"
    shards.mkdir()
    with tarfile.open(shards / "000000.tar", "w") as tar:
        for i, caption in enumerate(CAPTIONS[:4]):
            buf = io.BytesIO()
            _png(rng, 36, 36).save(buf, format="PNG")
            _add(tar, f"{i:06d}.png", buf.getvalue())
            if i % 2:
                _add(tar, f"{i:06d}.json", json.dumps({"caption": caption}).encode())
            else:
                _add(tar, f"{i:06d}.txt", caption.encode())
    return root


def _png(rng, w: int, h: int):
    from PIL import Image

    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


# --------------------------------------------------------------------------------------------- text encoders
def test_clip_folder_width_and_length_flow_into_the_text_ve(parts):
    info = text_model_info(str(parts / "clip"))
    assert (info.token_dim, info.max_tokens, info.token_scale) == (CLIP_WIDTH, CLIP_LENGTH, 1.0)
    ve = text_ve_for(info, TextVEConfig(max_tokens=77))
    assert (ve.token_dim, ve.max_tokens) == (CLIP_WIDTH, CLIP_LENGTH)  # at most what CLIP reads
    tokenizer, tower = load_text_model(str(parts / "clip"))
    assert type(tower).__name__.startswith("CLIPText")  # the text tower only, not the image tower
    assert not any("vision" in name for name, _ in tower.named_parameters())


def test_clip_tokens_are_the_text_towers_last_hidden_states(parts, tmp_path):
    cfg = TextEncoderConfig(max_tokens=12, model_path=str(parts / "clip"))
    emb = TextEncoder(cfg, cache_root=tmp_path).encode(["a red cat", "a blue dog", "a red cat"])
    assert emb.tokens.shape[0] == 2 and emb.tokens.shape[2] == CLIP_WIDTH and emb.mask.shape == emb.tokens.shape[:2]
    from transformers import CLIPTextModel, CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(parts / "clip")
    ref = CLIPTextModel.from_pretrained(parts / "clip").eval()
    enc = tok(["a blue dog"], padding="max_length", max_length=emb.tokens.shape[1], return_tensors="pt")
    with torch.no_grad():
        want = ref(**enc).last_hidden_state.half().float()
    row = emb.captions.index("a blue dog")
    assert torch.allclose(emb.tokens[row], want[0], atol=1e-3)
    again = TextEncoder(cfg, cache_root=tmp_path).encode(["a red cat", "a blue dog"])  # from the cache
    assert torch.equal(again.tokens, emb.tokens)
    other = TextEncoder(TextEncoderConfig(max_tokens=12), cache_root=tmp_path).cache_path(["a red cat"])
    assert other != TextEncoder(cfg, cache_root=tmp_path).cache_path(["a red cat"])  # the model is in the key


def test_t5_folder_uses_its_encoder_scaled_by_ten(parts, tmp_path):
    info = text_model_info(str(parts / "t5"))
    assert (info.model_type, info.token_dim, info.token_scale) == ("t5", 24, 10.0)
    _, tower = load_text_model(str(parts / "t5"))
    assert type(tower).__name__ == "T5Stack" and not tower.is_decoder
    emb = TextEncoder(TextEncoderConfig(max_tokens=12, model_path=str(parts / "t5")), cache_root=tmp_path).encode(
        ["a red cat"])
    assert emb.tokens.shape[-1] == 24


def test_a_folder_without_a_model_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        text_model_info(str(tmp_path))


# --------------------------------------------------------------------------------------------- autoencoder
def test_pretrained_vae_keeps_its_scaling_factor(parts):
    from diffusers import AutoencoderKL

    from crossflow_mini.nn.autoencoder import load_pretrained_vae

    ae = load_pretrained_vae(str(parts / "vae"))
    assert float(ae.latent_scale) == 0.5 and ae.latent_shape == (4, 8, 8)
    assert not any(p.requires_grad for p in ae.parameters())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    ref = AutoencoderKL.from_pretrained(parts / "vae").eval()
    with torch.no_grad():
        assert torch.allclose(ae.encode(x), ref.encode(x).latent_dist.mean * 0.5, atol=1e-6)
        z = ae.encode(x)
        assert torch.allclose(ae.decode(z), ref.decode(z / 0.5).sample, atol=1e-5)
    assert float(load_pretrained_vae(str(parts / "vae"), scaling_factor=0.2301).latent_scale) == pytest.approx(0.2301)
    with pytest.raises(FileNotFoundError, match="AutoencoderKL"):
        load_pretrained_vae(str(parts))


# --------------------------------------------------------------------------------------------- image-caption data
def test_image_folder_and_shards_read_the_same_way(parts):
    folder = load_captioned(CaptionedImagesConfig(path=str(parts / "images"), image_size=32))
    assert folder.captions == CAPTIONS[:12]
    x = folder.image(1)
    assert x.shape == (3, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert [b.shape[0] for b in folder.batches(5)] == [5, 5, 2]
    assert torch.equal(next(folder.batches(2))[1], x)
    val = load_captioned(CaptionedImagesConfig(path=str(parts / "images"), image_size=32), "validation")
    assert val.captions == CAPTIONS[12:]
    shards = load_captioned(CaptionedImagesConfig(path=str(parts / "shards"), image_size=16))
    assert shards.captions == CAPTIONS[:4]  # .txt and .json captions, in tar order
    assert torch.equal(shards.image(3), torch.cat(list(shards.batches(3)))[3])
    with pytest.raises(FileNotFoundError, match="no 'test' split"):
        load_captioned(CaptionedImagesConfig(path=str(parts / "images")), "test")
    with pytest.raises(FileNotFoundError, match="CROSSFLOW_IMAGE_FOLDER"):
        load_captioned(CaptionedImagesConfig())


def test_images_are_resized_and_centre_cropped():
    from PIL import Image

    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, 10:30] = 255  # a white centre band as wide as the crop
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    x = load_image(buf.getvalue(), 10)  # 20 x 40 -> 10 x 20 -> centre 10 x 10
    assert x.shape == (3, 10, 10) and x[:, :, 2:8].min() > 0.9


# --------------------------------------------------------------------------------------------- end to end
@pytest.mark.filterwarnings("ignore:.*were truncated")  # the tiny CLIP's tokens are single letters
def test_train_on_the_folder_with_local_clip_and_vae(parts, monkeypatch, tmp_cache):
    """The docs page's steps, tiny: point the environment at the folders, train t2i_folder, load it back."""
    from crossflow_mini.profiles import get_profile
    from crossflow_mini import registry

    monkeypatch.setenv("CROSSFLOW_TEXT_MODEL", str(parts / "clip"))
    monkeypatch.setenv("CROSSFLOW_VAE", str(parts / "vae"))
    monkeypatch.setenv("CROSSFLOW_IMAGE_FOLDER", str(parts / "images"))
    profile = get_profile("smoke", device="cpu")
    recipe = registry.recipe("t2i_folder", profile)
    assert recipe.model.source.token_dim == CLIP_WIDTH and recipe.text.model_path == str(parts / "clip")
    out, metrics = registry.train_and_save("t2i_folder", profile)
    assert metrics["n_train_pairs"] == 12 and metrics["train_steps"] == recipe.train.steps
    assert metrics["held_out"]["split"] == "validation" and metrics["held_out"]["n_pairs"] == 4
    model = registry.load("t2i_folder", profile)
    assert type(model).__name__ == "CrossFlowModel"
    paper = registry.recipe("t2i_folder", get_profile("paper", device="cpu"))  # the folders flow into the paper recipe
    assert paper.model.source.token_dim == CLIP_WIDTH and paper.model.source.max_tokens == CLIP_LENGTH
