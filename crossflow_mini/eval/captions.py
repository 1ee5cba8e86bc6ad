"""Caption metrics (the paper's Table 4: BLEU-4, ROUGE-L, CIDEr-D), a scene-level caption score, and the word
vocabulary of a ShapesWorld caption decoder.

Every metric compares each candidate caption with several references of the same image (COCO has five; on
ShapesWorld, ``ShapesWorldSplit.paraphrases(i)`` gives them). Texts are normalised first as the COCO evaluation's
PTB tokenizer does (lower case, punctuation removed; :func:`~crossflow_mini.datasets.shapes_text.normalise`).
Scores are reported on the paper's scale, x 100.

* BLEU-4 (Papineni et al., 2002): torchmetrics' ``bleu_score``, corpus level, n-gram counts clipped by the
  largest count in any reference, brevity penalty against the reference length closest to the candidate's
  (references are passed shortest first so that ties go to the shorter one, as in the COCO code).
* ROUGE-L: implemented here as in the COCO evaluation code: per image, the LCS precision and recall are each
  maximised over the references, then ``F = (1 + b^2) P R / (R + b^2 P)`` with ``b = 1.2``; averaged over images.
  (torchmetrics' ``ROUGEScore`` runs offline for ``rougeL``, but it scores F1 per reference and keeps the best,
  which is not the COCO number.)
* CIDEr-D (Vedantam et al., 2015): implemented here after the COCO evaluation code (no package for it is
  installed; pycocoevalcap also needs Java for its other metrics): TF-IDF vectors of 1- to 4-grams with document
  frequencies over the images' REFERENCE sets, candidate counts clipped by the reference's, a Gaussian penalty
  (sigma 6) on the difference of lengths, cosine per n averaged over n and over references, x 10.

METEOR and SPICE need Java (and SPICE a parser model): they are quoted from the paper, not computed.

:func:`scene_scores` goes further than n-gram overlap where the grammar allows it: it parses each caption back
into a scene (:func:`~crossflow_mini.datasets.shapes_text.parse_caption`) and checks it against the image's true
attributes, so a correct caption in other words counts as correct.

:class:`CaptionVocab` is the word-level vocabulary of a caption decoder. A word-level vocabulary (not word
pieces) is fine here because the grammar is closed: every word a caption of either vocabulary can hold is known
in advance (:func:`~crossflow_mini.datasets.shapes_text.all_words`, about 120 words), so there are no
out-of-vocabulary words to split, sequences stay as short as the captions, and each output step is one readable
word. Open-vocabulary text (COCO) would need subwords instead.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Sequence

import numpy as np
import torch

from ..datasets.shapes_text import MAX_CAPTION_TOKENS, all_words, normalise, parse_caption, scene_matches

#: The paper's Table 4 (COCO Karpathy test split, x 100), quoted as the paper's, next to ours; a different data set
#: and scale. SCD-Net is the best non-autoregressive captioner the paper lists.
PAPER_CAPTIONING: dict[str, dict[str, float]] = {
    "CrossFlow (paper)": {"BLEU-4": 36.4, "METEOR": 27.8, "ROUGE-L": 57.1, "CIDEr": 116.2, "SPICE": 20.4},
    "SCD-Net (paper, non-autoregressive SOTA)": {"BLEU-4": 37.3, "CIDEr": 118.0},
}
ROUGE_BETA = 1.2
CIDER_N = 4
CIDER_SIGMA = 6.0


def _tokens(text: str) -> list[str]:
    return normalise(text).split()


def _check(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    if isinstance(candidates, str):
        raise TypeError("pass a list of candidate captions, one per image, not a single string")
    if len(candidates) != len(references) or not candidates:
        raise ValueError(f"need one list of references per candidate, got {len(candidates)} candidates and "
                         f"{len(references)} reference lists")
    for i, refs in enumerate(references):
        if isinstance(refs, str) or not refs:
            raise ValueError(f"image {i}: give a non-empty list of reference captions")


# ------------------------------------------------------------------------------------------------- BLEU
def bleu4(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 in [0, 1] (torchmetrics), texts normalised, ties of the closest reference length going to
    the shorter reference (as in the COCO code)."""
    _check(candidates, references)
    from torchmetrics.functional.text import bleu_score

    preds = [" ".join(_tokens(c)) for c in candidates]
    target = [sorted((" ".join(_tokens(r)) for r in refs), key=lambda r: len(r.split())) for refs in references]
    return float(bleu_score(preds, target, n_gram=4))


# ---------------------------------------------------------------------------------------------- ROUGE-L
def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (dynamic programming)."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l_scores(candidates: Sequence[str], references: Sequence[Sequence[str]],
                   beta: float = ROUGE_BETA) -> np.ndarray:
    """ROUGE-L of each image in [0, 1], as in the COCO evaluation code: max LCS precision and max LCS recall over
    the references, combined as ``(1 + beta^2) P R / (R + beta^2 P)``."""
    _check(candidates, references)
    scores = []
    for cand, refs in zip(candidates, references):
        c = _tokens(cand)
        lcs = [(lcs_length(r, c), len(r)) for r in map(_tokens, refs)]
        p = max((n / len(c) if c else 0.0) for n, _ in lcs)
        r = max((n / m if m else 0.0) for n, m in lcs)
        scores.append((1 + beta ** 2) * p * r / (r + beta ** 2 * p) if p > 0 and r > 0 else 0.0)
    return np.array(scores)


def rouge_l(candidates: Sequence[str], references: Sequence[Sequence[str]], beta: float = ROUGE_BETA) -> float:
    """Mean ROUGE-L over images, in [0, 1] (see :func:`rouge_l_scores`)."""
    return float(rouge_l_scores(candidates, references, beta).mean())


# ---------------------------------------------------------------------------------------------- CIDEr-D
def _ngrams(words: list[str], n: int) -> Counter:
    return Counter(tuple(words[i:i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


def cider_d_scores(candidates: Sequence[str], references: Sequence[Sequence[str]], n: int = CIDER_N,
                   sigma: float = CIDER_SIGMA) -> np.ndarray:
    """CIDEr-D of each image (COCO's scale: 10 x the mean cosine; its corpus mean is the reported number / 100).

    For each n-gram g: ``tf-idf = count(g) * (log(N) - log(max(1, df(g))))`` with N the number of images and
    df(g) the number of images whose references contain g. For each reference and each n in 1..4:
    ``sum_g min(c_g, r_g) r_g / (|c| |r|)`` (clipped cosine of the candidate and reference vectors, 0 if either is
    empty), times ``exp(-(len_c - len_r)^2 / (2 sigma^2))``; mean over n, mean over references, x 10. As in the
    COCO code, the length of a sentence is its number of bigrams (words - 1: the same differences)."""
    _check(candidates, references)
    cands = [_ngrams(_tokens(c), n) for c in candidates]
    refs = [[_ngrams(_tokens(r), n) for r in rs] for rs in references]
    df: Counter = Counter()
    for rs in refs:
        df.update({g for r in rs for g in r})
    log_n = math.log(len(refs))

    def vector(counts: Counter) -> tuple[list[dict], np.ndarray, int]:
        vec: list[dict] = [{} for _ in range(n)]
        for g, tf in counts.items():
            vec[len(g) - 1][g] = tf * (log_n - math.log(max(1.0, df[g])))
        norms = np.array([math.sqrt(sum(v * v for v in d.values())) for d in vec])
        length = sum(tf for g, tf in counts.items() if len(g) == 2)
        return vec, norms, length

    scores = []
    for cand, rs in zip(cands, refs):
        vc, nc, lc = vector(cand)
        total = np.zeros(n)
        for r in rs:
            vr, nr, lr = vector(r)
            for k in range(n):
                dot = sum(min(w, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0) for g, w in vc[k].items())
                if nc[k] > 0 and nr[k] > 0:
                    total[k] += dot / (nc[k] * nr[k]) * math.exp(-((lc - lr) ** 2) / (2 * sigma ** 2))
        scores.append(10.0 * total.mean() / len(rs))
    return np.array(scores)


def cider_d(candidates: Sequence[str], references: Sequence[Sequence[str]], n: int = CIDER_N,
            sigma: float = CIDER_SIGMA) -> float:
    """Corpus CIDEr-D: the mean of :func:`cider_d_scores` (COCO's scale, where the paper's 116.2 is 1.162)."""
    return float(cider_d_scores(candidates, references, n, sigma).mean())


# ---------------------------------------------------------------------------------------------- together
def caption_metrics(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """BLEU-4, ROUGE-L and CIDEr-D on the paper's scale (x 100), keyed as in :data:`PAPER_CAPTIONING`."""
    return {"BLEU-4": 100 * bleu4(candidates, references), "ROUGE-L": 100 * rouge_l(candidates, references),
            "CIDEr": 100 * cider_d(candidates, references)}


def scene_scores(candidates: Sequence[str], attributes: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Share of captions that parse and get each part of the scene right (``scene``: all of it), from
    :func:`~crossflow_mini.datasets.shapes_text.scene_matches`; parts that do not apply to a scene (a position
    for a pair, a size the caption does not state) are left out of that part's mean."""
    if len(candidates) != len(attributes) or not candidates:
        raise ValueError(f"need one attributes dict per caption, got {len(candidates)} and {len(attributes)}")
    rows = [scene_matches(parse_caption(c), a) for c, a in zip(candidates, attributes)]
    out: dict[str, float] = {}
    for key in rows[0]:
        values = [r[key] for r in rows if r[key] is not None]
        out[key] = float(np.mean(values)) if values else float("nan")
    out["n"] = float(len(rows))
    return out


# ------------------------------------------------------------------------------------------ decoder vocab
class CaptionVocab:
    """Word-level vocabulary of a caption decoder: ``<pad>`` (0), ``<bos>`` (1), ``<eos>`` (2), ``<unk>`` (3),
    then the words of the grammar in sorted order. :meth:`encode` gives ``<bos> words <eos> <pad>...`` of a fixed
    length ``max_len`` (default: :data:`MAX_CAPTION_TOKENS`, which every caption of the grammar fits in, since a
    caption within that many MiniLM tokens has at most two words fewer)."""

    SPECIALS: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", "<unk>")
    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    def __init__(self, words: Sequence[str], max_len: int = MAX_CAPTION_TOKENS) -> None:
        words = sorted(set(words) - set(self.SPECIALS))
        if any(not w or w != normalise(w) or " " in w for w in words):
            raise ValueError("vocabulary words must be single, normalised (lower-case, unpunctuated) words")
        if max_len < 3:
            raise ValueError(f"max_len must leave room for <bos>, a word and <eos>, got {max_len}")
        self.itos: list[str] = [*self.SPECIALS, *words]
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}
        self.max_len = max_len

    @classmethod
    def from_grammar(cls, max_len: int = MAX_CAPTION_TOKENS) -> "CaptionVocab":
        """Every word of the ShapesWorld grammar, both vocabularies and the test-only wording included."""
        return cls(all_words(), max_len)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, captions: str | Sequence[str]) -> torch.Tensor:
        """Token ids ``(B, max_len)`` (or ``(max_len,)`` for one string); unknown words become ``<unk>``."""
        single = isinstance(captions, str)
        rows = []
        for text in [captions] if single else captions:
            words = normalise(text).split()
            if len(words) + 2 > self.max_len:
                raise ValueError(f"{text!r} has {len(words)} words; at most {self.max_len - 2} fit in max_len "
                                 f"{self.max_len} with <bos> and <eos>")
            ids = [self.bos_id, *(self.stoi.get(w, self.unk_id) for w in words), self.eos_id]
            rows.append(ids + [self.pad_id] * (self.max_len - len(ids)))
        out = torch.tensor(rows, dtype=torch.long)
        return out[0] if single else out

    def decode(self, ids: torch.Tensor | Sequence[Sequence[int]] | Sequence[int]) -> list[str] | str:
        """Captions from token ids ``(B, L)`` (a string for a single ``(L,)`` row): the words up to the first
        ``<eos>``, without ``<bos>`` and ``<pad>``."""
        rows = ids.tolist() if isinstance(ids, torch.Tensor) else [list(r) if not isinstance(r, int) else r
                                                                   for r in ids]
        single = bool(rows) and isinstance(rows[0], int)
        out = []
        for row in [rows] if single else rows:
            words = []
            for i in row:
                if i == self.eos_id:
                    break
                if i not in (self.bos_id, self.pad_id):
                    words.append(self.itos[i])
            out.append(" ".join(words))
        return out[0] if single else out


__all__ = ["PAPER_CAPTIONING", "ROUGE_BETA", "CIDER_N", "CIDER_SIGMA", "bleu4", "lcs_length", "rouge_l_scores",
           "rouge_l", "cider_d_scores", "cider_d", "caption_metrics", "scene_scores", "CaptionVocab"]
