"""Tests of the caption metrics and the decoder vocabulary (crossflow_mini.eval.captions): BLEU-4, ROUGE-L and
CIDEr-D against examples worked by hand, the scene score, and CaptionVocab."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crossflow_mini.datasets import shapes as sw
from crossflow_mini.datasets import shapes_text as st
from crossflow_mini.eval import captions as cm

CFG = sw.ShapesDataConfig(n_train=10, n_val=200, n_test=10, seed=0)


# ----------------------------------------------------------------------------------------------- BLEU-4
def test_bleu4_worked_example():
    """Candidate "a red circle on the left side" (7 words) against two references.

    Clipped matches: 1-grams 7/7, 2-grams 6/6, 3-grams 5/5, 4-grams 3/4 ("on the left side" is in neither).
    The reference lengths 8 and 6 are equally close to 7: as in the COCO code the shorter wins, so the candidate
    is longer than its reference and there is no brevity penalty: BLEU-4 = (1 * 1 * 1 * 3/4) ** (1/4)."""
    refs = [["a big red circle at the left side", "a red circle on the left"]]
    assert cm.bleu4(["A red circle on the left side."], refs) == pytest.approx(0.75 ** 0.25, rel=1e-6)
    # A candidate shorter than its closest reference (5 < 6) pays exp(1 - 6/5); all its n-grams match.
    assert cm.bleu4(["a red circle on the"], [["a red circle on the left"]]) == pytest.approx(math.exp(1 - 6 / 5),
                                                                                             rel=1e-6)
    assert cm.bleu4(["a green square"], [["a red circle on the left"]]) == 0.0


# ---------------------------------------------------------------------------------------------- ROUGE-L
def test_lcs_length():
    assert cm.lcs_length("a b c d".split(), "a c d".split()) == 3
    assert cm.lcs_length("a red disc at the left".split(), "a red circle on the left".split()) == 4
    assert cm.lcs_length([], ["a"]) == 0 and cm.lcs_length("x y".split(), "y x".split()) == 1


def test_rouge_l_worked_example():
    """Candidate "a red circle on the left" (6 words). Reference 1 "a small red circle on the left" (7 words):
    LCS 6, P = 1, R = 6/7. Reference 2 "a red disc at the left": LCS 4 ("a red the left"), P = R = 4/6.
    COCO takes max P = 1 and max R = 6/7 over the references: F = (1 + 1.44) * 1 * 6/7 / (6/7 + 1.44 * 1)
    = 14.64 / 16.08."""
    refs = [["a small red circle on the left", "a red disc at the left"]]
    assert cm.rouge_l(["A red circle on the left."], refs) == pytest.approx(14.64 / 16.08, rel=1e-12)
    # Averaged over images; no common word scores 0.
    both = cm.rouge_l_scores(["a red circle on the left", "a green square"], refs + [["two blue crosses"]])
    np.testing.assert_allclose(both, [14.64 / 16.08, 0.0])


def test_rouge_l_with_beta_one_matches_torchmetrics_f1():
    """With one reference and beta = 1, COCO's ROUGE-L is the plain LCS F1 that torchmetrics computes."""
    from torchmetrics.functional.text import rouge_score

    pairs = [("a red circle on the left", "there is one small red circle on the left"),
             ("two blue squares", "a group of three blue squares"), ("a cyan cross above a red disc",
                                                                     "a red disc below a cyan cross")]
    for cand, ref in pairs:
        expected = float(rouge_score(cand, ref, rouge_keys="rougeL")["rougeL_fmeasure"])
        assert cm.rouge_l([cand], [[ref]], beta=1.0) == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------------------------------------- CIDEr-D
def test_cider_d_worked_example():
    """Three images; document frequencies over the references. With N = 3, idf = log 3 - log df:
    "a" is in every image (idf 0), "red", "square", "a red" in two (idf log 1.5 = l15), everything else in one
    or none (idf log 3 = l3). Length = number of bigrams; penalty exp(-delta^2 / 72).

    Image 1, "a red circle" vs "a red circle" (cosine 1 for n = 1, 2, 3; 0 for n = 4) and vs "a red disc"
    (n = 1 and n = 2: l15^2 / (l15^2 + l3^2) = s): 10 * ((3 + 2 s) / 4) / 2.
    Image 2, "a blue blue square" vs "a blue square": "blue" clipped to the reference's count;
    n = 1: (l3^2 + l15^2) / (sqrt(4 l3^2 + l15^2) sqrt(l3^2 + l15^2)); n = 2: 2 l3^2 / (sqrt(3) l3 sqrt(2) l3);
    n = 3: no common trigram; n = 4: the reference has none. Lengths 3 vs 2: 10 * exp(-1/72) (c1 + c2) / 4.
    Image 3, "a square" vs "a red square": n = 1: l15^2 / (l15 * sqrt(2) l15); lengths 1 vs 2."""
    cands = ["a red circle", "a blue blue square", "a square"]
    refs = [["a red circle", "a red disc"], ["a blue square"], ["a red square"]]
    l3, l15 = math.log(3), math.log(1.5)
    s = l15 ** 2 / (l15 ** 2 + l3 ** 2)
    image1 = 10 * (3 + 2 * s) / 4 / 2
    c1 = (l3 ** 2 + l15 ** 2) / (math.sqrt(4 * l3 ** 2 + l15 ** 2) * math.sqrt(l3 ** 2 + l15 ** 2))
    c2 = 2 / math.sqrt(6)
    image2 = 10 * math.exp(-1 / 72) * (c1 + c2) / 4
    image3 = 10 * math.exp(-1 / 72) * (1 / math.sqrt(2)) / 4
    np.testing.assert_allclose(cm.cider_d_scores(cands, refs), [image1, image2, image3], rtol=1e-12)
    assert cm.cider_d(cands, refs) == pytest.approx((image1 + image2 + image3) / 3, rel=1e-12)
    assert cm.cider_d(["A red circle.", "a blue blue square", "a square"], refs) == cm.cider_d(cands, refs)


def test_cider_d_needs_more_than_one_image_and_rewards_the_right_caption():
    # One image: every idf is log 1 - log 1 = 0, so CIDEr is 0 whatever the caption (as in the COCO code).
    assert cm.cider_d(["a red circle"], [["a red circle"]]) == 0.0
    data = sw.generate_split("val", CFG)
    refs = [data.paraphrases(i) for i in range(len(data))]
    right = cm.cider_d([data.captions[i] for i in range(len(data))], refs)
    wrong = cm.cider_d([data.captions[(i + 1) % len(data)] for i in range(len(data))], refs)
    assert right > 3 * wrong and right > 1.0


# ----------------------------------------------------------------------------------------- all together
def test_caption_metrics_and_paper_numbers():
    data = sw.generate_split("val", CFG)
    refs = [data.paraphrases(i) for i in range(len(data))]
    own = cm.caption_metrics(data.captions, refs)
    shuffled = cm.caption_metrics(data.captions[1:] + data.captions[:1], refs)
    assert set(own) == {"BLEU-4", "ROUGE-L", "CIDEr"}
    assert own["BLEU-4"] == pytest.approx(100.0) and own["ROUGE-L"] == pytest.approx(100.0)
    assert all(own[k] > shuffled[k] for k in own)
    paper = cm.PAPER_CAPTIONING["CrossFlow (paper)"]
    assert paper == {"BLEU-4": 36.4, "METEOR": 27.8, "ROUGE-L": 57.1, "CIDEr": 116.2, "SPICE": 20.4}
    assert cm.PAPER_CAPTIONING["SCD-Net (paper, non-autoregressive SOTA)"] == {"BLEU-4": 37.3, "CIDEr": 118.0}
    with pytest.raises(ValueError, match="one list of references"):
        cm.bleu4(["a"], [["a"], ["b"]])
    with pytest.raises(TypeError, match="list of candidate"):
        cm.cider_d("a red circle", [["a red circle"]])


def test_scene_scores():
    data = sw.generate_split("val", sw.ShapesDataConfig(n_val=200, vocabulary="rich"))
    attrs = [data.attributes(i) for i in range(len(data))]
    right = cm.scene_scores(data.captions, attrs)
    assert right["scene"] == 1.0 and right["parsed"] == 1.0 and right["n"] == len(data)
    wrong = cm.scene_scores(data.captions[1:] + data.captions[:1], attrs)
    assert wrong["scene"] < 0.1 and wrong["parsed"] == 1.0 and 0.2 < wrong["kind"] < 0.5
    garbled = cm.scene_scores(["a purple elephant"] + data.captions[1:], attrs)
    assert garbled["parsed"] == pytest.approx(1 - 1 / len(data))


# ---------------------------------------------------------------------------------------- CaptionVocab
def test_caption_vocab_round_trip():
    vocab = cm.CaptionVocab.from_grammar()
    assert vocab.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"] and len(vocab) == 4 + len(st.all_words())
    assert vocab.max_len == st.MAX_CAPTION_TOKENS
    captions = [c for vocabulary in ("template", "rich") for split in sw.SPLITS
                for c in sw.generate_split(split, sw.ShapesDataConfig(n_train=300, n_val=300, n_test=600,
                                                                      vocabulary=vocabulary)).captions]
    ids = vocab.encode(captions)
    assert ids.shape == (len(captions), vocab.max_len) and ids.dtype == torch.long
    assert (ids[:, 0] == vocab.bos_id).all() and not (ids == vocab.unk_id).any()
    assert ((ids == vocab.eos_id).sum(1) == 1).all()
    assert vocab.decode(ids) == [st.normalise(c) for c in captions]
    one = vocab.encode("Two red squares.")
    assert one.shape == (vocab.max_len,) and vocab.decode(one) == "two red squares"
    assert one.tolist()[:5] == [1, vocab.stoi["two"], vocab.stoi["red"], vocab.stoi["squares"], 2]
    assert vocab.decode([[1, vocab.stoi["red"], 2, vocab.stoi["circle"]]]) == ["red"]  # stops at <eos>
    assert vocab.decode(vocab.encode("a red elephant")) == "a red <unk>"
    with pytest.raises(ValueError, match="at most 14"):
        vocab.encode(" ".join(["red"] * 15))
    with pytest.raises(ValueError, match="single, normalised"):
        cm.CaptionVocab(["Red"])
