"""Tests of the ShapesWorld caption grammar (crossflow_mini.datasets.shapes_text): the rich vocabulary changes
only the captions, test-only wording stays in test, every caption parses back to its scene, and every caption
fits the text encoder."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from crossflow_mini.datasets import shapes as sw
from crossflow_mini.datasets import shapes_text as st
from crossflow_mini.datasets.shapes import ShapesDataConfig

CFG = ShapesDataConfig(n_train=1500, n_val=300, n_test=2400, seed=0)
RICH = dataclasses.replace(CFG, vocabulary="rich")


@pytest.fixture(scope="module")
def template() -> dict[str, sw.ShapesWorldSplit]:
    return {split: sw.generate_split(split, CFG) for split in sw.SPLITS}


@pytest.fixture(scope="module")
def rich() -> dict[str, sw.ShapesWorldSplit]:
    return {split: sw.generate_split(split, RICH) for split in sw.SPLITS}


def _words(captions) -> set[str]:
    return {w for c in captions for w in st.normalise(c).split()}


# ------------------------------------------------------------------------------------- same scenes
def test_rich_vocabulary_changes_only_the_captions(template, rich):
    for split in sw.SPLITS:
        a, b = template[split], rich[split]
        arrays = [k for k, v in vars(a).items() if isinstance(v, np.ndarray) and k != "test_only_wording"]
        assert {"images", "kinds", "shapes", "colours", "sizes", "centres", "positions", "relations",
                "heldout"} <= set(arrays)
        for name in arrays:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=f"{split}: {name}")
        assert b.vocabulary == "rich" and len(b.captions) == len(a.captions)
        assert np.mean([x != y for x, y in zip(a.captions, b.captions)]) > 0.8
    judge_cfg = dataclasses.replace(CFG, n_train=300)
    np.testing.assert_array_equal(sw.generate_split(sw.JUDGE_SPLIT, judge_cfg).images,
                                  sw.generate_split(sw.JUDGE_SPLIT, dataclasses.replace(judge_cfg,
                                                                                        vocabulary="rich")).images)


def test_rich_captions_are_deterministic_and_seeded(rich):
    again = sw.generate_split("test", RICH)
    assert again.captions == rich["test"].captions
    np.testing.assert_array_equal(again.test_only_wording, rich["test"].test_only_wording)
    other = sw.generate_split("test", dataclasses.replace(RICH, seed=1))
    assert other.captions != again.captions


def test_rich_captions_vary(rich):
    train = rich["train"]
    words = _words(train.captions)
    for value, nouns in st.SHAPE_NOUNS.items():
        assert {w for noun in nouns for w in noun[0].split()} <= words, value
    for options in (*st.COLOUR_WORDS.values(), *st.SIZE_ADJECTIVES.values()):
        assert set(options) <= words
    assert any(c[0].isupper() for c in train.captions) and any(c.endswith(".") for c in train.captions)
    assert any(c.isupper() for c in train.captions) and any(c == st.normalise(c) for c in train.captions)
    assert len(set(train.captions)) > 0.9 * len(train)


# ---------------------------------------------------------------------------------- test-only wording
def test_test_only_lists_are_consistent():
    novel = st.test_only_words() - st.train_words()
    assert novel == st.TEST_ONLY_WORDS | st.TEST_ONLY_FORM_WORDS
    assert not (st.TEST_ONLY_WORDS & st.TEST_ONLY_FORM_WORDS)
    phrases = [*(p for noun in st.TEST_ONLY_SHAPE_NOUNS.values() for p in noun), *st.TEST_ONLY_COLOUR_WORDS.values(),
               *st.TEST_ONLY_SIZE_ADJECTIVES.values(), *st.TEST_ONLY_POSITION_WORDING.values(),
               *st.TEST_ONLY_RELATION_WORDING.values(), *st.TEST_ONLY_NUMBER_WORDING.values()]
    for phrase in phrases:  # every test-only phrase can be recognised by one of its words
        assert set(phrase.split()) & st.TEST_ONLY_WORDS, phrase
    suffix_words = {w for phrase in st.SUFFIX_RELATION_WORDING.values() for w in phrase.split()}
    for phrase in st.SUFFIX_RELATION_WORDING.values():
        assert set(phrase.split()) & st.TEST_ONLY_FORM_WORDS, phrase
    for form in (f for fs in st.TEST_ONLY_FORMS.values() for f in fs):  # and every test-only form
        assert form not in (f for fs in st.RICH_FORMS.values() for f in fs)
        words = st._form_words([form]) | (suffix_words if "{rel_suffix}" in form else set())
        assert words & st.TEST_ONLY_FORM_WORDS, form
    assert not any("{rel_suffix}" in f for fs in st.RICH_FORMS.values() for f in fs)
    assert set(st.TEST_ONLY_FORMS) == set(st.RICH_FORMS) == set(st.NOVELTY_SITES)


def test_test_only_wording_stays_in_test(rich):
    markers = st.TEST_ONLY_WORDS | st.TEST_ONLY_FORM_WORDS
    for split in ("train", "val"):
        data = rich[split]
        assert not data.test_only_wording.any()
        assert not (_words(data.captions) & markers), split
    test = rich["test"]
    for k, kind in enumerate(sw.SCENE_KINDS):  # about a quarter of each scene kind
        share = test.test_only_wording[test.kinds == k].mean()
        assert abs(share - st.TEST_ONLY_WORDING_FRACTION) < 0.01, kind
    flagged = [c for c, f in zip(test.captions, test.test_only_wording) if f]
    plain = [c for c, f in zip(test.captions, test.test_only_wording) if not f]
    assert all(st.uses_test_only_wording(c) for c in flagged)
    assert not any(st.uses_test_only_wording(c) for c in plain)
    assert markers <= _words(flagged), sorted(markers - _words(flagged))  # every test-only word and form is used
    assert (test.heldout & test.test_only_wording).any() and (~test.heldout & test.test_only_wording).any()


# ------------------------------------------------------------------------------------------- parser
def test_every_caption_parses_back_to_its_scene(template, rich):
    for data in (*template.values(), *rich.values()):
        for i in range(len(data)):
            attrs = data.attributes(i)
            parsed = st.parse_caption(data.captions[i])
            match = st.scene_matches(parsed, attrs)
            assert match["scene"], (data.captions[i], parsed, match)
            assert parsed["kind"] == attrs["kind"] and parsed["n_objects"] == attrs["n_objects"]
            for p in data.paraphrases(i) if i % 10 == 0 else []:
                assert st.scene_matches(st.parse_caption(p), attrs)["scene"], p


def _canonical(attrs: dict) -> tuple:
    """A scene up to the order of a pair's objects: (kind, objects, position, relation)."""
    objects = [(o["shape"], o["colour"], o["size"]) for o in attrs["objects"]]
    relation = attrs["relation"]
    if relation in ("right of", "below"):
        objects, relation = objects[::-1], st.INVERSE_RELATION[relation]
    return attrs["kind"], tuple(objects), attrs["position"], relation


def test_parser_orders_pairs_whatever_the_sentence_order():
    a = {"shape": "circle", "colour": "red", "size": "small"}
    b = {"shape": "square", "colour": "blue", "size": "large"}
    scene = {"kind": "pair", "objects": [a, b], "relation": "left of", "position": None}
    expected = [{**a, "size": None}, {**b, "size": None}]
    for text in ("a red circle to the left of a blue square", "left of a blue square there is a red circle",
                 "a blue square with a red circle to its left", "a scarlet disc further left than a cobalt box"):
        parsed = st.parse_caption(text)
        assert parsed["objects"] == expected and parsed["relation"] == "left of", text
        assert st.scene_matches(parsed, scene)["scene"]
    parsed = st.parse_caption("A blue square to the right of a red circle.")
    assert parsed["objects"] == expected[::-1] and parsed["relation"] == "right of"
    assert st.scene_matches(parsed, scene)["relation"]  # the same scene, read from the other object
    sized = st.parse_caption("a small red circle left of a big blue square")
    assert [o["size"] for o in sized["objects"]] == ["small", "large"]


def test_parser_refuses_what_it_cannot_read():
    for text in ("", "a red", "a purple elephant on the left", "two red circle", "red circles", "a red blue circle",
                 "a red circle on the left above a blue square", "a red circle a blue square a green cross",
                 "two red squares on the left", "a red circle above a blue square below a green cross",
                 "a red circle a blue square to its left above"):
        assert st.parse_caption(text) is None, text
    assert st.scene_matches(None, {"kind": "single", "objects": [], "position": "left", "relation": None}) == {
        "parsed": False, "kind": False, "count": False, "shapes": False, "colours": False, "objects": False,
        "sizes": None, "position": False, "relation": None, "scene": False}


def test_scene_matches_finds_each_wrong_part(template):
    data = template["test"]
    single, pair, count = (int(np.flatnonzero(data.kinds == k)[0]) for k in range(3))
    s, p, c = data.attributes(single), data.attributes(pair), data.attributes(count)
    other_colour = lambda colour: next(x for x in sw.COLOURS if x != colour)  # noqa: E731

    def fails(attrs: dict, text: str, *keys: str) -> None:
        match = st.scene_matches(st.parse_caption(text), attrs)
        assert match["parsed"] and not match["scene"], (text, match)
        assert [k for k in match if match[k] is False] == list(keys), (text, match)

    o = s["objects"][0]
    base = f"a {o['size']} {o['colour']} {o['shape']} {st.POSITION_PHRASES[s['position']][0]}"
    assert st.scene_matches(st.parse_caption(base), s)["scene"]
    fails(s, base.replace(o["colour"], other_colour(o["colour"])), "colours", "objects", "scene")
    wrong_size = {"small": "large", "large": "small"}[o["size"]]
    fails(s, base.replace(f" {o['size']} ", f" {wrong_size} "), "sizes", "scene")
    wrong_pos = next(x for x in sw.POSITIONS if x != s["position"])
    fails(s, base.replace(st.POSITION_PHRASES[s["position"]][0], st.POSITION_PHRASES[wrong_pos][0]), "position",
          "scene")
    a, b = p["objects"]
    text = f"a {a['colour']} {a['shape']} {st.RELATION_PHRASES[p['relation']]} a {b['colour']} {b['shape']}"
    assert st.scene_matches(st.parse_caption(text), p)["scene"]
    wrong_rel = st.INVERSE_RELATION[p["relation"]]
    fails(p, text.replace(st.RELATION_PHRASES[p["relation"]], st.RELATION_PHRASES[wrong_rel]), "relation", "scene")
    swapped = f"a {b['colour']} {a['shape']} {st.RELATION_PHRASES[p['relation']]} a {a['colour']} {b['shape']}"
    fails(p, swapped, "objects", "scene")  # right shapes and colours, wrong binding
    n, q = c["n_objects"], c["objects"][0]
    text = f"{st.NUMBER_WORDS[n]} {q['colour']} {st.SHAPE_PLURALS[q['shape']]}"
    assert st.scene_matches(st.parse_caption(text), c)["scene"]
    fails(c, text.replace(st.NUMBER_WORDS[n], st.NUMBER_WORDS[5 - n]), "count", "scene")
    fails(c, f"a {q['colour']} {q['shape']} on the left", "kind", "count", "scene")


def test_scene_matches_tells_different_scenes_apart(rich):
    data = rich["val"]
    rng = np.random.default_rng(0)
    other = rng.permutation(len(data))
    different = 0
    for i, j in zip(range(len(data)), other):
        a, b = data.attributes(i), data.attributes(int(j))
        match = st.scene_matches(st.parse_caption(data.captions[i]), b)
        sizes_said = any(o["size"] for o in st.parse_caption(data.captions[i])["objects"])
        same = _canonical(a) == _canonical(b) or (
            not sizes_said and _canonical({**a, "objects": [{**o, "size": None} for o in a["objects"]]})
            == _canonical({**b, "objects": [{**o, "size": None} for o in b["objects"]]}))
        assert match["scene"] == same, (data.captions[i], b)
        different += not same
    assert different > 0.9 * len(data)


def test_every_word_names_one_thing(monkeypatch):
    lexicon = st._lexicon()
    assert lexicon[("scarlet",)] == ("colour", "red") and lexicon[("further", "left", "than")] == ("relation",
                                                                                                  "left of")
    assert lexicon[("a", "pair", "of")] == ("number", 2) and lexicon[("plus", "sign")] == ("shape", ("cross", False))
    monkeypatch.setitem(st.COLOUR_WORDS, "blue", ("blue", "cobalt", "scarlet"))
    with pytest.raises(ValueError, match="scarlet"):
        st._lexicon()


# --------------------------------------------------------------------------------------- paraphrases
def test_rich_paraphrases(rich):
    data = rich["test"]
    for i in range(0, len(data), 97):
        para = data.paraphrases(i)
        assert para[0] == data.captions[i] and len(para) >= 8 and len(set(map(st.normalise, para))) == len(para)
        assert not any(st.uses_test_only_wording(p) for p in para[1:])
        assert all(p == st.normalise(p) for p in para[1:])
    attrs = {"kind": "count", "objects": [{"shape": "square", "colour": "red", "size": "small"}] * 3}
    assert "three red squares" in sw.captions_for(attrs, "rich") and sw.captions_for(attrs) == st.template_captions(
        attrs)


# --------------------------------------------------------------------------------------- caption length
@pytest.fixture(scope="module")
def tokenizer():
    from crossflow_mini.nn.text_encoder import load_minilm

    return load_minilm()[0]


def test_word_pieces_table_matches_minilm(tokenizer):
    for word in st.all_words():
        assert len(tokenizer.tokenize(word)) == st.WORD_PIECES.get(word, 1), word
    assert len(tokenizer.tokenize(".")) == 1


def test_every_caption_fits_minilm(rich, template, tokenizer):
    captions = [c for data in (*rich.values(), *template.values()) for c in data.captions]
    captions += [p for data in rich.values() for i in range(0, len(data), 50) for p in data.paraphrases(i)]
    lengths = [len(ids) for ids in tokenizer(captions)["input_ids"]]
    assert lengths == [st.caption_tokens(c) for c in captions]
    assert st.MAX_CAPTION_TOKENS == 16  # the shipped text encoders keep 16 tokens
    assert max(lengths) == 16  # the budget is used, and kept


def test_every_scene_has_a_caption_that_fits():
    """The last resort of rich_caption exists for every scene and every test-only site (longest words)."""
    long_shapes, long_colours = ("diamond", "triangle", "cross"), ("purple", "cyan")
    objects = [{"shape": s, "colour": c, "size": z} for s in sw.SHAPES for c in sw.COLOURS for z in sw.SIZES]
    long_objects = [o for o in objects if o["shape"] in long_shapes and o["colour"] in long_colours]
    scenes = [{"kind": "single", "objects": [o], "position": p, "relation": None} for o in objects
              for p in sw.POSITIONS]
    scenes += [{"kind": "pair", "objects": [a, b], "position": None, "relation": r}
               for a, b in itertools.product(long_objects, repeat=2)
               if a["shape"] != b["shape"] and a["colour"] != b["colour"] for r in sw.RELATIONS]
    scenes += [{"kind": "count", "objects": [o] * n, "position": None, "relation": None}
               for o in objects if o["size"] == "small" for n in (2, 3)]
    for scene in scenes:
        for site in (None, *st.NOVELTY_SITES[scene["kind"]]):
            text = st.shortest_caption(scene, site)
            assert st.caption_tokens(text) <= st.MAX_CAPTION_TOKENS
            assert st.uses_test_only_wording(text) == (site is not None), (site, text)
            assert st.scene_matches(st.parse_caption(text), scene)["scene"], text
