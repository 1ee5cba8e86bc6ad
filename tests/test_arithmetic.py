"""Latent arithmetic and interpolation (tasks/arithmetic.py, arithmetic_cases.py, interpolation.py): the
standardisation by hand, lerp / slerp end points and norms, the case generator (canonical captions that parse back,
held-out flags, trivial answers), the success criteria on hand-made and on real judge readings, and the study end
to end on the smoke profile."""

from __future__ import annotations

import dataclasses
import os
from collections import Counter

import numpy as np
import pytest
import torch

from crossflow_mini.configs import config_hash
from crossflow_mini.datasets import shapes as sw
from crossflow_mini.datasets import shapes_text as st
from crossflow_mini.eval.judge import ReadObject, read_scenes
from crossflow_mini.profiles import get_profile
from crossflow_mini.tasks.t2i import arithmetic as ar
from crossflow_mini.tasks.t2i import arithmetic_cases as ac
from crossflow_mini.tasks.t2i import interpolation as ip
from crossflow_mini import registry
from crossflow_mini.studies import catalog

SMOKE = get_profile("smoke", device="cpu")
N_CASES = 500  # the study's count per kind: the generator must give both groups and valid captions at that size


# ------------------------------------------------------------------------------------------ standardisation
def test_standardise_is_the_public_codes_per_sample_global_mean_and_std():
    z = torch.randn(3, 4, 8, 8) * torch.tensor([0.5, 2.0, 7.0]).view(3, 1, 1, 1) + torch.tensor([1.0, -3.0, 0.2]).view(
        3, 1, 1, 1)
    by_hand = torch.stack([(z[i] - z[i].mean()) / z[i].std() for i in range(3)])  # demo_t2i_arith.py, one sample
    assert torch.allclose(ar.standardise(z), by_hand, atol=1e-6)
    flat = ar.standardise(z).flatten(1)
    assert torch.allclose(flat.mean(1), torch.zeros(3), atol=1e-6)
    assert torch.allclose(flat.std(1), torch.ones(3), atol=1e-6)  # unbiased, as torch's .std()


def test_combine_sums_with_coefficients_then_standardises():
    a, b, c = (torch.randn(2, 4, 8, 8) for _ in range(3))
    raw = a - b + 2.5 * c
    assert torch.allclose(ar.combine([a, b, c], [1, -1, 2.5], "none"), raw, atol=1e-6)
    assert torch.allclose(ar.combine([a, b, c], [1, -1, 2.5]), ar.standardise(raw), atol=1e-6)
    per_sample = ar.combine([a, b], [torch.tensor([1.0, 1.0]), torch.tensor([0.5, 3.0])], "none")
    assert torch.allclose(per_sample[1], a[1] + 3.0 * b[1], atol=1e-6)
    # "operands": the standardised sum at the operands' scale and offset
    scaled = ar.combine([3 * a + 1, 3 * b + 1], [1, 1], "operands").flatten(1)
    ops = torch.stack([(3 * a + 1).flatten(1), (3 * b + 1).flatten(1)])
    assert torch.allclose(scaled.std(1), ops.std(2).mean(0), atol=1e-5)
    assert torch.allclose(scaled.mean(1), ops.mean(2).mean(0), atol=1e-5)
    with pytest.raises(ValueError, match="standardisation"):
        ar.combine([a], [1], "global")
    with pytest.raises(ValueError, match="one coefficient per latent"):
        ar.combine([a, b], [1])


# ------------------------------------------------------------------------------------------ interpolation
def test_lerp_and_slerp_end_points_and_norms():
    torch.manual_seed(0)
    a, b = torch.randn(5, 4, 8, 8), torch.randn(5, 4, 8, 8)
    b = b * (a.flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1)).view(-1, 1, 1, 1)  # equal norms per sample
    for fn in (ip.lerp, ip.slerp):
        assert torch.allclose(fn(a, b, 0.0), a, atol=1e-5) and torch.allclose(fn(a, b, 1.0), b, atol=1e-5)
    norm = a.flatten(1).norm(dim=1)
    for t in (0.1, 0.25, 0.5, 0.9):
        assert torch.allclose(ip.slerp(a, b, t).flatten(1).norm(dim=1), norm, rtol=1e-5)  # on the sphere all along
    assert (ip.lerp(a, b, 0.5).flatten(1).norm(dim=1) < 0.8 * norm).all()  # nearly orthogonal: the chord dips to ~0.71
    mid = ip.slerp(a, b, 0.5).flatten(1)
    cos = torch.nn.functional.cosine_similarity
    assert torch.allclose(cos(mid, a.flatten(1)), cos(mid, b.flatten(1)), atol=1e-5)  # halfway along the arc
    omega = torch.arccos(cos(a.flatten(1), b.flatten(1)))
    quarter = torch.arccos(cos(ip.slerp(a, b, 0.25).flatten(1), a.flatten(1)).clamp(-1, 1))
    assert torch.allclose(quarter, omega / 4, atol=1e-3)  # constant angular speed (a normalised lerp is not)
    # unequal norms: the norm goes linearly; parallel latents: slerp is lerp
    c = 3 * a
    assert torch.allclose(ip.slerp(a, b * 2, 0.25).flatten(1).norm(dim=1), norm * 1.25, rtol=1e-5)
    assert torch.allclose(ip.slerp(a, c, 0.3), ip.lerp(a, c, 0.3), atol=1e-5)
    assert torch.allclose(ip.slerp(a, b, torch.full((5,), 0.5)), ip.slerp(a, b, 0.5), atol=1e-6)
    pts = ip.path(a, b, [0.0, 0.5, 1.0], "slerp")
    assert pts.shape == (3, *a.shape) and torch.allclose(pts[1], ip.slerp(a, b, 0.5))
    with pytest.raises(ValueError, match="choose one of"):
        ip.path(a, b, [0.5], "cubic")
    prof = ip.norm_profile(a, b, [0.0, 0.5, 1.0], "lerp")
    assert prof[0] == pytest.approx(1.0) and prof[1] < 0.8 and prof[2] == pytest.approx(1.0)


def test_switch_reads_one_clean_change_only():
    ts = [0.0, 0.25, 0.5, 0.75, 1.0]
    assert ip.switch(["red", "red", "blue", "blue", "blue"], ts, "red", "blue") == {"clean": True, "changes": 1,
                                                                                    "t": 0.375}
    assert not ip.switch(["red", "blue", "red", "blue", "blue"], ts, "red", "blue")["clean"]  # flip-flop
    assert not ip.switch(["red", "red", "green", "blue", "blue"], ts, "red", "blue")["clean"]  # a third value
    assert not ip.switch(["green", "green", "blue", "blue", "blue"], ts, "red", "blue")["clean"]  # wrong start
    assert ip.switch(["red", "blue", "red", "blue", "blue"], ts, "red", "blue")["changes"] == 3
    paths = [[{"count": 1, "shape": "circle", "colour": c, "size": "small", "position": "left"} for c in cs]
             for cs in (["red", "red", "blue", "blue", "blue"], ["red", "blue", "red", "blue", "blue"])]
    end = ({"shape": "circle", "colour": "red", "position": "left"},
           {"shape": "circle", "colour": "blue", "position": "left"})
    out = ip.summarise_paths(paths, [end, end], ts, attributes=("shape", "colour"))
    assert out["colour"] == {"clean_switch": 0.5, "mean_switch_t": 0.375, "mean_changes": 2.0, "n": 2}
    assert out["shape"]["n"] == 0 and out["ends_read_right"] == 1.0 and out["one_object_along_path"] == 1.0


# ------------------------------------------------------------------------------------------ cases
@pytest.fixture(scope="module")
def cases():
    return {kind: ac.make_cases(kind, N_CASES, seed=0) for kind in ac.KINDS}


def _objects(scene):
    return [(o["shape"], o["colour"], o["size"]) for o in scene["objects"]]


def test_cases_are_reproducible_and_kinds_independent(cases):
    again = ac.make_cases("edit_size", 20, seed=0)
    assert [c.terms for c in again] == [c.terms for c in cases["edit_size"][:20]]
    assert [c.terms for c in ac.make_cases("edit_size", 20, seed=1)] != [c.terms for c in again]
    with pytest.raises(ValueError, match="choose one of"):
        ac.make_cases("multiplication", 3)


def test_every_prompt_is_a_canonical_caption_that_parses_back(cases):
    for kind, cs in cases.items():
        for c in cs:
            for text in (*c.prompts, c.trivial):
                scene = st.parse_caption(text)
                assert scene is not None, text
                assert st.caption_tokens(text) <= st.MAX_CAPTION_TOKENS
                assert text == st.fill_form(st.RICH_FORMS[scene["kind"]][0], scene)  # also the rich canonical form
                assert text == st.template_caption(scene, ac.CANONICAL_TEMPLATE)
            target = st.parse_caption(c.trivial)
            assert target["kind"] == c.target["kind"] and target["relation"] == c.target["relation"]
            assert target["position"] == c.target["position"]
            assert [(o["shape"], o["colour"]) for o in target["objects"]] == \
                [(o["shape"], o["colour"]) for o in c.target["objects"]]


def test_held_out_flags_follow_every_object_and_both_groups_occur(cases):
    for kind, cs in cases.items():
        for c in cs:
            scenes = [st.parse_caption(p) for p in c.prompts] + [c.target]
            flag = any((o["shape"], o["colour"]) in sw.HELDOUT_COMBINATIONS for s in scenes for o in s["objects"])
            assert c.heldout == flag
        share = np.mean([c.heldout for c in cs])
        assert 0.2 < share < 0.7, (kind, share)  # uniform over the 30 combinations: both groups are well filled


def test_the_arithmetic_of_attributes_adds_up(cases):
    """Symbolically, the operands' objects with their coefficients leave exactly the target's objects."""
    for kind, cs in cases.items():
        for c in cs:
            count: Counter = Counter()
            for coef, prompt in c.terms:
                scene = st.parse_caption(prompt)
                pos = scene["position"]
                for o in scene["objects"]:
                    if kind.startswith("edit_"):  # one-object scenes: every attribute value counts
                        for value in (o["shape"], o["colour"], o["size"], pos):
                            count[value] += coef
                    else:
                        count[(o["shape"], o["colour"])] += coef
            left = {k: v for k, v in count.items() if v}
            if kind.startswith("edit_"):
                t = c.target["objects"][0]
                assert left == {t["shape"]: 1, t["colour"]: 1, t["size"]: 1, c.target["position"]: 1}, c.formula()
            else:
                assert left == {(o["shape"], o["colour"]): 1 for o in c.target["objects"]}, c.formula()


def test_cases_have_the_geometry_their_trivial_caption_needs(cases):
    for c in cases["addition"]:
        (_, pa), (_, pb) = c.terms
        a, b = st.parse_caption(pa), st.parse_caption(pb)
        anchors = [np.array(sw.POSITION_ANCHORS[s["position"]]) for s in (a, b)]
        assert sw.RELATIONS[int(sw.relation_of(*anchors))] == c.target["relation"]  # A REL B, as the pair caption
        assert (a["objects"][0]["size"], b["objects"][0]["size"]) in [
            tuple(sw.SIZES[i] for i in s) for s in sw.PAIR_SIZE_CHOICES]
        assert a["objects"][0]["shape"] != b["objects"][0]["shape"]
        assert a["objects"][0]["colour"] != b["objects"][0]["colour"]
    for c in cases["subtraction"]:
        both, alone = (st.parse_caption(p) for p in c.prompts)
        anchors = [np.array(sw.POSITION_ANCHORS[p]) for p in (c.target["position"], alone["position"])]
        assert sw.RELATIONS[int(sw.relation_of(*anchors))] == both["relation"]  # A and B where the pair puts them
    for kind in ac.EDIT_KINDS:
        attr = kind.removeprefix("edit_")
        for c in cases[kind]:
            first = st.parse_caption(c.prompts[0])
            value = (lambda s: s["position"]) if attr == "position" else (lambda s: s["objects"][0][attr])
            assert value(first) != value(c.target)
            others = [a for a in ("shape", "colour", "size") if a != attr]
            assert all(first["objects"][0][a] == c.target["objects"][0][a] for a in others)
    assert ac.make_cases("addition", 1)[0].formula().startswith('VE("a ')


# ------------------------------------------------------------------------------------------ success criteria
def _read(shape, colour, size="small", centre=(0.5, 0.5), area=30):
    return ReadObject(sw.SHAPES.index(shape), sw.COLOURS.index(colour), sw.SIZES.index(size), centre, area)


def _case(kind, target, edited=None):
    return ac.ArithmeticCase(kind, ((1.0, "x"),), target, ac.caption(target), False, edited)


def test_addition_needs_exactly_both_objects():
    red = {"shape": "circle", "colour": "red", "size": "small"}
    blue = {"shape": "square", "colour": "blue", "size": "large"}
    case = _case("addition", ac.pair(red, blue, "left of"))
    a, b = _read("circle", "red", "small", (0.3, 0.5)), _read("square", "blue", "large", (0.7, 0.5))
    assert ac.score(case, [a, b]) == {"present_0": True, "present_1": True, "count": True, "success": True,
                                           "strict": True}
    assert not ac.score(case, [a])["success"] and ac.score(case, [a])["present_0"]
    assert not ac.score(case, [a, b, _read("cross", "green")])["success"]  # a third object
    swapped = [_read("circle", "blue", centre=(0.3, 0.5)), _read("square", "red", centre=(0.7, 0.5))]
    assert not ac.score(case, swapped)["success"]  # colours bound to the wrong shapes
    mirrored = ac.score(case, [dataclasses.replace(a, centre=(0.7, 0.5)), dataclasses.replace(b, centre=(0.3, 0.5))])
    assert mirrored["success"] and not mirrored["strict"]  # both there, relation wrong
    assert not ac.score(case, [a, a])["success"]


def test_subtraction_and_edits_need_one_object_with_the_target_attributes():
    red = {"shape": "circle", "colour": "red", "size": "small"}
    sub = _case("subtraction", ac.single(red, "left"))
    left = _read("circle", "red", "small", (0.28, 0.5))
    assert ac.score(sub, [left])["success"] and ac.score(sub, [left])["strict"]
    assert not ac.score(sub, [left, _read("square", "blue", centre=(0.7, 0.5))])["success"]  # B not removed
    assert not ac.score(sub, [_read("square", "blue")])["success"]
    assert not ac.score(sub, [])["success"]
    centre = dataclasses.replace(left, centre=(0.5, 0.5))
    assert ac.score(sub, [centre])["success"] and not ac.score(sub, [centre])["strict"]
    moved = _case("edit_position", ac.single(red, "left"), edited="position")
    assert ac.score(moved, [left])["success"] and not ac.score(moved, [centre])["success"]
    grown = _case("edit_size", ac.single(red, "left"), edited="size")
    assert not ac.score(grown, [dataclasses.replace(left, size=sw.SIZES.index("large"))])["success"]
    recoloured = _case("edit_colour", ac.single(red, "left"), edited="colour")
    assert ac.score(recoloured, [centre])["success"]  # a colour edit does not ask for the position
    assert not ac.score(recoloured, [_read("circle", "blue", centre=(0.28, 0.5))])["success"]


@pytest.fixture(scope="module")
def shipped_judge():
    return registry.load("judge_shapes", get_profile("course", device="cpu"))


def _as_input(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def test_rendered_targets_succeed_and_rendered_operands_do_not(cases, shipped_judge):
    """The criteria on the judge's real readings: a drawing of each target answers its case (strictly, too); a
    drawing of the first operand (addition: A alone; subtraction: the pair; edits: the unedited object) does not."""
    picked = [c for cs in cases.values() for c in cs[:40]]
    reads = read_scenes(shipped_judge, _as_input(ac.render_target([c.target for c in picked])))
    scores = [ac.score(c, r) for c, r in zip(picked, reads)]
    assert all(s["success"] and s["strict"] for s in scores)
    first = [st.parse_caption(c.prompts[0]) for c in picked]
    reads = read_scenes(shipped_judge, _as_input(ac.render_target(first)))
    assert not any(ac.score(c, r)["success"] for c, r in zip(picked, reads))


# ------------------------------------------------------------------------------------------ summaries
def test_summaries_pool_the_edits_and_keep_held_out_apart():
    def fake(kind, n, hits, held):
        cs = [dataclasses.replace(ac.make_cases(kind, 1)[0], heldout=i < held) for i in range(n)]
        return cs, [{"success": i < hits, "strict": False} for i in range(n)]

    per_kind = {}
    for kind, (n, hits, held) in {"addition": (10, 5, 4), "subtraction": (10, 10, 0), "edit_colour": (10, 2, 10),
                                  "edit_shape": (30, 30, 0)}.items():
        per_kind[kind] = ar.summarise(*fake(kind, n, hits, held))
    assert per_kind["addition"]["heldout_combinations"] == {"success": 1.0, "strict": 0.0, "n": 4}
    assert per_kind["addition"]["in_distribution"] == {"success": round(1 / 6, 4), "strict": 0.0, "n": 6}
    assert per_kind["subtraction"]["heldout_combinations"] == {"success": None, "strict": None, "n": 0}
    t = ar.table8(per_kind)
    assert t["all"]["combination"] == pytest.approx(32 / 40)  # pooled by case, not the mean of 0.2 and 1.0
    assert t["all"]["overall"] == pytest.approx(np.mean([0.5, 1.0, 0.8]), abs=1e-4)
    assert t["heldout_combinations"]["subtraction"] is None
    assert t["heldout_combinations"]["overall"] == pytest.approx(np.mean([1.0, 0.2]), abs=1e-4)


def test_config_checks_and_profiles():
    with pytest.raises(ValueError, match="unknown arithmetic kinds"):
        ar.ArithmeticConfig(kinds=("addition", "division"))
    with pytest.raises(ValueError, match="standardisation"):
        ar.ArithmeticConfig(standardisation="zscore")
    for name in ("course", "full"):
        cfg = get_profile(name, device="cpu").arithmetic
        assert cfg.cases_per_kind >= 500 and set(cfg.kinds) == set(ac.KINDS) and cfg.sample is False
        assert cfg.standardisation == "unit" and cfg.guidance_scale is None  # the pipeline's validation-chosen scale
    assert SMOKE.arithmetic.cases_per_kind < 10 and "arithmetic" in catalog.STUDIES
    assert set(ar.controls(ar.ArithmeticConfig())) == {"no_standardisation", "operand_scale", "draws"}
    assert set(ar.controls(ar.ArithmeticConfig(standardisation="none", sample=True))) == {
        "operand_scale", "unit_standardisation", "means"}


# ------------------------------------------------------------------------------------------ smoke end to end
@pytest.fixture(scope="module")
def smoke_pipe(tmp_path_factory):
    old = os.environ.get("CROSSFLOW_CACHE")
    os.environ["CROSSFLOW_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        from crossflow_mini.pipelines import CrossFlowPipeline

        yield CrossFlowPipeline.from_pretrained("t2i_shapes", SMOKE), registry.load("judge_shapes", SMOKE)
    finally:
        if old is None:
            os.environ.pop("CROSSFLOW_CACHE")
        else:
            os.environ["CROSSFLOW_CACHE"] = old


def test_cases_start_from_the_standardised_sum_of_the_prompts_latents(smoke_pipe):
    pipe, judge = smoke_pipe
    cfg = SMOKE.arithmetic
    case = ac.make_cases("edit_colour", 1)[0]
    latents = ar.TextLatents(pipe)
    run = ar.run_cases(pipe, judge, [case], latents, cfg)
    mu = pipe.encode_text(case.prompts, sample=False)
    z = mu[0] - mu[1] + mu[2]
    assert torch.allclose(run.z0[0], (z - z.mean()) / z.std(), atol=1e-4)  # batching order: float rounding only
    assert torch.allclose(latents.mean(case.prompts), mu, atol=1e-5)  # the cache batches differently: rounding
    expected = pipe.decode(pipe.from_text_latents(run.z0, output_type="latent").latents).cpu()
    assert torch.allclose(run.images, expected, atol=1e-5)
    trivial = ar.run_cases(pipe, judge, [case], latents, cfg, trivial=True)
    assert torch.allclose(trivial.z0, pipe.encode_text([case.trivial], sample=False), atol=1e-6)
    draws = latents([case.trivial, case.trivial], sample=True, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(draws[0], draws[1])  # one draw per occurrence


def test_study_runs_end_to_end_on_smoke(smoke_pipe):
    cfg = SMOKE.arithmetic
    out = catalog.run_study("arithmetic", SMOKE)  # finds the smoke checkpoints the fixture trained
    assert set(out["kinds"]) == set(out["trivial"]) == set(ac.KINDS)
    for kind in ac.KINDS:
        assert out["kinds"][kind]["all"]["n"] == cfg.cases_per_kind
        assert (out["kinds"][kind]["in_distribution"]["n"] + out["kinds"][kind]["heldout_combinations"]["n"]
                == cfg.cases_per_kind)
    assert set(out["controls"]) == {"no_standardisation", "operand_scale", "draws"}
    assert out["table8"]["paper_percent"] == ac.PAPER_TABLE8
    assert set(out["table8"]["arithmetic"]["all"]) == {"addition", "subtraction", "combination", "overall"}
    sweep = out["strength_sweep"]
    assert sweep["alpha"] == list(cfg.sweep_alphas) and len(sweep["success"]) == len(cfg.sweep_alphas)
    assert set(out["interpolation"]) >= {"lerp", "slerp", "t"}
    assert out["sampler"]["guidance_scale"] == smoke_pipe[0].sampling.guidance_scale
    # the same cases again on the paper-head reference model, Table 8 rows only
    ref = out["reference"]
    assert ref["checkpoint"] == "t2i_shapes_flatten" and set(ref["kinds"]) == set(out["kinds"])
    assert all(ref["kinds"][k]["all"]["n"] == cfg.cases_per_kind for k in ac.KINDS)
    assert set(ref["table8"]) == set(out["table8"]) and "strength_sweep" not in ref
    assert ref["recipe_hash"] == config_hash(registry.recipe("t2i_shapes_flatten", SMOKE)) != \
        config_hash(registry.recipe("t2i_shapes", SMOKE))
    flatten = registry.load("t2i_shapes_flatten", SMOKE)
    assert ref["sampler"]["guidance_scale"] == registry.find("t2i_shapes_flatten", SMOKE)[1]["metrics"]["chosen_scale"]
    assert flatten.source.cfg.head == "flatten" != smoke_pipe[0].model.source.cfg.head  # a different Text VE head
