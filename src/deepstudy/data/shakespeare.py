"""Tiny Shakespeare for character-level language models: one 1.1 MB text file (Karpathy's
char-rnn collection) read as one long sequence of character ids.

Looked for at `<data root>/tinyshakespeare/input.txt`; there is no download here, the error
says where to get it.  The split is contiguous, never shuffled (neighbouring lines share a
scene, so a random split would leak): the first 90% trains; of the last 10%, the first half
validates (model selection, the catalog's number) and the second half is the test set, read
once at the end.  The character vocabulary is the file's characters, sorted.  Any other UTF-8
text file is read the same way with data.path=FILE (a text file's own name, no MD5 check).

For truncated backpropagation through time, a split is cut into `batch` equal streams laid
side by side, and each step reads the next `window` characters of every stream: consecutive
windows of a row continue the same text, so the model's state can be carried from one to the
next (train/lm_loop.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from ..config import Count, Encoding, Fraction, Size, UserPath
from ..errors import ConfigError, DataError
from . import DataContext, register_dataset
from .text import Vocab
from .userfiles import decode_text, read_bytes, resolve_path

FILE = Path("tinyshakespeare") / "input.txt"
MD5 = "6fb458f1232090904fb40fe944165e91"  # the canonical file (char-rnn's data/tinyshakespeare/input.txt)
WHERE = "https://github.com/karpathy/char-rnn/blob/master/data/tinyshakespeare/input.txt"


@dataclass
class CharCorpus:
    name: str
    train: torch.Tensor  # int64 character ids, 1-D
    val: torch.Tensor
    test: torch.Tensor
    vocab: Vocab
    window: int  # characters per truncated-BPTT window
    source: str
    prompt: str = ""  # what the run's report samples start from
    note: str = ""
    unit = "characters"

    def size(self, split: str) -> int:
        return len(getattr(self, split))

    def steps(self, split: str, batch: int) -> int:
        """Windows per pass over a split read as `batch` streams."""
        return -(-((self.size(split) - 1) // batch) // self.window)

    def windows(self, split: str, batch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(x, y) pairs of batch x window ids, y the character after each of x, in reading
        order: row b of each pair continues row b of the previous one."""
        ids = getattr(self, split)
        length = (len(ids) - 1) // batch  # each stream needs one character more for its targets
        if length < 1:
            raise DataError(f"{self.name}: the {split} split ({len(ids):,} characters) is too short for {batch} streams")
        x = ids[:batch * length].view(batch, length)
        y = ids[1:batch * length + 1].view(batch, length)
        for start in range(0, length, self.window):
            yield x[:, start:start + self.window], y[:, start:start + self.window]

    @property
    def in_shape(self) -> tuple[int, ...]:
        return (len(self.vocab),)

    def example_input(self) -> torch.Tensor:
        return self.train[:self.window].unsqueeze(0)

    def info(self) -> dict:
        return {
            "name": self.name, "kind": "characters", "in_shape": list(self.in_shape), "vocab_size": len(self.vocab),
            "window": self.window, "sizes": {s: self.size(s) for s in ("train", "val", "test")},
            "source": self.source, "prompt": self.prompt, "note": self.note,
        }


def find_file(root: Path) -> Path:
    path = root / FILE
    if not path.is_file():
        raise DataError(f"tiny Shakespeare not found: expected {path}; download input.txt from {WHERE} "
                        f"into {path.parent} (or point --data-dir / DEEPSTUDY_DATA at a folder holding {FILE})")
    return path


@register_dataset("tinyshakespeare")
def tinyshakespeare(ctx: DataContext, *, path: UserPath = "", encoding: Encoding = "auto", val_fraction: Fraction = 0.05,
                    test_fraction: Fraction = 0.05, window: Size = 128, limit: Count = 0) -> CharCorpus:
    """Tiny Shakespeare as characters, or any text file of yours (data.path=FILE, as nanoGPT
    takes any input.txt).  path: the file (default: tinyshakespeare/input.txt in the data root);
    encoding: its encoding (auto: UTF-8); val_fraction, test_fraction: the shares after the
    training text (contiguous, in that order); window: characters per truncated-BPTT step;
    limit: read only the first `limit` characters (smoke tests)."""
    if val_fraction <= 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise ConfigError("data.val_fraction must be > 0, data.test_fraction >= 0, and together below 1")
    if window < 1:
        raise ConfigError(f"data.window must be at least 1, got {window}")
    file = resolve_path(ctx.root, path, "path") if path else find_file(ctx.root)
    raw = read_bytes(file)
    note = ""
    if not path and hashlib.md5(raw).hexdigest() != MD5:
        note = "not the canonical tiny Shakespeare file"
        ctx.log(f"warning: {file}: {note} (MD5 differs)")
    text = decode_text(file, raw, encoding)  # a file that is not text: one line naming it
    if limit:
        text = text[:limit]
    n_train = round(len(text) * (1 - val_fraction - test_fraction))
    n_val = round(len(text) * val_fraction)
    # at least one window to train on and two characters (an input and its target) to validate on
    if not text.strip():
        raise DataError(f"{file} is empty: there is no text to learn")
    if n_train < window + 1 or n_val < 2:
        raise DataError(f"{file}: {len(text):,} characters are too few: its first "
                        f"{1 - val_fraction - test_fraction:.0%} trains and needs at least data.window + 1 = "
                        f"{window + 1} characters, the validation part at least 2; give a longer text "
                        f"(or a smaller data.window)")
    parts = {"train": text[:n_train], "val": text[n_train:n_train + n_val], "test": text[n_train + n_val:]}
    # The vocabulary is the file's own characters, as nanoGPT's: a character first met in the
    # held-out part (an accent in the last chapter) is not a reason to refuse a file.  A finished
    # run's (eval, resume) is its vocab.json, so the ids are the ones its model learned.
    vocab = Vocab(ctx.vocab) if ctx.vocab is not None else Vocab(sorted(set(text)))
    unseen = sorted(set(text) - set(vocab.tokens))
    if unseen:
        raise DataError(f"{file} has characters the run's vocabulary lacks: {''.join(unseen)!r}")
    ids = {s: torch.tensor(vocab.encode(t), dtype=torch.long, device=ctx.device) for s, t in parts.items()}
    prompt = "ROMEO:" if not path and all(c in vocab for c in "ROMEO:") else ""
    return CharCorpus("tinyshakespeare" if not path else file.stem, ids["train"], ids["val"], ids["test"], vocab,
                      window, str(file), prompt=prompt, note=note)
