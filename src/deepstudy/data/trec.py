"""TREC question classification (Li & Roth, COLING 2002): 5,452 training and 500 test questions,
one per line as `COARSE:fine question text`, Latin-1, with 6 coarse and 50 fine classes.

Looked for in `<data root>/trec/` (or `TREC/`): `train_5500.label` and `TREC_10.label`, the
names the Cognitive Computation Group publishes them under and torchtext used.  There is no
download here: the error says where to get them.  The files are read as they are, quirks and
all (a raw 0xF0 byte in one question, stray POS tags at the end of another): they are part of
the benchmark everyone reports on.

The validation split is carved from the training questions (seeded); the vocabulary is built
on what remains for training, so validation sees unknown words as the test set will; the 500
test questions are read once, at the end.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import torch

from ..config import Count, Fraction, Probability, Size
from ..errors import ConfigError, DataError
from . import DataContext, register_dataset
from .text import TextClassificationData, encode_splits

FILES = {"train": "train_5500.label", "test": "TREC_10.label"}
FOLDERS = ("trec", "TREC")
# MD5s of the canonical files, as torchtext published them
MD5 = {"train_5500.label": "073462e3fcefaae31e00edb1f18d2d02", "TREC_10.label": "323a3554401d86e650717e2d2f942589"}
WHERE = "https://cogcomp.seas.upenn.edu/Data/QA/QC/"


def find_folder(root: Path) -> Path:
    for name in FOLDERS:
        folder = root / name
        if all((folder / f).is_file() for f in FILES.values()):
            return folder
    looked = " or ".join(str(root / name) for name in FOLDERS)
    raise DataError(f"TREC not found: expected {FILES['train']} and {FILES['test']} in {looked}; "
                    f"download both files from {WHERE} into {root / 'trec'} "
                    f"(or point --data-dir / DEEPSTUDY_DATA at a folder holding trec/)")


def read_label_file(path: Path) -> list[tuple[str, str]]:
    """[(label "COARSE:fine", question text)] in file order.  Latin-1: every byte decodes, so
    the original's odd bytes survive as they are."""
    rows = []
    for number, line in enumerate(path.read_bytes().decode("latin-1").split("\n"), 1):
        if not line.strip():
            continue
        label, _, text = line.rstrip("\r").partition(" ")
        coarse, colon, fine = label.partition(":")
        if not (colon and coarse.isupper() and fine and text.strip()):
            raise DataError(f"{path} line {number} is not `COARSE:fine question`: {line[:60]!r}")
        rows.append((label, text))
    if not rows:
        raise DataError(f"{path} holds no questions")
    return rows


def _canonical_note(folder: Path, log) -> str:
    """The published files are checked by MD5.  A different copy (many circulate with hand-cleaned
    lines) is used, but said so, since its numbers are not comparable to the published ones."""
    differ = [name for name, md5 in MD5.items() if hashlib.md5((folder / name).read_bytes()).hexdigest() != md5]
    if not differ:
        return ""
    note = f"not the canonical TREC files ({', '.join(differ)} differ from the published MD5)"
    log(f"warning: {folder}: {note}")
    return note


@register_dataset("trec")
def trec(ctx: DataContext, *, labels: Literal["coarse", "fine"] = "coarse", val_fraction: Fraction = 0.1,
         min_freq: Size = 1, lowercase: bool = True, word_dropout: Probability = 0.0,
         limit: Count = 0) -> TextClassificationData:
    """TREC questions.  labels: coarse (6 classes) or fine (50, named COARSE:fine);
    val_fraction: share of the training questions held out for validation;
    min_freq: a word seen fewer times in the training split becomes <unk>;
    lowercase: fold case before splitting words from punctuation;
    word_dropout: share of training words replaced by <unk> at random, anew each epoch;
    limit: cap the training questions (validation and test get a quarter as many; smoke tests)."""
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
    if not 0 <= word_dropout < 1:
        raise ConfigError(f"data.word_dropout must be in [0, 1), got {word_dropout}")
    folder = find_folder(ctx.root)
    note = _canonical_note(folder, ctx.log)
    rows = {split: read_label_file(folder / name) for split, name in FILES.items()}

    def target(label: str) -> str:
        return label.split(":")[0] if labels == "coarse" else label

    # Classes come from the training file, in sorted order (ABBR, DESC, ENTY, HUM, LOC, NUM).
    classes = sorted({target(label) for label, _ in rows["train"]})
    index = {c: i for i, c in enumerate(classes)}
    unseen = sorted({target(label) for label, _ in rows["test"]} - set(index))
    if unseen:
        raise DataError(f"{folder / FILES['test']}: classes not in the training file: {', '.join(unseen)}")

    order = torch.randperm(len(rows["train"]), generator=torch.Generator().manual_seed(ctx.seed)).tolist()
    n_val = round(len(order) * val_fraction)
    # each question's position among its file's questions (train and val: the training file)
    positions = {"train": order[n_val:], "val": order[:n_val], "test": list(range(len(rows["test"])))}
    if limit:  # smoke tier: a small real subset, same proportions
        positions = {s: p[:limit if s == "train" else max(1, limit // 4)] for s, p in positions.items()}
    parts = {s: [rows["test" if s == "test" else "train"][i] for i in p] for s, p in positions.items()}
    listing = [{"split": s, "index": i, "label": target(label), "text": text}
               for s in positions for i, (label, text) in zip(positions[s], parts[s])]
    splits, vocab = encode_splits({s: [t for _, t in p] for s, p in parts.items()},
                                  {s: [index[target(label)] for label, _ in p] for s, p in parts.items()},
                                  min_freq, lowercase, ctx.vocab, ctx.device)
    return TextClassificationData(
        "trec" if labels == "coarse" else "trec_fine", splits["train"], splits["val"], splits["test"], classes, vocab,
        str(folder), lowercase=lowercase, word_dropout=word_dropout, note=note, listing=listing)
