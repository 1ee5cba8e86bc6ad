"""The ShapesWorld caption grammar in one place: the words, the sentence forms, and a parser that reads them back.

Two vocabularies (``ShapesDataConfig.vocabulary``):

* ``"template"`` - the closed template set of the first shipped version (:data:`CAPTION_TEMPLATES`), kept bit for
  bit so every shipped checkpoint keeps its data and its config hash.
* ``"rich"`` - the prompts a person would write: several words for every attribute value (:data:`SHAPE_NOUNS`,
  :data:`COLOUR_WORDS`, :data:`SIZE_ADJECTIVES`, :data:`POSITION_WORDING`, :data:`RELATION_WORDING`,
  :data:`NUMBER_WORDING`), many sentence forms (:data:`RICH_FORMS`), upper/lower case, an optional full stop.
  One more word per attribute value (``TEST_ONLY_*``) and a few sentence forms (:data:`TEST_ONLY_FORMS`) appear
  ONLY in ``test`` captions (about :data:`TEST_ONLY_WORDING_FRACTION` of them, spread over the scene kinds), so
  accuracy on wording a model never saw can be reported apart. Every test-only phrase holds a word that no
  train/val wording uses (:data:`TEST_ONLY_WORDS`, :data:`TEST_ONLY_FORM_WORDS`): :func:`uses_test_only_wording`
  tells them apart from the text alone.

Every word names one attribute value only (checked when the parser's lexicon is built), so a caption means one
scene. Words left out on purpose, because they would name another value here or describe something not drawn:

* ``ring``, ``oval``, ``ball`` - a ring is hollow, an oval elongated, a ball round in 3-D; the circles are flat discs.
* ``x`` / ``x-shape`` - an X is a diagonal cross; the crosses here are upright plus signs (and "x" reads as "times").
* ``rectangle`` (a square is one, but asking for a rectangle means an elongated one), ``tilted square`` (names a
  square word for the diamond), ``kite`` (unequal sides).
* ``azure``, ``sky blue``, ``light blue`` - between the blue and the cyan of the palette; ``navy`` and ``teal`` -
  dark, the palette is bright; ``magenta``, ``pink`` - another hue; ``lilac``, ``lavender`` - pale.
* ``a couple of`` - often means "a few"; ``on top of`` - suggests touching or covering (objects never touch);
  ``at the left edge`` - the single-object regions sit well inside the image.

Captions stay within :data:`MAX_CAPTION_TOKENS` (16) MiniLM tokens, special tokens included, the limit of the
shipped text encoders: the grammar is closed, so :data:`WORD_PIECES` lists the few words MiniLM splits into
several pieces (the tests check it against the tokenizer), and a rich caption that would be longer is drawn
again (:func:`rich_caption`).

The parser (:func:`parse_caption`) reads a caption of either vocabulary back into the scene: it matches the
longest known phrase at each word, groups modifiers with their noun, and orders a pair as
``object0 REL object1`` whatever the sentence order. :func:`scene_matches` compares that with a split's
ground-truth attributes (``ShapesWorldSplit.attributes(i)``).

The names of attribute values (``"circle"``, ``"left of"``, ...) are the ones of
:mod:`crossflow_mini.datasets.shapes`; that module checks the two agree.
"""

from __future__ import annotations

import re
import string
from typing import Any, Callable, Iterable, Sequence

import numpy as np

# ------------------------------------------------------------------------------ names of attribute values
SHAPE_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "diamond")
COLOUR_NAMES: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "cyan")
SIZE_NAMES: tuple[str, ...] = ("small", "large")
POSITION_NAMES: tuple[str, ...] = ("left", "right", "top", "bottom", "centre")
RELATION_NAMES: tuple[str, ...] = ("left of", "right of", "above", "below")
SCENE_KINDS: tuple[str, ...] = ("single", "pair", "count")
INVERSE_RELATION: dict[str, str] = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
VOCABULARIES: tuple[str, ...] = ("template", "rich")

# ------------------------------------------------------------------------- template vocabulary (frozen)
# Exactly the captions of the first shipped version: do not change (shipped data and config hashes use them).
SHAPE_PLURALS: dict[str, str] = {
    "circle": "circles", "square": "squares", "triangle": "triangles", "cross": "crosses", "diamond": "diamonds",
}
SIZE_WORDS: dict[str, tuple[str, str]] = {"small": ("small", "little"), "large": ("large", "big")}
POSITION_PHRASES: dict[str, tuple[str, str]] = {
    "left": ("on the left", "at the left of the image"),
    "right": ("on the right", "at the right of the image"),
    "top": ("at the top", "at the top of the image"),
    "bottom": ("at the bottom", "at the bottom of the image"),
    "centre": ("in the centre", "in the middle of the image"),
}
RELATION_PHRASES: dict[str, str] = {
    "left of": "to the left of", "right of": "to the right of", "above": "above", "below": "below",
}
NUMBER_WORDS: dict[int, str] = {1: "one", 2: "two", 3: "three"}
CAPTION_TEMPLATES: dict[str, tuple[str, ...]] = {
    "single": (
        "a {size} {colour} {shape} {where}",
        "a {size_alt} {colour} {shape} {where_alt}",
        "there is one {size} {colour} {shape} {where}",
    ),
    "pair": (
        "a {colour0} {shape0} {rel} a {colour1} {shape1}",
        "a {colour1} {shape1} {inv_rel} a {colour0} {shape0}",
        "a {colour0} {shape0} is {rel_short} a {colour1} {shape1}",
        "a {size0} {colour0} {shape0} {rel} a {size1} {colour1} {shape1}",
    ),
    "count": (
        "{number} {colour} {shapes}",
        "{digit} {colour} {shapes}",
        "a group of {number} {colour} {shapes}",
        "there are {number} {colour} {shapes}",
    ),
}

# ----------------------------------------------------------------------------------- rich vocabulary
# Train/val wording: every option is drawn with equal probability. The first option of each value is the
# template's word, so the template vocabulary is part of the rich one.
SHAPE_NOUNS: dict[str, tuple[tuple[str, str], ...]] = {  # (singular, plural)
    "circle": (("circle", "circles"), ("disc", "discs"), ("disk", "disks")),
    "square": (("square", "squares"), ("box", "boxes"), ("tile", "tiles")),
    "triangle": (("triangle", "triangles"), ("pyramid", "pyramids")),
    "cross": (("cross", "crosses"), ("plus sign", "plus signs")),
    "diamond": (("diamond", "diamonds"), ("rhombus", "rhombuses")),
}
COLOUR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red", "scarlet"),
    "green": ("green", "emerald"),
    "blue": ("blue", "cobalt"),
    "yellow": ("yellow", "golden"),
    "purple": ("purple", "violet"),
    "cyan": ("cyan", "turquoise"),
}
SIZE_ADJECTIVES: dict[str, tuple[str, ...]] = {"small": ("small", "little", "tiny"), "large": ("large", "big", "huge")}
POSITION_WORDING: dict[str, tuple[str, ...]] = {
    "left": ("on the left", "at the left of the image", "on the left side", "to the left", "at the left"),
    "right": ("on the right", "at the right of the image", "on the right side", "to the right", "at the right"),
    "top": ("at the top", "at the top of the image", "near the top", "up top"),
    "bottom": ("at the bottom", "at the bottom of the image", "near the bottom"),
    "centre": ("in the centre", "in the middle of the image", "in the middle", "at the centre",
               "in the centre of the image"),
}
#: ``A <phrase> B`` means ``A REL B``.
RELATION_WORDING: dict[str, tuple[str, ...]] = {
    "left of": ("to the left of", "left of", "on the left of", "on the left side of"),
    "right of": ("to the right of", "right of", "on the right of", "on the right side of"),
    "above": ("above", "over"),
    "below": ("below", "under", "beneath", "underneath"),
}
NUMBER_WORDING: dict[int, tuple[str, ...]] = {2: ("two", "2"), 3: ("three", "3")}

# Test-only wording: one more phrase per attribute value, never in a train or val caption.
TEST_ONLY_SHAPE_NOUNS: dict[str, tuple[str, str]] = {
    "circle": ("dot", "dots"), "square": ("block", "blocks"), "triangle": ("triangular shape", "triangular shapes"),
    "cross": ("addition sign", "addition signs"), "diamond": ("lozenge", "lozenges"),
}
TEST_ONLY_COLOUR_WORDS: dict[str, str] = {
    "red": "crimson", "green": "lime", "blue": "sapphire", "yellow": "lemon", "purple": "amethyst", "cyan": "aqua",
}
TEST_ONLY_SIZE_ADJECTIVES: dict[str, str] = {"small": "mini", "large": "giant"}
TEST_ONLY_POSITION_WORDING: dict[str, str] = {
    "left": "in the left half", "right": "in the right half", "top": "in the upper half",
    "bottom": "in the lower half", "centre": "in the center",
}
TEST_ONLY_RELATION_WORDING: dict[str, str] = {
    "left of": "further left than", "right of": "further right than", "above": "higher than", "below": "lower than",
}
TEST_ONLY_NUMBER_WORDING: dict[int, str] = {2: "a pair of", 3: "a trio of"}
#: ``B with A <phrase>`` means ``A REL B``; used only by the test-only form ``{b} with {a} {rel_suffix}``.
SUFFIX_RELATION_WORDING: dict[str, str] = {
    "left of": "to its left", "right of": "to its right", "above": "above it", "below": "below it",
}
#: The words that mark test-only wording: each test-only phrase above holds one, no train/val wording any.
TEST_ONLY_WORDS: frozenset[str] = frozenset({
    "dot", "dots", "block", "blocks", "triangular", "shape", "shapes", "addition", "lozenge", "lozenges",
    "crimson", "lime", "sapphire", "lemon", "amethyst", "aqua", "mini", "giant",
    "half", "upper", "lower", "center", "further", "higher", "than", "pair", "trio",
})

# Sentence forms. Slots: single - {obj} "a small red circle", {obj_nd} the same without article, {where};
# pair - {a}/{b} "a red circle" (object 0 / 1), {a_sized}/{b_sized} with the size, {a_nd}/{b_nd} without article,
# {rel} (a REL b), {inv} (b INV a), {rel_suffix}; count - {n} number ("two", "2"), {n_bare} number word or digit
# only, {objs} "[size] colour plural-noun".
RICH_FORMS: dict[str, tuple[str, ...]] = {
    "single": (
        "{obj} {where}",
        "there is {obj} {where}",
        "there is one {obj_nd} {where}",
        "an image of {obj} {where}",
        "a picture with {obj} {where}",
        "a drawing of {obj} {where}",
        "draw {obj} {where}",
        "show me {obj} {where}",
        "{obj} can be seen {where}",
        "the {obj_nd} sits {where}",
    ),
    "pair": (
        "{a} {rel} {b}",
        "{b} {inv} {a}",
        "{a} is {rel} {b}",
        "{a_sized} {rel} {b_sized}",
        "there is {a} {rel} {b}",
        "an image of {a} {rel} {b}",
        "a picture with {a} {rel} {b}",
        "draw {a} {rel} {b}",
        "show me {a} {rel} {b}",
        "{a} can be seen {rel} {b}",
        "the {a_nd} sits {rel} the {b_nd}",
        "{rel} {b} there is {a}",
    ),
    "count": (
        "{n} {objs}",
        "there are {n} {objs}",
        "a group of {n_bare} {objs}",
        "an image of {n} {objs}",
        "a picture with {n} {objs}",
        "a drawing of {n} {objs}",
        "draw {n} {objs}",
        "show me {n} {objs}",
        "{n} {objs} can be seen",
    ),
}
TEST_ONLY_FORMS: dict[str, tuple[str, ...]] = {
    "single": ("{where} you can see {obj}",),
    "pair": ("{b} with {a} {rel_suffix}",),
    "count": ("you can see {n} {objs}",),
}
#: The words that mark a test-only sentence form (no train/val form or wording uses them).
TEST_ONLY_FORM_WORDS: frozenset[str] = frozenset({"you", "see", "its", "it"})
#: Share of test captions (per scene kind) with one test-only element: a word or a sentence form.
TEST_ONLY_WORDING_FRACTION = 0.25
#: Where that element goes, chosen uniformly per caption.
NOVELTY_SITES: dict[str, tuple[str, ...]] = {
    "single": ("form", "shape", "colour", "size", "position"),
    "pair": ("form", "shape0", "shape1", "colour0", "colour1", "relation"),
    "count": ("form", "shape", "colour", "number"),
}
CASE_STYLES: tuple[tuple[str, float], ...] = (("lower", 0.6), ("sentence", 0.35), ("upper", 0.05))
FULL_STOP_PROBABILITY = 0.3  # where the full stop still fits in MAX_CAPTION_TOKENS
COUNT_SIZE_PROBABILITY = 0.3  # count captions that also say the (always small) size
#: A separate random stream for rich wording, so scene sampling is the same in both vocabularies.
RICH_CAPTION_STREAM = 0x7E47
_DRAWS_PER_CAPTION = 20

# ------------------------------------------------------------------------------------- caption length
#: The shipped text encoders keep 16 MiniLM tokens ([CLS] and [SEP] included): every caption fits.
MAX_CAPTION_TOKENS = 16
#: MiniLM (BERT uncased WordPiece) pieces of the grammar's words that are not a single piece; every other word
#: of the grammar, and a full stop, is one token (the tests check this table against the real tokenizer).
WORD_PIECES: dict[str, int] = {"cyan": 2, "pyramids": 2, "amethyst": 3, "lozenge": 3, "lozenges": 3, "rhombus": 3,
                               "rhombuses": 4}
#: A rich caption longer than MAX_CAPTION_TOKENS is drawn again (form and words; the test-only site stays) at
#: most this often, then the shortest wording is used. This makes long words rarer in long sentence forms.
MAX_REDRAWS = 20


def caption_tokens(text: str) -> int:
    """MiniLM tokens of a caption of the grammar, [CLS] and [SEP] included (from :data:`WORD_PIECES`)."""
    words = text.lower().replace(".", " . ").split()
    return 2 + sum(WORD_PIECES.get(w, 1) for w in words)


# ------------------------------------------------------------------------------------ template captions
def template_caption(attrs: dict[str, Any], template: int) -> str:
    """Caption template number ``template`` of the scene ``attrs`` (the ``"template"`` vocabulary).

    ``attrs`` needs ``kind``, ``objects`` (dicts with ``shape``, ``colour``, ``size``) and, for ``single``
    scenes ``position``, for ``pair`` scenes ``relation``; see ``ShapesWorldSplit.attributes``."""
    kind = attrs["kind"]
    if kind not in CAPTION_TEMPLATES:
        raise ValueError(f"unknown scene kind {kind!r}; expected one of {', '.join(CAPTION_TEMPLATES)}")
    templates = CAPTION_TEMPLATES[kind]
    if not 0 <= template < len(templates):
        raise ValueError(f"{kind} scenes have caption templates 0..{len(templates) - 1}, got {template}")
    objects = attrs["objects"]
    if kind == "single":
        obj, where = objects[0], POSITION_PHRASES[attrs["position"]]
        words = SIZE_WORDS[obj["size"]]
        fields = dict(size=words[0], size_alt=words[1], colour=obj["colour"], shape=obj["shape"],
                      where=where[0], where_alt=where[1])
    elif kind == "pair":
        a, b, rel = objects[0], objects[1], attrs["relation"]
        fields = dict(colour0=a["colour"], shape0=a["shape"], size0=a["size"],
                      colour1=b["colour"], shape1=b["shape"], size1=b["size"],
                      rel=RELATION_PHRASES[rel], inv_rel=RELATION_PHRASES[INVERSE_RELATION[rel]], rel_short=rel)
    else:
        n, obj = len(objects), objects[0]
        fields = dict(number=NUMBER_WORDS[n], digit=str(n), colour=obj["colour"], shapes=SHAPE_PLURALS[obj["shape"]])
    return templates[template].format(**fields)


def template_captions(attrs: dict[str, Any]) -> list[str]:
    """Every template filled in for the scene ``attrs``."""
    return [template_caption(attrs, t) for t in range(len(CAPTION_TEMPLATES[attrs["kind"]]))]


# ---------------------------------------------------------------------------------------- rich captions
class _Chooser:
    """Picks one wording option at a time: from a row of uniform numbers ``u``, or the first option if ``u`` is
    None, or the option with the fewest MiniLM tokens if ``shortest``. ``novel`` names the one site (see
    :data:`NOVELTY_SITES`) that takes its test-only option instead."""

    def __init__(self, u: Sequence[float] | None = None, novel: str | None = None, shortest: bool = False) -> None:
        self.u, self.j, self.novel, self.shortest = u, 0, novel, shortest

    def uniform(self) -> float:
        if self.u is None:
            return 1.0  # canonical / shortest: no optional words
        if self.j >= len(self.u):
            raise RuntimeError("ran out of random draws for a caption; raise _DRAWS_PER_CAPTION")
        value = float(self.u[self.j])
        self.j += 1
        return value

    def pick(self, options: Sequence[Any], site: str | None = None, test_only: Any = None,
             key: Callable[[Any], str] = str) -> Any:
        u = self.uniform()
        if site is not None and site == self.novel:
            return test_only
        if self.shortest:
            return min(options, key=lambda o: caption_tokens(key(o)))
        if self.u is None:
            return options[0]
        return options[min(int(u * len(options)), len(options) - 1)]


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _noun_phrase(obj: dict[str, Any], c: _Chooser, k: str = "", *, size: bool, article: bool,
                 plural: bool = False) -> str:
    """``[a/an] [size] colour noun`` of one object; ``k`` ("", "0", "1") names its novelty sites."""
    words = []
    if size:
        words.append(c.pick(SIZE_ADJECTIVES[obj["size"]], "size", TEST_ONLY_SIZE_ADJECTIVES[obj["size"]]))
    words.append(c.pick(COLOUR_WORDS[obj["colour"]], "colour" + k, TEST_ONLY_COLOUR_WORDS[obj["colour"]]))
    noun = c.pick(SHAPE_NOUNS[obj["shape"]], "shape" + k, TEST_ONLY_SHAPE_NOUNS[obj["shape"]], key=" ".join)
    words.append(noun[1] if plural else noun[0])
    text = " ".join(words)
    return f"{_article(text)} {text}" if article else text


def _slot(name: str, attrs: dict[str, Any], c: _Chooser) -> str:
    objects = attrs["objects"]
    if name in ("obj", "obj_nd"):
        return _noun_phrase(objects[0], c, size=True, article=name == "obj")
    if name == "where":
        p = attrs["position"]
        return c.pick(POSITION_WORDING[p], "position", TEST_ONLY_POSITION_WORDING[p])
    if name[0] in "ab" and name[1:] in ("", "_sized", "_nd"):
        k = "01"["ab".index(name[0])]
        return _noun_phrase(objects[int(k)], c, k, size=name.endswith("_sized"), article=not name.endswith("_nd"))
    if name in ("rel", "inv"):
        rel = attrs["relation"] if name == "rel" else INVERSE_RELATION[attrs["relation"]]
        return c.pick(RELATION_WORDING[rel], "relation", TEST_ONLY_RELATION_WORDING[rel])
    if name == "rel_suffix":
        return SUFFIX_RELATION_WORDING[attrs["relation"]]
    if name in ("n", "n_bare"):
        n = len(objects)
        return c.pick(NUMBER_WORDING[n], "number" if name == "n" else None, TEST_ONLY_NUMBER_WORDING[n])
    if name == "objs":
        with_size = c.uniform() < COUNT_SIZE_PROBABILITY
        return _noun_phrase(objects[0], c, size=with_size, article=False, plural=True)
    raise KeyError(f"unknown caption slot {name!r}")


def _slots(form: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(form) if name]


def fill_form(form: str, attrs: dict[str, Any], chooser: _Chooser | None = None) -> str:
    """Sentence form ``form`` filled in for the scene ``attrs`` (with the first, canonical word of every slot
    unless a chooser says otherwise); lower case, no full stop."""
    c = chooser if chooser is not None else _Chooser()
    return form.format(**{name: _slot(name, attrs, c) for name in _slots(form)})


def _forms(kind: str, site: str | None) -> tuple[str, ...]:
    """The sentence forms a caption with test-only ``site`` (None: none) may use."""
    if site == "form":
        return TEST_ONLY_FORMS[kind]
    return tuple(f for f in RICH_FORMS[kind] if site != "number" or "{n}" in f)


def _draw_caption(attrs: dict[str, Any], u: Sequence[float], site: str | None) -> str | None:
    """Form, words, case and full stop drawn from ``u``; None if the caption is too long for MiniLM."""
    c = _Chooser(u, site)
    text = fill_form(c.pick(_forms(attrs["kind"], site)), attrs, c)
    if caption_tokens(text) > MAX_CAPTION_TOKENS:
        return None
    style = c.uniform()
    if style >= CASE_STYLES[0][1] + CASE_STYLES[1][1]:
        text = text.upper()
    elif style >= CASE_STYLES[0][1]:
        text = text[0].upper() + text[1:]
    if c.uniform() < FULL_STOP_PROBABILITY and caption_tokens(text) < MAX_CAPTION_TOKENS:
        text += "."
    return text


def shortest_caption(attrs: dict[str, Any], site: str | None = None) -> str:
    """The caption with the fewest MiniLM tokens (test-only element at ``site``, if any): the last resort of
    :func:`rich_caption`, and the witness that every scene has a caption that fits."""
    texts = [fill_form(form, attrs, _Chooser(novel=site, shortest=True)) for form in _forms(attrs["kind"], site)]
    text = min(texts, key=caption_tokens)
    if caption_tokens(text) > MAX_CAPTION_TOKENS:
        raise RuntimeError(f"no caption of the grammar fits in {MAX_CAPTION_TOKENS} MiniLM tokens: {text!r}")
    return text


def rich_caption(attrs: dict[str, Any], u: Sequence[float], novelty: bool = False,
                 redraw: Callable[[], Sequence[float]] | None = None) -> str:
    """One rich caption of the scene ``attrs`` from the uniform numbers ``u`` (``_DRAWS_PER_CAPTION + 1``).

    With ``novelty`` exactly one element is test-only: the sentence form or one word (site drawn uniformly
    from :data:`NOVELTY_SITES`); otherwise only train/val wording is used. A caption longer than
    :data:`MAX_CAPTION_TOKENS` is drawn again from ``redraw()`` (at most :data:`MAX_REDRAWS` times, the site
    kept), then :func:`shortest_caption` is used."""
    sites = NOVELTY_SITES[attrs["kind"]]
    site = sites[min(int(u[0] * len(sites)), len(sites) - 1)] if novelty else None
    text = _draw_caption(attrs, u[1:], site)
    for _ in range(MAX_REDRAWS if redraw is not None else 0):
        if text is not None:
            break
        text = _draw_caption(attrs, redraw(), site)
    return text if text is not None else shortest_caption(attrs, site)


def rich_captions(scenes: Sequence[dict[str, Any]], rng: np.random.Generator,
                  test_only_fraction: float = 0.0) -> tuple[list[str], np.ndarray]:
    """Rich captions of ``scenes`` (dicts like ``ShapesWorldSplit.attributes``) and the bool array of those
    with test-only wording: ``round(test_only_fraction * n_k)`` captions of each scene kind, chosen by ``rng``."""
    n = len(scenes)
    novelty = np.zeros(n, dtype=bool)
    if test_only_fraction > 0:
        kinds = np.array([s["kind"] for s in scenes])
        for kind in RICH_FORMS:
            rows = np.flatnonzero(kinds == kind)
            novelty[rows[rng.permutation(len(rows))[:round(test_only_fraction * len(rows))]]] = True
    u = rng.random((n, _DRAWS_PER_CAPTION + 1))

    def redraw() -> np.ndarray:
        return rng.random(_DRAWS_PER_CAPTION)

    return [rich_caption(s, u[i], bool(novelty[i]), redraw) for i, s in enumerate(scenes)], novelty


def rich_paraphrases(attrs: dict[str, Any]) -> list[str]:
    """Every train/val sentence form filled in with the canonical (first) word of each slot: references for
    caption metrics in the rich vocabulary (lower case, no full stop, no test-only wording)."""
    out = []
    for form in RICH_FORMS[attrs["kind"]]:
        text = fill_form(form, attrs)
        if text not in out:
            out.append(text)
    return out


# ---------------------------------------------------------------------------------------- normalising
_PUNCTUATION = re.compile(r"[.,;:!?\"()]")


def normalise(text: str) -> str:
    """Lower case, punctuation (but not hyphens) removed, single spaces: the form metrics and the parser read."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def uses_test_only_wording(text: str) -> bool:
    """Does ``text`` use a test-only word or sentence form (:data:`TEST_ONLY_WORDS`, :data:`TEST_ONLY_FORM_WORDS`)?"""
    return not set(normalise(text).split()).isdisjoint(TEST_ONLY_WORDS | TEST_ONLY_FORM_WORDS)


def _form_words(forms: Iterable[str]) -> set[str]:
    return {w for f in forms for literal, *_ in string.Formatter().parse(f) for w in normalise(literal).split()}


def template_words() -> set[str]:
    """Every word a caption of the ``"template"`` vocabulary can use (lower case): the words the shipped template
    models were trained on."""
    words = _form_words(f for fs in CAPTION_TEMPLATES.values() for f in fs)
    phrases = [*SHAPE_NAMES, *COLOUR_NAMES, *SHAPE_PLURALS.values(), *(p for w in SIZE_WORDS.values() for p in w),
               *(p for w in POSITION_PHRASES.values() for p in w), *RELATION_PHRASES.values(), *RELATION_NAMES,
               *NUMBER_WORDS.values(), *(str(n) for n in NUMBER_WORDS)]
    return words | {w for p in phrases for w in normalise(p).split()}


def vocabulary_words(vocabulary: str) -> set[str]:
    """The words training captions of ``vocabulary`` (``"template"`` or ``"rich"``) can use."""
    if vocabulary == "template":
        return template_words()
    if vocabulary == "rich":
        return train_words()
    raise ValueError(f"unknown caption vocabulary {vocabulary!r}; use 'template' or 'rich'")


def train_words() -> set[str]:
    """Every word a train/val caption of either vocabulary can use (lower case)."""
    words = _form_words(f for fs in (*CAPTION_TEMPLATES.values(), *RICH_FORMS.values()) for f in fs)
    phrases = [*SHAPE_PLURALS.values(), *(p for w in SIZE_WORDS.values() for p in w),
               *(p for w in POSITION_PHRASES.values() for p in w), *RELATION_PHRASES.values(), *RELATION_NAMES,
               *NUMBER_WORDS.values(), *(str(n) for n in NUMBER_WORDS),
               *(p for nouns in SHAPE_NOUNS.values() for noun in nouns for p in noun),
               *(p for w in COLOUR_WORDS.values() for p in w), *(p for w in SIZE_ADJECTIVES.values() for p in w),
               *(p for w in POSITION_WORDING.values() for p in w), *(p for w in RELATION_WORDING.values() for p in w),
               *(p for w in NUMBER_WORDING.values() for p in w), "a", "an"]
    return words | {w for p in phrases for w in p.split()}


def test_only_words() -> set[str]:
    """Every word of test-only wording and test-only forms (those in :func:`train_words` included)."""
    phrases = [*(p for noun in TEST_ONLY_SHAPE_NOUNS.values() for p in noun), *TEST_ONLY_COLOUR_WORDS.values(),
               *TEST_ONLY_SIZE_ADJECTIVES.values(), *TEST_ONLY_POSITION_WORDING.values(),
               *TEST_ONLY_RELATION_WORDING.values(), *TEST_ONLY_NUMBER_WORDING.values(),
               *SUFFIX_RELATION_WORDING.values()]
    return _form_words(f for fs in TEST_ONLY_FORMS.values() for f in fs) | {w for p in phrases for w in p.split()}


def all_words() -> list[str]:
    """Every word of the grammar, both vocabularies and test-only wording included, sorted."""
    return sorted(train_words() | test_only_words())


# ---------------------------------------------------------------------------------------------- parser
def _lexicon() -> dict[tuple[str, ...], tuple[str, Any]]:
    """Phrase (tuple of words) -> (category, value). Raises if one phrase would name two things."""
    entries: list[tuple[str, str, Any]] = []
    for shape in SHAPE_NAMES:
        nouns = [(shape, SHAPE_PLURALS[shape]), *SHAPE_NOUNS[shape], TEST_ONLY_SHAPE_NOUNS[shape]]
        entries += [(sing, "shape", (shape, False)) for sing, _ in nouns]
        entries += [(plur, "shape", (shape, True)) for _, plur in nouns]
    for colour in COLOUR_NAMES:
        entries += [(w, "colour", colour) for w in (colour, *COLOUR_WORDS[colour], TEST_ONLY_COLOUR_WORDS[colour])]
    for size in SIZE_NAMES:
        entries += [(w, "size", size) for w in (*SIZE_WORDS[size], *SIZE_ADJECTIVES[size],
                                                TEST_ONLY_SIZE_ADJECTIVES[size])]
    for pos in POSITION_NAMES:
        entries += [(w, "position", pos) for w in (*POSITION_PHRASES[pos], *POSITION_WORDING[pos],
                                                   TEST_ONLY_POSITION_WORDING[pos])]
    for rel in RELATION_NAMES:
        entries += [(w, "relation", rel) for w in (rel, RELATION_PHRASES[rel], *RELATION_WORDING[rel],
                                                   TEST_ONLY_RELATION_WORDING[rel])]
        entries.append((SUFFIX_RELATION_WORDING[rel], "suffix", rel))
    for n in NUMBER_WORDING:
        entries += [(w, "number", n) for w in (NUMBER_WORDS[n], str(n), *NUMBER_WORDING[n],
                                               TEST_ONLY_NUMBER_WORDING[n])]
    entries += [(w, "det", None) for w in ("a", "an", "the", NUMBER_WORDS[1])]
    lexicon: dict[tuple[str, ...], tuple[str, Any]] = {}
    for phrase, category, value in entries:
        key = tuple(phrase.split())
        if lexicon.setdefault(key, (category, value)) != (category, value):
            raise ValueError(f"the phrase {phrase!r} would mean both {lexicon[key]} and {(category, value)}")
    all_forms = [f for fs in (*CAPTION_TEMPLATES.values(), *RICH_FORMS.values(), *TEST_ONLY_FORMS.values())
                 for f in fs]
    for word in _form_words(all_forms):  # the sentence forms' own words carry no attribute
        lexicon.setdefault((word,), ("filler", None))
    return lexicon


_LEXICON = _lexicon()
_LONGEST_PHRASE = max(len(k) for k in _LEXICON)


def _lex(words: list[str]) -> list[tuple[str, Any]] | None:
    """Longest-match the words into lexicon items; None at the first word no phrase starts with."""
    items, i = [], 0
    while i < len(words):
        for length in range(min(_LONGEST_PHRASE, len(words) - i), 0, -1):
            item = _LEXICON.get(tuple(words[i:i + length]))
            if item is not None:
                items.append(item)
                i += length
                break
        else:
            return None
    return items


def parse_caption(text: str) -> dict[str, Any] | None:
    """The scene a caption describes, or None if it is not a sentence of the grammar.

    Returns ``{"kind", "n_objects", "objects": [{"shape", "colour", "size"}], "position", "relation"}`` in the
    layout of ``ShapesWorldSplit.attributes`` (count scenes repeat their object ``n_objects`` times). A
    ``size`` (or ``colour``, ``position``, ``relation``) the caption does not state is None. A pair reads
    ``objects[0] relation objects[1]``, whatever the sentence order ("B with A to its left" -> A left of B)."""
    items = _lex(normalise(text).split()) if isinstance(text, str) else None
    if not items:
        return None
    objects: list[dict[str, Any]] = []
    positions: list[str] = []
    relations: list[tuple[int, str, str]] = []  # (index among items, relation, "relation" | "suffix")
    pending: dict[str, Any] = {}
    for idx, (category, value) in enumerate(items):
        if category in ("size", "colour", "number"):
            if category in pending or (category == "number" and pending):
                return None  # two colours for one noun, or a number after an adjective
            pending[category] = value
        elif category == "shape":
            shape, plural = value
            number = pending.get("number")
            if plural != (number is not None):
                return None  # "two red circle" or "red circles" without a number
            objects.append({"shape": shape, "colour": pending.get("colour"), "size": pending.get("size"),
                            "number": number, "at": idx})
            pending = {}
        else:
            if pending:
                return None  # an adjective without its noun
            if category == "position":
                positions.append(value)
            elif category in ("relation", "suffix"):
                relations.append((idx, value, category))
    if pending or not objects:
        return None
    clean = [{"shape": o["shape"], "colour": o["colour"], "size": o["size"]} for o in objects]
    if len(objects) == 1 and objects[0]["number"] is not None:
        if positions or relations:
            return None
        n = objects[0]["number"]
        return {"kind": "count", "n_objects": n, "objects": clean * n, "position": None, "relation": None}
    if len(objects) == 1:
        if relations or len(positions) > 1:
            return None
        return {"kind": "single", "n_objects": 1, "objects": clean, "position": positions[0] if positions else None,
                "relation": None}
    if len(objects) == 2 and all(o["number"] is None for o in objects):
        if positions or len(relations) > 1:
            return None
        relation = None
        if relations:
            at, relation, how = relations[0]
            first, second = objects[0]["at"], objects[1]["at"]
            if how == "relation" and first < at < second:
                pass  # "A rel B"
            elif (how == "relation" and at < first) or (how == "suffix" and at > second):
                clean = clean[::-1]  # "rel B there is A", "B with A to its left"
            else:
                return None
        return {"kind": "pair", "n_objects": 2, "objects": clean, "position": None, "relation": relation}
    return None


def scene_matches(parsed: dict[str, Any] | None, attributes: dict[str, Any]) -> dict[str, bool | None]:
    """Compare a parsed caption (:func:`parse_caption`) with a scene's ground truth (``ShapesWorldSplit.attributes``).

    Keys: ``parsed`` (the caption was understood), ``kind``, ``count`` (number of objects), ``shapes`` and
    ``colours`` (the sets named), ``objects`` (the (shape, colour) bindings), ``sizes`` (every size the caption
    states is that of the true object most like the one named, by shape then colour; None if it states none),
    ``position`` (single scenes, else None), ``relation`` (pair scenes, else None; either sentence order counts)
    and ``scene`` (all of them)."""
    truth = attributes["objects"]
    kind = attributes["kind"]
    out: dict[str, bool | None] = {
        "parsed": parsed is not None, "kind": False, "count": False, "shapes": False, "colours": False,
        "objects": False, "sizes": None, "position": False if kind == "single" else None,
        "relation": False if kind == "pair" else None, "scene": False,
    }
    if parsed is None:
        return out
    said = parsed["objects"]
    out["kind"] = parsed["kind"] == kind
    out["count"] = parsed["n_objects"] == len(truth)
    out["shapes"] = {o["shape"] for o in said} == {o["shape"] for o in truth}
    out["colours"] = {o["colour"] for o in said} == {o["colour"] for o in truth}
    out["objects"] = {(o["shape"], o["colour"]) for o in said} == {(o["shape"], o["colour"]) for o in truth}
    stated = [o for o in said if o["size"] is not None]
    if stated:  # each stated size against the true object(s) most like the one named (shape, then colour)
        def likeness(o: dict[str, Any], t: dict[str, Any]) -> tuple[bool, bool]:
            return t["shape"] == o["shape"], t["colour"] == o["colour"]

        out["sizes"] = all(any(t["size"] == o["size"] for t in truth
                               if likeness(o, t) == max(likeness(o, x) for x in truth)) for o in stated)
    if kind == "single":
        out["position"] = parsed["kind"] == "single" and parsed["position"] == attributes["position"]
    if kind == "pair":
        rel, ok = parsed["relation"], False
        if parsed["kind"] == "pair" and rel is not None:
            s0, s1 = said[0]["shape"], said[1]["shape"]
            g0, g1 = truth[0]["shape"], truth[1]["shape"]
            if (s0, s1) == (g0, g1):
                ok = rel == attributes["relation"]
            elif (s0, s1) == (g1, g0):
                ok = rel == INVERSE_RELATION[attributes["relation"]]
        out["relation"] = ok
    out["scene"] = all(out[k] for k in ("kind", "count", "shapes", "colours", "objects")) and all(
        out[k] is not False for k in ("sizes", "position", "relation"))
    return out


__all__ = [
    "SHAPE_NAMES", "COLOUR_NAMES", "SIZE_NAMES", "POSITION_NAMES", "RELATION_NAMES", "SCENE_KINDS", "INVERSE_RELATION",
    "VOCABULARIES", "SHAPE_PLURALS", "SIZE_WORDS", "POSITION_PHRASES", "RELATION_PHRASES", "NUMBER_WORDS",
    "CAPTION_TEMPLATES", "SHAPE_NOUNS", "COLOUR_WORDS", "SIZE_ADJECTIVES", "POSITION_WORDING", "RELATION_WORDING",
    "NUMBER_WORDING", "TEST_ONLY_SHAPE_NOUNS", "TEST_ONLY_COLOUR_WORDS", "TEST_ONLY_SIZE_ADJECTIVES",
    "TEST_ONLY_POSITION_WORDING", "TEST_ONLY_RELATION_WORDING", "TEST_ONLY_NUMBER_WORDING",
    "SUFFIX_RELATION_WORDING", "TEST_ONLY_WORDS", "RICH_FORMS", "TEST_ONLY_FORMS", "TEST_ONLY_FORM_WORDS",
    "TEST_ONLY_WORDING_FRACTION", "NOVELTY_SITES", "RICH_CAPTION_STREAM", "template_caption", "template_captions",
    "MAX_CAPTION_TOKENS", "WORD_PIECES", "MAX_REDRAWS", "caption_tokens", "fill_form", "shortest_caption",
    "rich_caption", "rich_captions", "rich_paraphrases", "normalise",
    "uses_test_only_wording", "train_words", "test_only_words", "all_words", "parse_caption", "scene_matches",
]
