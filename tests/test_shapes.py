"""Tests of ShapesWorld (crossflow_mini.datasets.shapes): determinism, captions vs attributes vs pixels,
held-out combinations, coverage of the vocabulary, no overlaps, errors and the torch Dataset."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch

from crossflow_mini.datasets.shapes import ShapesDataConfig
from crossflow_mini.datasets import shapes as sw

CFG = ShapesDataConfig(n_train=600, n_val=100, n_test=400, seed=0)
SIZE_SYNONYMS = {"small": {"small", "little"}, "large": {"large", "big"}}
POSITION_WORDS = {"left": {"left"}, "right": {"right"}, "top": {"top"}, "bottom": {"bottom"},
                  "centre": {"centre", "middle"}}
NUMBER_TOKENS = {2: {"two", "2"}, 3: {"three", "3"}}
RELATION_PATTERN = re.compile(r" (?:is )?(?:to the )?(left of|right of|above|below) ")


@pytest.fixture(scope="module")
def splits() -> dict[str, sw.ShapesWorldSplit]:
    return {split: sw.generate_split(split, CFG) for split in sw.SPLITS}


@pytest.fixture(scope="module")
def train(splits) -> sw.ShapesWorldSplit:
    return splits["train"]


def _arrays(data: sw.ShapesWorldSplit) -> dict[str, np.ndarray]:
    return {k: v for k, v in vars(data).items() if isinstance(v, np.ndarray)}


def _half_extents_px(data: sw.ShapesWorldSplit, size: int) -> np.ndarray:
    return np.where(data.sizes >= 0, np.array(sw.SIZE_HALF_EXTENTS)[np.clip(data.sizes, 0, None)], np.nan) * size


def _words(caption: str) -> list[str]:
    return caption.replace(",", " ").split()


def _objects_named(text: str, obj: list[dict]) -> list[int]:
    """Indices of the objects whose colour and shape are both named in ``text``."""
    words = set(_words(text))
    return [k for k, o in enumerate(obj) if o["colour"] in words and (o["shape"] in words
                                                                    or sw.SHAPE_PLURALS[o["shape"]] in words)]


# ----------------------------------------------------------------------------------------------- basics
def test_vocabulary_constants():
    assert len(sw.SHAPES) >= 4 and len(set(sw.SHAPES)) == len(sw.SHAPES)
    assert len(sw.COLOURS) == 6 and sw.COLOURS == tuple(sw.COLOUR_RGB)
    rgb = np.array([sw.COLOUR_RGB[c] for c in sw.COLOURS] + [sw.BACKGROUND_RGB], dtype=float)
    distances = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1) + np.eye(len(rgb)) * 1e9
    assert distances.min() > 100, "colours (and the background) must be clearly distinct"
    assert sw.SIZES == ("small", "large") and sw.SIZE_HALF_EXTENTS[1] * 32 - sw.SIZE_HALF_EXTENTS[0] * 32 >= 2.5
    assert sw.POSITIONS == ("left", "right", "top", "bottom", "centre")
    assert sw.RELATIONS == ("left of", "right of", "above", "below")
    assert sw.SCENE_KINDS == ("single", "pair", "count") and sw.SPLITS == ("train", "val", "test")
    held_shapes = {s for s, _ in sw.HELDOUT_COMBINATIONS}
    held_colours = {c for _, c in sw.HELDOUT_COMBINATIONS}
    assert held_shapes <= set(sw.SHAPES) and held_colours <= set(sw.COLOURS) and len(held_shapes) >= 4
    assert all(len(t) >= 3 for t in sw.CAPTION_TEMPLATES.values())


def test_shapes_and_dtypes(splits):
    for split, data in splits.items():
        n = getattr(CFG, f"n_{split}")
        assert len(data) == n == len(data.captions) and data.split == split
        assert data.images.shape == (n, 32, 32, 3) and data.images.dtype == np.uint8
        assert data.centres.shape == (n, 3, 2) and data.centres.dtype == np.float32
        for name in ("shapes", "colours", "sizes"):
            assert getattr(data, name).shape == (n, 3) and np.issubdtype(getattr(data, name).dtype, np.integer)
        assert data.heldout.dtype == bool and set(np.unique(data.n_objects)) <= {1, 2, 3}
        present = np.arange(3)[None] < data.n_objects[:, None]
        for name in ("shapes", "colours", "sizes"):
            assert ((getattr(data, name) >= 0) == present).all()
        assert (np.isfinite(data.centres).all(-1) == present).all() and (np.isnan(data.centres[~present])).all()


def test_deterministic_and_seeded(splits):
    again = sw.generate_split("train", CFG)
    for name, value in _arrays(splits["train"]).items():
        np.testing.assert_array_equal(value, getattr(again, name), err_msg=name)
    assert again.captions == splits["train"].captions
    other = sw.generate_split("train", dataclasses.replace(CFG, seed=1))
    assert not np.array_equal(other.images, again.images) and other.captions != again.captions
    assert not np.array_equal(splits["val"].images, splits["train"].images[: CFG.n_val])
    assert sw.split_seed("test", CFG) == CFG.seed * sw.SPLIT_SEED_STRIDE + 2


def test_load_shapes_is_cached_and_read_only():
    a, b = sw.load_shapes("val", CFG), sw.load_shapes("val", CFG)
    assert a is b and not a.images.flags.writeable
    np.testing.assert_array_equal(a.images, sw.generate_split("val", CFG).images)


def test_kinds_balanced_and_vocabulary_covered(train):
    counts = np.bincount(train.kinds, minlength=len(sw.SCENE_KINDS))
    assert counts.min() >= len(train) // len(sw.SCENE_KINDS) - 1
    present = train.shapes >= 0
    assert set(train.shapes[present]) == set(range(len(sw.SHAPES)))
    assert set(train.colours[present]) == set(range(len(sw.COLOURS)))
    assert set(train.sizes[present]) == set(range(len(sw.SIZES)))
    assert set(train.positions[train.kinds == 0]) == set(range(len(sw.POSITIONS)))
    assert set(train.relations[train.kinds == 1]) == set(range(len(sw.RELATIONS)))
    assert set(train.n_objects[train.kinds == 2]) == {2, 3}
    assert (train.positions[train.kinds != 0] == -1).all() and (train.relations[train.kinds != 1] == -1).all()


# ----------------------------------------------------------------------------------------------- captions
def test_captions_agree_with_attributes(splits):
    for data in splits.values():
        for i in range(len(data)):
            attrs = data.attributes(i)
            caption, objs, words = data.captions[i], attrs["objects"], set(_words(data.captions[i]))
            assert words & set(sw.COLOURS) == {o["colour"] for o in objs}, caption
            named_shapes = {w for w in words if w in sw.SHAPES} | {
                s for s, p in sw.SHAPE_PLURALS.items() if p in words}
            assert named_shapes == {o["shape"] for o in objs}, caption
            if attrs["kind"] == "single":
                all_size_words = set().union(*SIZE_SYNONYMS.values())
                assert words & all_size_words and words & all_size_words <= SIZE_SYNONYMS[objs[0]["size"]], caption
                all_pos_words = set().union(*POSITION_WORDS.values())
                assert words & all_pos_words and words & all_pos_words <= POSITION_WORDS[attrs["position"]], caption
            elif attrs["kind"] == "count":
                numbers = words & set().union(*NUMBER_TOKENS.values())
                assert numbers and numbers <= NUMBER_TOKENS[attrs["n_objects"]], caption
                assert sw.SHAPE_PLURALS[objs[0]["shape"]] in words, caption
            else:
                _check_pair_caption(data, i, attrs)


def _check_pair_caption(data: sw.ShapesWorldSplit, i: int, attrs: dict) -> None:
    """The caption's subject really is REL its object in the image (either object may come first)."""
    caption, objs = data.captions[i], attrs["objects"]
    match = RELATION_PATTERN.search(caption)
    assert match, caption
    subject, other = _objects_named(caption[: match.start()], objs), _objects_named(caption[match.end():], objs)
    assert len(subject) == 1 and len(other) == 1 and subject != other, caption
    (xs, ys), (xo, yo) = objs[subject[0]]["centre"], objs[other[0]]["centre"]
    reach = (sw.SIZE_HALF_EXTENTS[sw.SIZES.index(objs[subject[0]]["size"])]
             + sw.SIZE_HALF_EXTENTS[sw.SIZES.index(objs[other[0]]["size"])])  # boxes are apart along the axis
    along, across = {"left of": (xo - xs, yo - ys), "right of": (xs - xo, yo - ys),
                     "above": (yo - ys, xo - xs), "below": (ys - yo, xo - xs)}[match.group(1)]
    assert along > reach and abs(across) < 0.25 * along, (caption, objs)


def test_paraphrases_and_templates(train):
    for i in range(30):
        para = train.paraphrases(i)
        assert train.captions[i] in para and len(para) >= 3 and len(set(para)) == len(para)
    single = next(i for i in range(len(train)) if train.kinds[i] == 0)
    with pytest.raises(ValueError, match="templates"):
        sw.caption_for(train.attributes(single), 99)
    attrs = {"kind": "count", "objects": [{"shape": "square", "colour": "red", "size": "small"}] * 3}
    assert "three red squares" in sw.captions_for(attrs) and "3 red squares" in sw.captions_for(attrs)


def test_attributes_are_plain_python(train):
    attrs = train.attributes(0)
    assert isinstance(attrs["kind"], str) and isinstance(attrs["n_objects"], int)
    assert all(isinstance(v, float) for o in attrs["objects"] for v in o["centre"])
    assert attrs["caption"] == train.captions[0] and attrs["heldout"] is False


# ------------------------------------------------------------------------------------------------ geometry
def test_positions_relations_and_pair_objects_are_readable(splits):
    for data in splits.values():
        single, pair, count = (data.kinds == k for k in range(3))
        np.testing.assert_array_equal(sw.position_of(data.centres[single, 0]), data.positions[single])
        np.testing.assert_array_equal(sw.relation_of(data.centres[pair, 0], data.centres[pair, 1]),
                                      data.relations[pair])
        assert (data.shapes[pair, 0] != data.shapes[pair, 1]).all()
        assert (data.colours[pair, 0] != data.colours[pair, 1]).all()
        for name in ("shapes", "colours", "sizes"):
            values = getattr(data, name)[count]
            assert (values[:, 1] == values[:, 0]).all()
            assert ((values[:, 2] == values[:, 0]) | (values[:, 2] == -1)).all()


def test_objects_inside_and_disjoint(splits):
    for data in splits.values():
        r = _half_extents_px(data, 32) / 32
        present = data.shapes >= 0
        lo, hi = data.centres - r[..., None], data.centres + r[..., None]
        assert (lo[present] > 0).all() and (hi[present] < 1).all()
        masks = sw.render_masks(data.shapes, data.sizes, data.centres, 32)
        assert (masks.sum(axis=1) <= 1 + 1e-6).all()
        for a, b in ((0, 1), (0, 2), (1, 2)):
            assert (masks[:, a] * masks[:, b]).max() == 0, "objects (with their anti-aliased edges) overlap"
        border = np.ones((32, 32), bool)
        border[1:-1, 1:-1] = False
        assert masks[..., border].max() == 0, "objects touch the image border"
        assert (masks.reshape(len(data), 3, -1).max(-1)[present] == 1).all(), "every object is drawn"


def test_pixels_agree_with_attributes(splits):
    background = np.array(sw.BACKGROUND_RGB)
    palette = np.array([sw.COLOUR_RGB[c] for c in sw.COLOURS])
    grid = np.arange(32) + 0.5
    for data in splits.values():
        img = data.images.astype(int)
        n, k = np.nonzero(data.shapes >= 0)
        px = np.floor(data.centres[n, k] * 32).astype(int)
        centre_rgb = img[n, px[:, 1], px[:, 0]]
        assert np.abs(centre_rgb - palette[data.colours[n, k]]).max() <= 1, "object centre has the wrong colour"
        # Pixels more than one pixel outside every object's bounding box show the plain background.
        r = _half_extents_px(data, 32)
        c = data.centres * 32
        dx = np.abs(grid[None, None, None, :] - c[..., 0, None, None]) - r[..., None, None]
        dy = np.abs(grid[None, None, :, None] - c[..., 1, None, None]) - r[..., None, None]
        far = np.nan_to_num(np.maximum(dx, dy), nan=np.inf).min(axis=1) > 1.0
        assert (img[far] == background).all()
        assert far.mean() > 0.3
    # Edges are anti-aliased: some pixels are neither background nor a pure palette colour.
    flat = splits["train"].images.reshape(-1, 3).astype(int)
    pure = (flat[:, None] == np.vstack([palette, background])[None]).all(-1).any(-1)
    assert 0.01 < (~pure).mean() < 0.2


def test_render_reproduces_split_and_scales(train):
    np.testing.assert_array_equal(sw.render(train.shapes[:50], train.colours[:50], train.sizes[:50],
                                            train.centres[:50]), train.images[:50])
    big = sw.generate_split("val", dataclasses.replace(CFG, image_size=64))
    small = sw.generate_split("val", CFG)
    assert big.images.shape == (CFG.n_val, 64, 64, 3) and big.captions == small.captions
    np.testing.assert_array_equal(big.centres, small.centres)
    with pytest.raises(ValueError, match="centres"):
        sw.render([0], [0], [0], [[0.5, 0.5]])


# ----------------------------------------------------------------------------------------------- held-out
def test_heldout_combinations(splits):
    held = np.zeros((len(sw.SHAPES), len(sw.COLOURS)), bool)
    for s, c in sw.HELDOUT_COMBINATIONS:
        held[sw.SHAPES.index(s), sw.COLOURS.index(c)] = True

    def heldout_objects(data):
        present = data.shapes >= 0
        return present & held[np.clip(data.shapes, 0, None), np.clip(data.colours, 0, None)]

    for split in ("train", "val"):
        assert not heldout_objects(splits[split]).any() and not splits[split].heldout.any()
    test = splits["test"]
    per_object = heldout_objects(test)
    np.testing.assert_array_equal(per_object.any(axis=1), test.heldout)
    assert abs(test.heldout.mean() - sw.HELDOUT_TEST_FRACTION) < 0.02
    seen = {(sw.SHAPES[test.shapes[i, k]], sw.COLOURS[test.colours[i, k]]) for i, k in zip(*np.nonzero(per_object))}
    assert seen == set(sw.HELDOUT_COMBINATIONS)
    for kind in range(len(sw.SCENE_KINDS)):
        assert test.heldout[test.kinds == kind].any()
    assert all(test.attributes(i)["heldout"] for i in np.flatnonzero(test.heldout)[:5])


# ------------------------------------------------------------------------------------------------- errors
def test_errors_are_helpful():
    with pytest.raises(ValueError, match="train, val, test"):
        sw.generate_split("training", CFG)
    with pytest.raises(ValueError, match="n_val"):
        sw.generate_split("val", dataclasses.replace(CFG, n_val=0))
    with pytest.raises(ValueError, match="n_train"):
        sw.load_shapes("train", dataclasses.replace(CFG, n_train=-5))
    with pytest.raises(ValueError, match="train, val, test"):
        sw.ShapesWorldDataset("dev", CFG)


# ------------------------------------------------------------------------------------------------ dataset
def test_dataset_items_and_images_tensor():
    ds = sw.ShapesWorldDataset("val", CFG)
    data = sw.load_shapes("val", CFG)
    assert len(ds) == CFG.n_val
    item = ds[3]
    assert set(item) == {"image", "caption", "index"} and item["index"] == 3 and item["caption"] == data.captions[3]
    image = item["image"]
    assert image.dtype == torch.float32 and image.shape == (3, 32, 32)
    assert image.min() >= -1 and image.max() <= 1 and image.min() < 0 < image.max()
    tensor = data.images_tensor()
    assert tensor.shape == (CFG.n_val, 3, 32, 32) and tensor.dtype == torch.float32
    torch.testing.assert_close(tensor[3], image)
    assert ds[-1]["index"] == CFG.n_val - 1
    with pytest.raises(IndexError):
        ds[CFG.n_val]
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=8)))
    assert batch["image"].shape == (8, 3, 32, 32) and len(batch["caption"]) == 8


def test_judge_split_covers_every_combination_and_is_not_train():
    """The judge's own training split holds every (shape, colour) pair, held-out ones included, and shares no
    images with the generators' train split."""
    cfg = ShapesDataConfig(n_train=600, n_val=10, n_test=10)
    judge = sw.generate_split(sw.JUDGE_SPLIT, cfg)
    train = sw.generate_split("train", cfg)
    present = judge.shapes >= 0
    combos = {(sw.SHAPES[s], sw.COLOURS[c]) for s, c in zip(judge.shapes[present], judge.colours[present])}
    assert combos == {(s, c) for s in sw.SHAPES for c in sw.COLOURS}
    assert not (judge.images == train.images).all(axis=(1, 2, 3)).any()


# ------------------------------------------------------------------------------------ shipped captions
# Captions of CFG (seed 0) as the first shipped version wrote them, recorded before the caption grammar moved to
# shapes_text and the rich vocabulary was added: the template vocabulary must keep them bit for bit.
SHIPPED_CAPTIONS = {
    "train": ["there is one large blue circle on the left", "a large blue square below a small red circle",
              "a small yellow cross on the right", "a large green triangle on the left", "2 red triangles",
              "a large cyan diamond to the right of a small blue cross"],
    "val": ["there is one small purple diamond on the right", "two purple diamonds",
            "a blue diamond to the left of a yellow cross", "a big cyan diamond at the bottom of the image",
            "there is one small red square at the bottom", "a small red circle at the top"],
    "test": ["a purple diamond to the left of a cyan triangle", "a little green triangle at the bottom of the image",
             "a cyan triangle to the right of a purple cross",
             "a small cyan triangle to the right of a small red diamond", "there are two cyan squares",
             "a purple square below a red cross"],
}
SHIPPED_CAPTION_SHA256 = {
    "train": "51d3ac500c2217988c211e4ab40e39cec6a3b975627fabe37862b29edc5a4a26",
    "val": "0dbac7bd2d8c7ee271456e8e4262c70555b563194e54c9b4ef6a14bc865cb327",
    "test": "3938587ffd5c07c65ae980a6a8785379e6638fca4ac353f3ea91f0ffe245bed4",
}
SHIPPED_IMAGE_SHA256_PREFIX = {"train": "48d5e55f2d547a74", "val": "c4e3d24a016ca242", "test": "dc6e3a4bc7d04116"}


def test_template_vocabulary_keeps_the_shipped_captions_and_config_hash(splits):
    import hashlib

    from crossflow_mini.configs import config_hash, to_dict

    for split, data in splits.items():
        assert data.captions[:6] == SHIPPED_CAPTIONS[split]
        assert hashlib.sha256("\n".join(data.captions).encode()).hexdigest() == SHIPPED_CAPTION_SHA256[split]
        assert hashlib.sha256(data.images.tobytes()).hexdigest()[:16] == SHIPPED_IMAGE_SHA256_PREFIX[split]
        assert data.vocabulary == "template" and not data.test_only_wording.any()
    # The added field stays out of the JSON (and so out of every shipped checkpoint's config hash) by default.
    assert ShapesDataConfig().vocabulary == "template" and "vocabulary" not in to_dict(ShapesDataConfig())
    assert config_hash(ShapesDataConfig()) == "2bd8957877bf" and config_hash(CFG) == "9548f8c439b0"
    rich = dataclasses.replace(CFG, vocabulary="rich")
    assert to_dict(rich)["vocabulary"] == "rich" and config_hash(rich) != config_hash(CFG)


def test_unknown_vocabulary_is_refused():
    with pytest.raises(ValueError, match="template, rich"):
        sw.generate_split("val", dataclasses.replace(CFG, vocabulary="fancy"))
    with pytest.raises(ValueError, match="template, rich"):
        sw.captions_for({"kind": "count", "objects": []}, "fancy")


def test_subset_keeps_vocabulary_and_wording_flags():
    data = sw.generate_split("test", dataclasses.replace(CFG, vocabulary="rich"))
    part = data.subset(data.test_only_wording)
    assert part.vocabulary == "rich" and len(part) == data.test_only_wording.sum() and part.test_only_wording.all()
    assert part.attributes(0)["test_only_wording"] is True


def test_swapped_pairs_keep_the_words_and_break_the_binding(train):
    """Hard negatives: every pair scene and only those, the same shapes, sizes and colour set, with the colours
    exchanged between the objects (or, for two objects of one colour, their places) - and a different image."""
    rows, images = sw.swapped_pairs(train)
    assert np.array_equal(rows, np.flatnonzero(train.kinds == sw.SCENE_KINDS.index("pair")))
    assert images.shape == (len(rows), *train.images.shape[1:]) and images.dtype == np.uint8
    same = train.colours[rows, 0] == train.colours[rows, 1]
    assert (~same).any()
    for k, i in enumerate(rows):
        c, xy = train.colours[i], train.centres[i]
        if same[k]:  # the places are exchanged: re-render that scene and compare
            expect = sw.render(train.shapes[i:i + 1], c[None], train.sizes[i:i + 1], xy[None][:, [1, 0, 2]],
                               train.images.shape[1])
        else:
            expect = sw.render(train.shapes[i:i + 1], c[None][:, [1, 0, 2]], train.sizes[i:i + 1], xy[None],
                               train.images.shape[1])
        assert np.array_equal(images[k], expect[0])
    assert all(not np.array_equal(images[k], train.images[i]) for k, i in enumerate(rows) if not same[k])
