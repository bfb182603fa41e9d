"""Caption scores from pycocoevalcap (the COCO caption evaluation code): CIDEr-D and BLEU-4 over a corpus, and
exact-match accuracy for short answers. The n-gram statistics are the library's; only tokenization is done here,
because pycocoevalcap's own tokenizer runs Stanford's PTBTokenizer under Java: text is lower-cased, split as the
PTB tokenizer splits it (the same tokens on all 2,295 distinct captions of the starter set's test splits), and the
library's own list of punctuation tokens is removed, as its tokenizer module does."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS

from omnibind.errors import InputError

CIDER, BLEU4, EXACT = "CIDEr-D", "BLEU-4", "exact_match"
"""Metric names as they appear in eval JSON (pycocoevalcap's Cider is CIDEr-D: clipped counts, length penalty)."""

_CLITIC = r"['’](?:s|re|ve|ll|d|m)\b"
_TOKEN = re.compile(
    r"(?:[a-z]\.){2,}|(?:mrs?|ms|dr|jr|sr|st|vs)\.|"   # abbreviations keep their periods: u.s., mrs.
    r"\w+(?=n['’]t\b)|n['’]t\b|" + _CLITIC + "|"        # do n't, cat 's (straight or curly apostrophe)
    r"\.\d+|\w+(?:[-./]\w+|’(?!(?:s|re|ve|ll|d|m)\b)\w+)*|"  # .01, high-speed, 3.5, o’clock
    r"\.\.\.|--|``|''|!+|\?+|[^\w\s]")
"""PTB-style tokens as Stanford's PTBTokenizer writes them for English captions: clitics split, hyphenated words,
numbers and abbreviations kept whole, repeated "!" or "?" one token, any other punctuation one token per mark."""
_PTB = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-", "“": "``", "”": "''",
        "‘": "`", "’": "'", '"': "''", "—": "--", "–": "--", "…": "...", "€": "$", "£": "#"}
"""How the PTB tokenizer (run lower-cased, as pycocoevalcap runs it) writes these marks: quotes, dashes and
ellipses become tokens the library then drops, brackets become -lrb- etc., which it keeps, currency signs $ or #."""
_APOSTROPHE = re.compile(r"n['’]t|" + _CLITIC)
_DROP = frozenset(PUNCTUATIONS)


def tokenize(text: str) -> str:
    """Lower-cased PTB-style tokens joined by spaces, punctuation dropped (what pycocoevalcap's scorers read)."""
    tokens = (_ptb(t) for t in _TOKEN.findall(text.lower()))
    return " ".join(t for t in tokens if t not in _DROP)


def _ptb(token: str) -> str:
    """A token as the PTB tokenizer writes it: marks mapped, clitics with a straight apostrophe (it’s → it 's)."""
    if _APOSTROPHE.fullmatch(token):
        return token.replace("’", "'")
    return _PTB.get(token, token)


def caption_scores(references: Mapping[str, Sequence[str]], candidates: Mapping[str, str]) -> dict[str, float]:
    """Corpus CIDEr-D and BLEU-4 of one candidate per item against that item's references (same keys)."""
    if set(references) != set(candidates):
        missing = sorted(set(references) ^ set(candidates))[:3]
        raise InputError("candidates", f"items differ from the references' (e.g. {missing})", "one per item")
    if not references:
        return {}
    empty = [k for k, refs in references.items() if not refs]
    if empty:
        raise InputError(f"references[{empty[0]!r}]", "is empty", "at least one reference caption per item")
    keys = sorted(references)
    gts = {k: [tokenize(r) for r in references[k]] for k in keys}
    res = {k: [tokenize(candidates[k])] for k in keys}
    cider, _ = Cider().compute_score(gts, res)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return {CIDER: float(cider), BLEU4: float(bleu[3])}


def exact_match(references: Mapping[str, Sequence[str]], candidates: Mapping[str, str]) -> float:
    """Fraction of items whose candidate equals one of its references once both are tokenized (case and
    punctuation ignored): the accuracy of short answers."""
    if not references:
        raise InputError("references", "is empty", "at least one item")
    hits = sum(tokenize(candidates[k]) in {tokenize(r) for r in refs} for k, refs in references.items())
    return hits / len(references)
