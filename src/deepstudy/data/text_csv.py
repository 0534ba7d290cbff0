"""Your own texts to classify: a CSV or TSV file with a text column and a label column, for every
text classifier recipe (`--set data.name=text_csv data.csv=FILE data.text_column=question
data.label_column=label`).

The file is read by data/userfiles.py as image_csv's is (UTF-8 with or without a byte-order mark
unless data.encoding names another; a tab for .tsv, else the header's delimiter).  The split is
the split column's (train/val/test per row) when there is one, else a seeded stratified carve of
data.val_fraction and data.test_fraction.  Texts become token ids exactly as TREC's do
(data/text.py: the same tokenizer, a vocabulary built on the training split only), so a run on
your file is used like a TREC run: `deepstudy predict RUN "some text"` reads its vocab.json.

Rows that cannot be used are listed by line and skipped under the rule images follow
(data.max_bad): an empty text, an empty label, a split value that is not train/val/test, and a
label in validation or test that no training row has (a class the model has no output for).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..config import Count, Encoding, Fraction, Probability, Share, Size, UserPath
from ..errors import DataError
from . import DataContext, register_dataset
from .folders import SPLITS, stratified_split
from .text import TextClassificationData, encode_splits
from .userfiles import check_bad, read_table, require_columns, resolve_path, split_name


@register_dataset("text_csv")
def text_csv(ctx: DataContext, *, csv: UserPath = "", text_column: str = "text", label_column: str = "label",
             split_column: str = "", encoding: Encoding = "auto", delimiter: Literal["auto", ",", ";", "tab", "|"] = "auto",
             val_fraction: Fraction = 0.1, test_fraction: Fraction = 0.1, max_bad: Share = 0.05, min_freq: Size = 1,
             lowercase: bool = True, word_dropout: Probability = 0.0, limit: Count = 0) -> TextClassificationData:
    """Texts and their classes from a CSV or TSV file.  csv: the file; text_column, label_column:
    its columns; split_column: train/val/test per row (else val_fraction and test_fraction are
    carved, stratified and seeded); encoding: the file's (auto: UTF-8); delimiter: auto, ",", ";",
    tab or "|"; max_bad: share of unusable rows tolerated (skipped and listed); min_freq,
    lowercase, word_dropout: as for trec; limit: cap the training texts (validation and test get
    a quarter as many; smoke tests)."""
    path = resolve_path(ctx.root, csv, "csv")
    columns, rows = read_table(path, encoding, delimiter)
    require_columns(path, columns, {"data.text_column": text_column, "data.label_column": label_column,
                                    "data.split_column": split_column})
    bad: list[tuple[str, str]] = []
    kept = []  # (line, label, text, split or "")
    for line, row in rows:
        text, label = (row.get(text_column) or "").strip(), (row.get(label_column) or "").strip()
        split = split_name(row.get(split_column)) if split_column else ""
        if not text or not label:
            bad.append((f"line {line}", f"empty {text_column if not text else label_column}"))
        elif split_column and not split:
            bad.append((f"line {line}", f"{split_column} is {row.get(split_column)!r}, not train/val/test"))
        else:
            kept.append((line, label, text, split))
    if not split_column:  # carve validation and test out of every row, each class in proportion
        names = sorted({label for _, label, _, _ in kept})
        parts = stratified_split([names.index(label) for _, label, _, _ in kept],
                                 (1 - val_fraction - test_fraction, val_fraction, test_fraction), ctx.seed)
        split_of = {i: s for s, part in zip(SPLITS, parts) for i in part}
        kept = [(line, label, text, split_of[i]) for i, (line, label, text, _) in enumerate(kept)]

    # The classes are the training rows' labels: the model has an output for each, no other
    classes = sorted({label for _, label, _, split in kept if split == "train"})
    unknown = {line: label for line, label, _, split in kept if split != "train" and label not in classes}
    bad += [(f"line {line}", f"label {label!r} is not in the training split") for line, label in unknown.items()]
    kept = [k for k in kept if k[0] not in unknown]
    bad.sort(key=lambda b: int(b[0].split()[1]))  # in file order, whatever the reason
    check_bad(bad, len(rows), max_bad, str(path), ctx.log, unit="rows",
              problem="unusable (an empty text or label, or a label the training split lacks)")
    if len(classes) < 2:
        raise DataError(f"{path}: the training rows' column {label_column!r} names {len(classes)} class(es); "
                        f"need at least two")
    by_split = {s: [k for k in kept if k[3] == s] for s in SPLITS}
    empty = [s for s in SPLITS if not by_split[s]]
    if empty:
        raise DataError(f"{path}: no rows for {' and '.join(empty)} ({', '.join(f'{s} {len(by_split[s])}' for s in SPLITS)}"
                        f"); " + ("give each split rows in column " + repr(split_column) if split_column else
                                  "a file this small needs larger data.val_fraction / data.test_fraction"))
    if limit:  # smoke tier: a seeded random subset of each split, in file order
        g = np.random.default_rng(ctx.seed)
        caps = {"train": limit, "val": max(1, limit // 4), "test": max(1, limit // 4)}
        by_split = {s: [ks[i] for i in sorted(g.permutation(len(ks))[:caps[s]])] for s, ks in by_split.items()}

    index = {c: i for i, c in enumerate(classes)}
    splits, vocab = encode_splits({s: [text for _, _, text, _ in ks] for s, ks in by_split.items()},
                                  {s: [index[label] for _, label, _, _ in ks] for s, ks in by_split.items()},
                                  min_freq, lowercase, ctx.vocab, ctx.device)
    listing = [{"split": s, "line": line, "label": label, "text": text}
               for s, ks in by_split.items() for line, label, text, _ in ks]
    return TextClassificationData(path.stem, splits["train"], splits["val"], splits["test"], classes, vocab,
                                  str(path), lowercase=lowercase, word_dropout=word_dropout, unit="texts",
                                  listing=listing)
