"""The captioning task: targets and vocabulary, recipe checks and matched sizes, scoring on hand-checked captions,
the cycle's image judging, and the smoke profile end to end (train, measure, pipeline, save and reload)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from crossflow_mini.configs import config_hash, from_dict, to_dict
from crossflow_mini.datasets import shapes as sw
from crossflow_mini.datasets.shapes import ShapesDataConfig
from crossflow_mini.datasets.shapes_text import normalise
from crossflow_mini.eval.judge import ReadObject
from crossflow_mini.core.sampling import SamplingConfig
from crossflow_mini.profiles import get_profile
from crossflow_mini.tasks.captioning import data as cap_data
from crossflow_mini.tasks.captioning import evaluate as cap_eval
from crossflow_mini.tasks.captioning import recipe as cap_recipe
from crossflow_mini.tasks.captioning import train as cap
from crossflow_mini.tasks.common import choose_scale
from crossflow_mini.studies import captioning as study
from crossflow_mini.studies import catalog
from crossflow_mini import registry

SMOKE = get_profile("smoke")
RICH = ShapesDataConfig(n_train=16, n_val=16, n_test=120, vocabulary="rich")
CAPTIONERS = tuple(study.CAPTIONERS)


def test_targets_drop_bos_end_with_eos_and_decode_back():
    split = sw.load_shapes("test", RICH)
    targets = cap_data.caption_targets(split.captions)
    vocab = cap_recipe.caption_vocab()
    assert targets.shape == (len(split), cap_recipe.DECODER_LEN)
    assert (targets[:, 0] != vocab.bos_id).all()
    for row, caption in zip(targets, split.captions):
        n = len(normalise(caption).split())
        assert row[n] == vocab.eos_id and (row[n + 1:] == vocab.pad_id).all()
    assert vocab.decode(targets) == [normalise(c) for c in split.captions]  # no word of the grammar is unknown


@pytest.mark.parametrize("profile", ["course", "full"])
def test_shipped_recipes_are_consistent_and_shared(profile):
    p = get_profile(profile)
    shipped = {n: registry.recipe(n, p) for n in ("autoencoder_shapes", "text_autoencoder_shapes", *CAPTIONERS)}
    assert shipped["caption_crossflow"] == registry.recipe("caption_crossflow", get_profile("course"))
    flows = (shipped["caption_crossflow"], shipped["caption_baseline"])
    assert all(f.text_autoencoder == shipped["text_autoencoder_shapes"] and f.is_flow for f in flows)
    assert shipped["caption_direct"].text_autoencoder is None
    assert shipped["caption_autoregressive"].text_autoencoder is None
    recipes = [shipped[n] for n in CAPTIONERS]
    assert {c.autoencoder for c in recipes} == {shipped["autoencoder_shapes"]}
    assert len({c.train for c in recipes}) == 1  # the same training run for all four
    assert all(c.shapes.vocabulary == "rich" for c in (*recipes, shipped["text_autoencoder_shapes"]))
    assert len({config_hash(r) for r in recipes}) == 4


def test_captioners_are_matched_in_parameters():
    p = get_profile("course")
    text_ae = registry.get("text_autoencoder_shapes").task.build(registry.recipe("text_autoencoder_shapes", p))
    sizes = {}
    for name in CAPTIONERS:
        recipe = registry.recipe(name, p)
        model = cap.build_captioner(recipe.model)
        sizes[name] = cap_eval.captioner_parameters(model, text_ae if recipe.is_flow else None)["captioning"]
    ref = sizes["caption_crossflow"]
    assert all(abs(n - ref) / ref < 0.10 for n in sizes.values()), sizes


def test_recipe_errors_say_what_to_do():
    r = registry.recipe("caption_crossflow", SMOKE)
    with pytest.raises(ValueError, match="text_autoencoder recipe"):
        dataclasses.replace(r, text_autoencoder=None)
    with pytest.raises(ValueError, match="token_dim"):
        dataclasses.replace(registry.recipe("caption_baseline", SMOKE), image_patch=4)
    text_ae = registry.recipe("text_autoencoder_shapes", SMOKE)
    with pytest.raises(ValueError, match="max_tokens"):
        dataclasses.replace(text_ae, text=dataclasses.replace(text_ae.text, max_tokens=8))
    direct = registry.recipe("caption_direct", SMOKE)
    with pytest.raises(ValueError, match="VOCAB_SIZE"):
        dataclasses.replace(direct, model=dataclasses.replace(
            direct.model, decoder=dataclasses.replace(direct.model.decoder, vocab_size=7)))


def test_recipes_round_trip_through_json():
    for name in ("text_autoencoder_shapes", *CAPTIONERS):
        recipe = registry.recipe(name, get_profile("course"))
        cls = cap_recipe.TextAutoencoderRecipe if name.startswith("text") else cap_recipe.CaptionRecipe
        assert from_dict(cls, json.loads(json.dumps(to_dict(recipe)))) == recipe


def test_scores_on_hand_checked_captions():
    split = sw.load_shapes("test", RICH)
    idx = np.arange(len(split))
    truth = [split.captions[i] for i in idx]
    perfect = cap_eval.score_captions(truth, split, idx)
    assert perfect["scene"]["scene"] == 1.0 and perfect["scene"]["parsed"] == 1.0
    assert all(g["scene"] == 1.0 for g in perfect["groups"].values())
    assert set(perfect["groups"]) >= {"single", "pair", "count", "in_distribution", "heldout_combinations"}
    # the first single-object scene, captioned with the wrong colour: everything but the colour is right
    i = int(np.flatnonzero(split.kinds == sw.SCENE_KINDS.index("single"))[0])
    a = split.attributes(i)
    obj = a["objects"][0]
    other = next(c for c in sw.COLOURS if c != obj["colour"])
    wrong = f"a {obj['size']} {other} {obj['shape']} {sw.POSITION_PHRASES[a['position']][0]}"
    right = f"a {obj['size']} {obj['colour']} {obj['shape']} {sw.POSITION_PHRASES[a['position']][0]}"
    j = i + 1  # CIDEr's document frequencies need more than one image: a second one, captioned right
    good = cap_eval.score_captions([right, split.captions[j]], split, [i, j])
    bad = cap_eval.score_captions([wrong, split.captions[j]], split, [i, j])
    assert good["scene"]["scene"] == 1.0 and bad["scene"]["scene"] == 0.5
    assert bad["scene"]["colours"] == 0.5 and bad["scene"]["shapes"] == 1.0 and bad["groups"]["single"]["scene"] == 0
    assert good["metrics"]["BLEU-4"] > bad["metrics"]["BLEU-4"] and good["metrics"]["CIDEr"] > bad["metrics"]["CIDEr"]
    garbled = cap_eval.score_captions(["circle circle red the"], split, [i])
    assert garbled["scene"]["parsed"] == 0.0 and garbled["scene"]["scene"] == 0.0


def test_choose_scale_takes_the_best_validation_scene_match_and_breaks_ties_cheaply():
    sweep = {"w=1": {"scene": {"scene": 0.5}}, "w=2": {"scene": {"scene": 0.8}}, "w=3": {"scene": {"scene": 0.8}}}
    # the captioners' metric (scene exact match, evaluate_captioner's) with the shared tie rule
    assert choose_scale(sweep, lambda r: r["scene"]["scene"]) == 2.0


def _obj(shape, colour, size, centre):
    return ReadObject(sw.SHAPES.index(shape), sw.COLOURS.index(colour), sw.SIZES.index(size), centre, 30)


def test_read_as_scene_matches_what_the_judge_saw():
    single = study.read_as_scene([_obj("circle", "red", "large", (0.28, 0.5))])
    assert single == {"kind": "single", "n_objects": 1, "position": "left", "relation": None,
                      "objects": [{"shape": "circle", "colour": "red", "size": "large"}]}
    pair = study.read_as_scene([_obj("square", "blue", "small", (0.3, 0.5)), _obj("cross", "green", "small",
                                                                                 (0.7, 0.52))])
    assert pair["kind"] == "pair" and pair["relation"] == "left of"
    count = study.read_as_scene([_obj("square", "blue", "small", (0.3, 0.5))] * 3)
    assert count["kind"] == "count" and count["n_objects"] == 3
    assert study.read_as_scene([]) is None


def test_images_are_judged_like_captions_with_the_shipped_judge():
    judge = registry.load("judge_shapes", get_profile("course"))
    split = sw.load_shapes("test", RICH)
    idx = np.arange(60)
    attrs = [split.attributes(int(i)) for i in idx]
    real = split.images_tensor()[:60]
    assert study.image_scene_scores(judge, real, attrs)["scene"] >= 0.95
    sub = split.subset(idx)
    swapped = sw.render(sub.shapes, np.where(sub.colours >= 0, (sub.colours + 1) % len(sw.COLOURS), -1), sub.sizes,
                        sub.centres)
    swapped = torch.from_numpy(swapped).permute(0, 3, 1, 2).float() / 127.5 - 1
    scores = study.image_scene_scores(judge, swapped, attrs)
    assert scores["colours"] <= 0.05 and scores["scene"] <= 0.05 and scores["shapes"] >= 0.9


def test_cycle_with_stand_ins_scores_both_ways():
    judge = registry.load("judge_shapes", get_profile("course"))
    split = sw.load_shapes("test", RICH)
    idx = study.cycle_indices(split, 5)
    images = split.images_tensor()

    def text_to_image(prompts):  # a perfect text-to-image model: the real render of each prompt's scene
        return images[torch.from_numpy(idx)]

    out = study.run_cycle(text_to_image, lambda ims: [split.captions[int(i)] for i in idx][:len(ims)], judge, split,
                          idx)
    assert set(out["by_kind"]) == set(sw.SCENE_KINDS)
    for res in out["by_kind"].values():
        assert res["n"] == 5
        assert res["image_vs_prompt"]["scene"] >= 0.8
        assert res["caption_of_generated_vs_prompt"]["scene"] == 1.0


def test_comparison_rows_put_the_paper_after_ours():
    res = {"scene": {"scene": 0.5, "parsed": 0.9}, "metrics": {"BLEU-4": 1.0, "ROUGE-L": 2.0, "CIDEr": 3.0},
           "groups": {"single": {"scene": 0.9}}, "ms_per_image": 1.0}
    rows = study.comparison_rows({"caption_crossflow": {"test": res, "parameters": {"captioning": 10},
                                                        "chosen_scale": 2.0}})
    assert rows[0]["checkpoint"] == "caption_crossflow" and rows[0]["scene_exact_single"] == 0.9
    assert rows[0]["scene_exact_pair"] is None
    assert all("paper" in r["source"] for r in rows[1:]) and rows[1]["CIDEr"] == 116.2
    table = study.markdown_table(rows).splitlines()
    assert len(table) == 2 + len(rows) and "| 0.500 |" in table[2] and "116.2" in table[3]


# ------------------------------------------------------------------------------------------- smoke end to end
@pytest.fixture(scope="module")
def smoke_models(tmp_path_factory):
    import os

    old = os.environ.get("CROSSFLOW_CACHE")
    os.environ["CROSSFLOW_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        found = {n: registry.find(n, SMOKE) for n in ("text_autoencoder_shapes", *CAPTIONERS)}
        yield found
    finally:
        if old is None:
            os.environ.pop("CROSSFLOW_CACHE")
        else:
            os.environ["CROSSFLOW_CACHE"] = old


def test_smoke_checkpoints_train_and_record_their_measurements(smoke_models):
    text_meta = smoke_models["text_autoencoder_shapes"][1]["metrics"]
    assert text_meta["train_steps"] == registry.recipe("text_autoencoder_shapes", SMOKE).train.steps
    assert {"from_mean", "from_sample", "latent_scale"} <= set(text_meta)
    assert 0.0 <= text_meta["from_mean"]["exact_caption"] <= 1.0
    for name in CAPTIONERS:
        m = smoke_models[name][1]["metrics"]
        assert m["train_steps"] == registry.recipe("caption_crossflow", SMOKE).train.steps
        assert "train_seconds_this_run" in m
        assert m["test"]["n_images"] == SMOKE.caption_eval.max_images
        assert 0.0 <= m["test"]["scene"]["parsed"] <= 1.0
        if registry.recipe(name, SMOKE).is_flow:
            assert m["chosen_scale"] in SMOKE.caption_eval.scales and "test_cfg_off" in m
        json.dumps(m)


def test_pipeline_captions_images_of_every_input_type(smoke_models, tmp_path):
    from crossflow_mini.pipelines import CaptioningPipeline

    pipe = CaptioningPipeline.from_pretrained("caption_crossflow", SMOKE)
    split = sw.load_shapes("test", registry.recipe("caption_crossflow", SMOKE).shapes)
    images = split.images_tensor()[:3]
    out = pipe(images, num_inference_steps=3, generator=torch.Generator().manual_seed(0))
    assert len(out.captions) == 3 and all(isinstance(c, str) for c in out.captions) and out.nfe >= 3
    same = pipe(list((images.permute(0, 2, 3, 1).numpy() + 1) / 2), num_inference_steps=3,
                generator=torch.Generator().manual_seed(0))
    assert same.captions == out.captions  # numpy [0, 1] images give the same captions
    ids = pipe(images, num_inference_steps=3, generator=torch.Generator().manual_seed(0), output_type="ids").captions
    assert pipe.vocab.decode(ids) == out.captions
    # the task's captioner gives the same captions for the same latents and draws
    direct = cap_eval.captions_of(pipe.model, pipe.recipe, pipe.encode_images(images).cpu(), pipe.text_autoencoder,
                                  guidance_scale=pipe.sampling.guidance_scale, steps=3,
                                  generator=torch.Generator().manual_seed(0))
    assert direct == out.captions
    pipe.save_pretrained(tmp_path / "pipe")
    again = CaptioningPipeline.from_pretrained(tmp_path / "pipe")
    assert again(images, num_inference_steps=3, generator=torch.Generator().manual_seed(0)).captions == out.captions
    with pytest.raises(ValueError, match="output_type"):
        pipe(images, output_type="pil")
    with pytest.raises(ValueError, match="CaptioningPipeline does not serve"):  # no flow: refused before loading
        CaptioningPipeline.from_pretrained("caption_direct", SMOKE)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        pipe((images + 1) * 2)


def test_smoke_study_runs_with_the_cycle(smoke_models, monkeypatch):
    monkeypatch.setattr(study, "CrossFlowPipeline", _FakeT2I)
    out = catalog.run_study("captioning", SMOKE)  # finds the checkpoints the fixture trained (its cache)
    assert [r["checkpoint"] for r in out["table"][:4]] == list(CAPTIONERS)
    assert out["cycle"]["captioner"] == "caption_crossflow" and set(out["cycle"]["by_kind"]) == set(sw.SCENE_KINDS)
    json.dumps(out)


def test_smoke_schedule_study_trains_both_schedules(smoke_models):
    out = catalog.run_study("captioning_schedule", SMOKE)
    assert out["steps"] == SMOKE.caption_schedule.steps
    for schedule in ("frozen", "joint"):
        assert 0.0 <= out[schedule]["val"]["w=1"]["parsed"] <= 1.0
    assert "rec" in out["joint"]["final_losses"] and "rec" not in out["frozen"]["final_losses"]
    json.dumps(out)


class _FakeT2I:
    """A stand-in text-to-image pipeline: grey images (the shipped t2i model is not needed for this check)."""

    recipe = registry.recipe("t2i_shapes", SMOKE)
    sampling = SamplingConfig(guidance_scale=1.0)

    @classmethod
    def from_pretrained(cls, name, profile=None, device=None):
        assert name == "t2i_shapes"
        return cls()

    def __call__(self, prompts, guidance_scale=None, generator=None, output_type="np"):
        return type("Out", (), {"images": np.full((len(prompts), 32, 32, 3), 0.25, dtype=np.float32)})()
