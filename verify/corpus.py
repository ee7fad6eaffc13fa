"""A seeded English-like corpus for the language model (seeds/004's PTB cannot be downloaded here).

Words are built from syllables, so the vocabulary is as large as asked and the same for a seed. Sentences
come from a small grammar (determiner, adjectives, noun, verb, object, prepositional phrase) with Zipf-like
word frequencies, and each noun prefers a few verbs and each verb a few objects: a model that learns the
grammar beats one that knows only word frequencies, as on real text.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EOS = "<eos>"
FUNCTION_WORDS = ("the", "a", "this", "that", "every", "some", "of", "in", "on", "with", "near", "under",
                  "and", "but", "very", "not")
DETERMINERS = FUNCTION_WORDS[:6]
PREPOSITIONS = FUNCTION_WORDS[6:12]
_ONSETS = ("b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
           "br", "cr", "dr", "fl", "gr", "pl", "st", "tr", "sh", "ch", "th")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ou")
_CODAS = ("", "", "n", "r", "s", "t", "l", "m", "nd", "st")
# words per class; their sum (plus the function words and <eos>) is the vocabulary
CLASS_SIZES = {"noun": 2200, "verb": 900, "adjective": 700, "adverb": 200}


@dataclass(frozen=True)
class Corpus:
    words: tuple[str, ...]  # the token stream, sentences ended by <eos>
    vocabulary: tuple[str, ...]  # by descending frequency, ties by first appearance

    def ids(self) -> np.ndarray:
        index = {w: i for i, w in enumerate(self.vocabulary)}
        return np.array([index[w] for w in self.words], dtype=np.int64)


def _lexicon(rng: np.random.Generator, count: int, taken: set[str], suffix: str) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        n = int(rng.integers(1, 4))
        word = "".join(_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))]
                       for _ in range(n)) + _CODAS[rng.integers(len(_CODAS))] + suffix
        if word not in taken:
            taken.add(word)
            out.append(word)
    return out


def _zipf(n: int, exponent: float = 1.05) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** exponent
    return p / p.sum()


def generate(n_tokens: int, seed: int = 4) -> Corpus:
    """About ``n_tokens`` tokens (whole sentences) of the grammar's text, the same for the same seed."""
    rng = np.random.default_rng([seed, 4004])
    taken = set(FUNCTION_WORDS) | {EOS}
    lex = {"noun": _lexicon(rng, CLASS_SIZES["noun"], taken, ""),
           "verb": _lexicon(rng, CLASS_SIZES["verb"], taken, "s"),
           "adjective": _lexicon(rng, CLASS_SIZES["adjective"], taken, "y"),
           "adverb": _lexicon(rng, CLASS_SIZES["adverb"], taken, "ly")}
    p = {k: _zipf(len(v)) for k, v in lex.items()}
    n_noun, n_verb = len(lex["noun"]), len(lex["verb"])
    verbs_of = rng.integers(0, n_verb, size=(n_noun, 4))  # each noun's preferred verbs
    objects_of = rng.integers(0, n_noun, size=(n_verb, 6))  # each verb's preferred objects
    words: list[str] = []

    def noun_phrase(noun: int) -> None:
        words.append(DETERMINERS[rng.integers(len(DETERMINERS))])
        while rng.random() < 0.35:
            words.append(lex["adjective"][rng.choice(len(lex["adjective"]), p=p["adjective"])])
        words.append(lex["noun"][noun])

    while len(words) < n_tokens:
        subject = int(rng.choice(n_noun, p=p["noun"]))
        noun_phrase(subject)
        verb = int(verbs_of[subject, rng.integers(4)]) if rng.random() < 0.8 else int(rng.choice(n_verb, p=p["verb"]))
        if rng.random() < 0.15:
            words.append("not")
        words.append(lex["verb"][verb])
        if rng.random() < 0.7:
            obj = int(objects_of[verb, rng.integers(6)]) if rng.random() < 0.7 else int(rng.choice(n_noun, p=p["noun"]))
            noun_phrase(obj)
        if rng.random() < 0.3:
            words.append(lex["adverb"][rng.choice(len(lex["adverb"]), p=p["adverb"])])
        if rng.random() < 0.4:
            words.append(PREPOSITIONS[rng.integers(len(PREPOSITIONS))])
            noun_phrase(int(rng.choice(n_noun, p=p["noun"])))
        words.append(EOS)
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    vocab = tuple(sorted(counts, key=lambda w: -counts[w]))  # sorted() is stable: ties keep first appearance
    return Corpus(tuple(words), vocab)
