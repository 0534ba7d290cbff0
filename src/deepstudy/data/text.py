"""Text as token ids: a tokenizer, a vocabulary built on the training split only, and
variable-length batches of questions for the text classifiers.

torchtext did this once; its development stopped in 2024, and what a classifier needs is short
enough to read here: lowercase, split words from punctuation, count on the training split,
keep the tokens seen at least `min_freq` times, map the rest to <unk>.

A batch's input is a `TokenBatch(ids, lengths)`: ids padded with <pad> (index 0) to the
longest sequence *of that batch*, and each sequence's true length, which the recurrent models
hand to `pack_padded_sequence` so padding never runs through the recurrence.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator, NamedTuple

import torch

PAD, UNK = "<pad>", "<unk>"
# a word (letters, digits, underscore), a clitic glued to its apostrophe ('s, 't, 're: TREC
# writes "Hamlet 's"), or any single other non-space character (punctuation, quotes)
_TOKEN = re.compile(r"'\w+|\w+|[^\w\s]")


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """`"Who wrote Hamlet's play?"` -> `["who", "wrote", "hamlet", "'s", "play", "?"]`."""
    return _TOKEN.findall(text.lower() if lowercase else text)


@dataclass(frozen=True)
class Vocab:
    """Index <-> token.  Word vocabularies start with <pad> (0) and <unk> (1); a character
    vocabulary has neither (every character of the training text is in it)."""

    tokens: tuple[str, ...]
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "tokens", tuple(self.tokens))
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})
        if len(self._index) != len(self.tokens):
            raise ValueError("a vocabulary lists each token once")

    @classmethod
    def build(cls, sequences: Iterable[list[str]], min_freq: int = 1) -> "Vocab":
        """<pad>, <unk>, then the tokens seen at least `min_freq` times, most frequent first
        (ties alphabetical, so the same data always gives the same indices)."""
        counts = Counter(token for seq in sequences for token in seq)
        kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        return cls((PAD, UNK, *kept))

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    @property
    def unk(self) -> int:
        return self._index[UNK]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        unk = self._index.get(UNK)
        if unk is None:  # a character vocabulary: an unknown character is a caller's error
            return [self._index[t] for t in tokens]
        return [self._index.get(t, unk) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids]


class TokenBatch(NamedTuple):
    ids: torch.Tensor  # int64 N x T, <pad> after each sequence's end; T = the batch's longest
    lengths: torch.Tensor  # int64 N, on the CPU (pack_padded_sequence wants them there)


@dataclass
class TokenSequences:
    """One split: every sequence padded to the split's longest, with labels and the raw text."""

    ids: torch.Tensor  # int64 N x L
    lengths: torch.Tensor  # int64 N (CPU)
    labels: torch.Tensor  # int64 N
    texts: list[str]  # as read, for reports (tables of predictions)

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def encode(cls, token_lists: list[list[str]], labels: list[int], texts: list[str], vocab: Vocab) -> "TokenSequences":
        ids, lengths = pad([vocab.encode(tokens) for tokens in token_lists])
        return cls(ids, lengths, torch.tensor(labels, dtype=torch.long), list(texts))

    def subset(self, index) -> "TokenSequences":
        index = torch.as_tensor(index) if not isinstance(index, slice) else index
        texts = self.texts[index] if isinstance(index, slice) else [self.texts[i] for i in index.tolist()]
        return TokenSequences(self.ids[index], self.lengths[index], self.labels[index], texts)

    def to(self, device) -> "TokenSequences":
        return TokenSequences(self.ids.to(device), self.lengths, self.labels.to(device), self.texts)

    def class_counts(self, num_classes: int) -> list[int]:
        return torch.bincount(self.labels.cpu(), minlength=num_classes).tolist()


def token_batches(seqs: TokenSequences, batch_size: int, generator: torch.Generator | None = None,
                  word_dropout: float = 0.0, unk: int = 1) -> Iterator[tuple[TokenBatch, torch.Tensor]]:
    """(TokenBatch, labels) batches, shuffled when a generator is given.  Each batch is cut to
    its own longest sequence: a batch of short questions carries no columns of padding.
    word_dropout (training only): the share of words replaced by <unk>, drawn from `generator`."""
    n = len(seqs)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        index = order[start:start + batch_size]
        lengths = seqs.lengths[index]
        width = int(lengths.max())
        device_index = index.to(seqs.ids.device)
        ids = seqs.ids[device_index, :width]
        if word_dropout:
            drop = (torch.rand(ids.shape, generator=generator) < word_dropout).to(ids.device) & (ids != 0)
            ids = ids.masked_fill(drop, unk)
        yield TokenBatch(ids, lengths), seqs.labels[device_index]


@dataclass
class TextClassificationData:
    """Train/val/test questions as token ids: what the training loop consumes (same four
    methods as ClassificationData), plus the vocabulary and tokenizer `predict` needs."""

    name: str
    train: TokenSequences
    val: TokenSequences
    test: TokenSequences
    classes: list[str]
    vocab: Vocab
    source: str
    lowercase: bool = True
    # Why replace training words by <unk> at random: a tenth of the words in unseen questions
    # are not in a vocabulary built from 5,000 questions; this teaches <unk> and the context
    # around it, the way dropout teaches a layer not to lean on any one input.
    word_dropout: float = 0.0
    note: str = ""  # e.g. "not the canonical bytes": shown beside measured numbers
    unit: str = "questions"
    listing: list = field(default_factory=list)  # splits.csv: which question went to which split

    def members(self) -> list[dict]:
        return self.listing

    def train_batches(self, batch_size: int, generator: torch.Generator, channels_last: bool = False):
        return token_batches(self.train, batch_size, generator, self.word_dropout, self.vocab.unk)

    def eval_batches(self, split: str, batch_size: int, channels_last: bool = False):
        return token_batches(getattr(self, split), batch_size)

    def labels(self, split: str) -> torch.Tensor:
        return getattr(self, split).labels

    def size(self, split: str) -> int:
        return len(getattr(self, split))

    @property
    def in_shape(self) -> tuple[int, ...]:
        """What a model builder needs to know about the input: the vocabulary size."""
        return (len(self.vocab),)

    def example_input(self) -> TokenBatch:
        """One real training question, for the model summary."""
        n = int(self.train.lengths[0])
        return TokenBatch(self.train.ids[:1, :n], self.train.lengths[:1])

    def encode_texts(self, texts: list[str], device="cpu") -> TokenBatch:
        return encode_texts(texts, self.vocab, self.lowercase, device)

    def info(self) -> dict:
        unk = self.vocab.unk
        known = {s: 1 - float((getattr(self, s).ids == unk).sum()) / max(1, int(getattr(self, s).lengths.sum()))
                 for s in ("train", "val", "test")}
        return {
            "name": self.name,
            "kind": "text",
            "classes": list(self.classes),
            "in_shape": list(self.in_shape),
            "vocab_size": len(self.vocab),
            "tokenizer": {"lowercase": self.lowercase, "pattern": _TOKEN.pattern},
            "known_token_share": {s: round(v, 4) for s, v in known.items()},  # 1 - <unk> rate
            "sizes": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
            "source": self.source,
            "note": self.note,
        }


def encode_splits(texts: dict[str, list[str]], labels: dict[str, list[int]], min_freq: int = 1, lowercase: bool = True,
                  vocab: list[str] | None = None, device="cpu") -> tuple[dict[str, TokenSequences], Vocab]:
    """Each split's texts as token ids, and the vocabulary: a finished run's own (`vocab`, for eval
    and resume: its ids are the model's), else one built on the training split alone, so
    validation meets unknown words as the test set will."""
    tokens = {s: [tokenize(t, lowercase) for t in ts] for s, ts in texts.items()}
    vocab = Vocab(vocab) if vocab is not None else Vocab.build(tokens["train"], min_freq)
    return {s: TokenSequences.encode(tokens[s], labels[s], texts[s], vocab).to(device) for s in texts}, vocab


def pad(id_lists: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Lists of token ids -> (N x longest int64 tensor padded with <pad> = 0, lengths)."""
    lengths = torch.tensor([len(ids) for ids in id_lists], dtype=torch.long)
    out = torch.zeros(len(id_lists), int(lengths.max()) if len(id_lists) else 0, dtype=torch.long)
    for i, ids in enumerate(id_lists):
        out[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out, lengths


def encode_texts(texts: list[str], vocab: Vocab, lowercase: bool = True, device="cpu") -> TokenBatch:
    """User sentences -> a TokenBatch.  Checking for empty ones (nothing to read) is the caller's job."""
    ids, lengths = pad([vocab.encode(tokenize(t, lowercase)) for t in texts])
    return TokenBatch(ids.to(device), lengths)
