"""Your own data for every kind of study: texts to classify from a CSV (text_csv), any text file
for the character language model (data.path), and image CSVs whose file column is a bare name
inside a per-class folder (data.path_template, as Kaggle State Farm's driver_imgs_list.csv).

Real smoke runs on real text (TREC written out as a CSV, this project's README as a corpus),
the rows and files that cannot be used listed and skipped, and each mistake one line."""

from __future__ import annotations

import csv
import json
import math
import shlex
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepstudy import api
from deepstudy.cli import main
from deepstudy.data import DataContext, load_dataset
from deepstudy.data.text import tokenize
from deepstudy.errors import ConfigError, DataError
from deepstudy.io import read_csv

README = Path(__file__).resolve().parents[1] / "README.md"


def quiet(msg):
    pass


def trec_csv(data_root: Path, path: Path, **write) -> Path:
    """The TREC questions (real when ../shared is there, else conftest's hand-made copy) as a
    CSV of question,label (coarse), with their split: the 500 TREC-10 questions are test."""
    rows = []
    for name, split in (("train_5500.label", "train"), ("TREC_10.label", "test")):
        for line in (data_root / "trec" / name).read_bytes().decode("latin-1").splitlines():
            if line.strip():
                label, _, text = line.partition(" ")
                rows.append([text, label.split(":")[0], split])
    with open(path, "w", newline="", encoding=write.pop("encoding", "utf-8"), errors="replace") as f:
        w = csv.writer(f, **write)
        w.writerow(["question", "label", "split"])
        w.writerows(rows)
    return path


# ------------------------------------------------------------------ text_csv: a real run

def test_trec_lstm_on_a_csv_of_trec_learns_and_predicts(data_root, tmp_path, capsys):
    path = trec_csv(data_root, tmp_path / "questions.csv")
    out = tmp_path / "run"
    r = api.run("trec-lstm", tier="smoke", out=out, data_dir=data_root, threads=1, progress=False, log=quiet,
                options={"data.name": "text_csv", "data.csv": str(path), "data.text_column": "question",
                         "data.label_column": "label", "data.limit": 1000})
    m = r.metrics
    # six classes: chance is 1/6 (the largest class, ENTY, is 23%); three smoke epochs on 1,000
    # real questions reach about 65%
    assert m["val"]["accuracy"] > 0.45 and m["test"]["accuracy"] > 0.45, m
    info = r.config["data"]
    assert info["classes"] == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"] and info["kind"] == "text"
    rows_in_file = len(path.read_text(encoding="utf-8").splitlines()) - 1
    carved = round(0.1 * rows_in_file)  # val and test: a tenth each, then capped by data.limit
    assert info["sizes"] == {"train": 1000, "val": min(250, carved), "test": min(250, carved)}
    assert info["known_token_share"]["train"] == 1

    # splits.csv names each text by its line in the file, with its label: both are the file's own
    lines = path.read_text(encoding="utf-8").splitlines()
    listed = read_csv(out / "splits.csv")
    assert len(listed) == sum(info["sizes"].values()) and {row["split"] for row in listed} == {"train", "val", "test"}
    for row in listed[::37]:
        text, label, _ = next(csv.reader([lines[int(row["line"]) - 1]]))
        assert (row["text"], row["label"]) == (text, label)

    # the vocabulary is the training split's words, no other (validation meets unknown words as test will)
    vocab = json.loads((out / "vocab.json").read_text())["tokens"]
    train_words = {w for row in listed if row["split"] == "train" for w in tokenize(row["text"])}
    assert vocab[:2] == ["<pad>", "<unk>"] and set(vocab[2:]) == train_words

    # eval reads the CSV again with the run's vocabulary: the same test split, the same number
    assert main(["eval", str(out)]) == 0
    assert f"accuracy {100 * m['test']['accuracy']:.2f}%" in capsys.readouterr().out

    # predict reads the run's vocab.json, as for TREC
    assert main(["predict", str(out), "Who invented the telephone ?", "How many miles is it to the moon ?", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["top"][0]["class"] for row in rows] == ["HUM", "NUM"], rows


# ------------------------------------------------------------------ text_csv: reading the file

def load_text_csv(path: Path, messages=None, **options):
    return load_dataset("text_csv", DataContext(root=path.parent, log=messages.append if messages is not None else quiet),
                        csv=str(path), **options)


def test_split_column_and_unusable_rows_are_listed_by_line_and_skipped(tmp_path):
    lines = ["text,label,split"]
    for i in range(40):
        lines.append(f"the {'cat' if i % 2 else 'dog'} number {i},{'ab'[i % 2]},{['train', 'train', 'val', 'test'][i % 4]}")
    lines[5] = "   ,a,train"  # line 6: an empty text
    lines[9] = "a text without a label,,train"  # line 10: an empty label
    lines[13] = "a third split,a,holdout"  # line 14
    lines.append('"a text, with a comma and ""quotes""",c,test')  # line 42: a class no training row has
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    messages = []
    data = load_text_csv(tmp_path / "t.csv", messages, split_column="split", max_bad=0.1)
    assert data.classes == ["a", "b"] and data.unit == "texts"
    assert (data.size("train"), data.size("val"), data.size("test")) == (17, 10, 10)
    log = "\n".join(messages)
    assert "skipping 4 of 41 rows" in log
    for n, why in ((6, "empty text"), (10, "empty label"), (14, "'holdout', not train/val/test"),
                   (42, "label 'c' is not in the training split")):
        assert f"line {n}: " in log and why in log.split(f"line {n}: ")[1].splitlines()[0], (n, log)

    # beyond max_bad: one error naming the lines
    with pytest.raises(DataError, match=r"4 of 41 rows \(9.8%\) .* more than data.max_bad=0.05: line 6 \(empty text\)"):
        load_text_csv(tmp_path / "t.csv", split_column="split", max_bad=0.05)


def test_without_a_split_column_the_carve_is_stratified_and_seeded(tmp_path):
    rows = [["text", "label"]] + [[f"word{i} and more {i % 7}", ["x", "y", "z"][i % 3]] for i in range(300)]
    with open(tmp_path / "t.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    a = load_text_csv(tmp_path / "t.csv", val_fraction=0.2, test_fraction=0.1)
    assert (a.size("train"), a.size("val"), a.size("test")) == (210, 60, 30)
    assert a.val.class_counts(3) == [20, 20, 20] and a.test.class_counts(3) == [10, 10, 10]
    b = load_dataset("text_csv", DataContext(root=tmp_path, seed=1, log=quiet), csv=str(tmp_path / "t.csv"),
                     val_fraction=0.2, test_fraction=0.1)
    assert a.val.texts != b.val.texts and sorted(a.val.texts + a.test.texts + a.train.texts) == \
        sorted(b.val.texts + b.test.texts + b.train.texts)


TEXTS = ["Où est le café ?", "Ça coûte 5 € – trop cher", "naïve résumé façade", "plain words here"] * 5


@pytest.mark.parametrize("suffix, encoding, write", [
    (".csv", "utf-8-sig", {}),  # Excel's "CSV UTF-8": a byte-order mark
    (".tsv", "utf-8", {"delimiter": "\t"}),  # a tab, by the extension
    (".csv", "utf-8", {"delimiter": ";"}),  # a semicolon, as European spreadsheets write, detected
    (".txt", "utf-16", {"delimiter": "\t"}),  # Excel's "Unicode text": UTF-16 with its mark, tabs
], ids=["utf8-bom", "tsv", "semicolon", "utf16"])
def test_encodings_and_delimiters_are_detected(tmp_path, suffix, encoding, write):
    path = tmp_path / f"t{suffix}"
    with open(path, "w", newline="", encoding=encoding) as f:
        w = csv.writer(f, **write)
        w.writerow(["text", "label"])
        w.writerows([t, "ab"[i % 2]] for i, t in enumerate(TEXTS))
    data = load_text_csv(path, split_column="", val_fraction=0.2, test_fraction=0.2)
    assert sorted(data.train.texts + data.val.texts + data.test.texts) == sorted(TEXTS)


def test_other_encodings_are_named_or_refused_in_one_line(tmp_path):
    path = tmp_path / "windows.csv"
    with open(path, "w", newline="", encoding="cp1252") as f:
        csv.writer(f).writerows([["text", "label"], *([t, "ab"[i % 2]] for i, t in enumerate(TEXTS))])
    with pytest.raises(DataError, match=r"windows.csv is not UTF-8 text \(byte 0x.. on line \d+\); .*data.encoding=cp1252"):
        load_text_csv(path)
    data = load_text_csv(path, encoding="cp1252", val_fraction=0.2, test_fraction=0.2)
    assert sorted(data.train.texts + data.val.texts + data.test.texts) == sorted(TEXTS)  # € and – survive
    with pytest.raises(ConfigError, match="data.encoding"):  # a misspelt encoding: refused before the file is read
        api.run("trec-lstm", tier="smoke", out=tmp_path / "run", progress=False, log=quiet,
                options={"data.name": "text_csv", "data.csv": str(path), "data.encoding": "cp-1252"})
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ any text file for the language model

def test_char_lstm_on_a_text_file_of_its_own(tmp_path, capsys):
    corpus = tmp_path / "notes.txt"
    corpus.write_text(README.read_text(encoding="utf-8")[:40_000], encoding="utf-8")
    out = tmp_path / "run"
    r = api.run("shakespeare-char-lstm", tier="smoke", out=out, threads=1, progress=False, log=quiet,
                options={"data.path": str(corpus)})
    text = corpus.read_text(encoding="utf-8")
    vocab = json.loads((out / "vocab.json").read_text())["tokens"]
    assert vocab == sorted(set(text)) and "|" in vocab  # the file's own characters, not Shakespeare's 65
    info = r.config["data"]
    assert info["name"] == "notes" and info["source"] == str(corpus) and info["note"] == ""
    assert sum(info["sizes"].values()) == len(text)
    # it learns: well below a uniform guess over the file's characters after one smoke epoch
    assert r.metrics["val"]["loss"] < 0.85 * math.log(len(vocab)), r.metrics["val"]

    assert main(["generate", str(out), "--prompt", "The ", "--length", "120", "--seed", "3"]) == 0
    sample = capsys.readouterr().out
    assert sample.startswith("The ") and len(sample.rstrip("\n")) >= 124 and set(sample) <= set(vocab) | {"\n"}


# ------------------------------------------------------------------ State Farm's image list

def state_farm(root: Path, drivers: int = 8, per_class: int = 8) -> Path:
    """driver_imgs_list.csv (subject,classname,img) and imgs/train/<classname>/<img>, as Kaggle's
    State Farm distracted-driver data lays them out: small PNGs, each class its own colour."""
    rng = np.random.default_rng(0)
    colours = {"c0": (200, 40, 40), "c1": (40, 200, 40), "c2": (40, 40, 200)}
    rows = ["subject,classname,img"]
    for d in range(drivers):
        for c, colour in colours.items():
            (root / "imgs" / "train" / c).mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                name = f"img_{d}{c}{k}.png"
                pixels = np.clip(np.array(colour) + rng.integers(-50, 51, (24, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / "imgs" / "train" / c / name)
                rows.append(f"p{d:03d},{c},{name}")
    (root / "driver_imgs_list.csv").write_text("\n".join(rows) + "\n")
    return root / "driver_imgs_list.csv"


def test_a_state_farm_list_trains_with_every_driver_in_one_split(tmp_path):
    listing = state_farm(tmp_path / "statefarm")
    out = tmp_path / "run"
    r = api.run("cifar-cnn-bn", tier="smoke", out=out, threads=1, progress=False, log=quiet,
                options={"data.name": "image_csv", "data.csv": str(listing), "data.label_column": "classname",
                         "data.path_template": "imgs/train/{classname}/{img}", "data.group_column": "subject",
                         "data.size": 32})
    assert r.config["data"]["classes"] == ["c0", "c1", "c2"] and r.config["data"]["skipped"] == []
    assert r.metrics["test"]["accuracy"] > 0.6, r.metrics["test"]  # three colours; chance is 1/3
    rows = read_csv(out / "splits.csv")
    assert len(rows) == 8 * 3 * 8 and set(rows[0]) == {"split", "file", "label", "group"}
    split_of = defaultdict(set)
    for row in rows:
        split_of[row["group"]].add(row["split"])
        assert row["file"] == f"imgs/train/{row['label']}/img_{int(row['group'][1:])}{row['label']}{row['file'][-5]}.png"
        assert (listing.parent / row["file"]).is_file()
    assert all(len(s) == 1 for s in split_of.values()) and len(split_of) == 8  # no driver in two splits
    assert {s for ss in split_of.values() for s in ss} == {"train", "val", "test"}


def test_a_template_row_whose_file_is_missing_is_listed_and_skipped(tmp_path):
    listing = state_farm(tmp_path / "sf", drivers=6, per_class=4)
    (listing.parent / "imgs" / "train" / "c1" / "img_2c13.png").unlink()
    with open(listing, "a") as f:
        f.write("p005,c2,\n")  # a row without its file name
    messages = []
    data = load_dataset("image_csv", DataContext(root=tmp_path, log=messages.append), csv=str(listing),
                        label_column="classname", path_template="imgs/train/{classname}/{img}",
                        group_column="subject", size=16, max_bad=0.05)
    assert sum(data.size(s) for s in ("train", "val", "test")) == 6 * 3 * 4 - 1
    skipped = {item["file"]: item["reason"] for item in data.info()["skipped"]}
    assert skipped == {"imgs/train/c1/img_2c13.png": "missing", "line 74": "line 74: empty img"}


# ------------------------------------------------------------------ mistakes: one line each

@pytest.fixture
def files(tmp_path):
    trec_like = tmp_path / "q.csv"
    trec_like.write_text("question,label\nWho wrote Hamlet ?,HUM\nWhat is an atom ?,DESC\n")
    windows = tmp_path / "windows.csv"
    windows.write_bytes("text,label\ncafé – crème,a\n".encode("cp1252"))
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 40)
    latin = tmp_path / "latin.txt"
    latin.write_bytes(("Où est la forêt ? " * 200).encode("latin-1"))
    state_farm(tmp_path / "sf", drivers=3, per_class=2)
    return {"q": trec_like, "windows": windows, "bin": binary, "latin": latin, "sf": tmp_path / "sf" / "driver_imgs_list.csv"}


TEXT = "run trec-lstm --tier smoke --out {out} --set data.name=text_csv "
LM = "run shakespeare-char-lstm --tier smoke --out {out} --set "
IMAGES = "run cifar-cnn-bn --tier smoke --out {out} --set data.name=image_csv data.csv={sf} data.label_column=classname "
MISTAKES = [
    ("a CSV without the named columns", TEXT + "data.csv={q} data.text_column=text data.label_column=class",
     ["q.csv", "no column 'text', 'class'", "its columns are question, label", "data.text_column"]),
    ("an encoding that does not decode", TEXT + "data.csv={windows} data.encoding=utf-8",
     ["windows.csv is not UTF-8 text", "line 2", "data.encoding=cp1252"]),
    ("a text file that is not text", LM + "data.path={bin}", ["model.bin", "not a text file"]),
    ("a text file that is not UTF-8", LM + "data.path={latin}", ["latin.txt", "not UTF-8"]),
    ("an unknown placeholder", IMAGES + "data.path_template=imgs/train/{{class}}/{{img}}",
     ["names no column {{class}}", "the columns of driver_imgs_list.csv are subject, classname, img"]),
    ("a template without placeholders", IMAGES + "data.path_template=imgs/all.png", ["has no {{column}} placeholder"]),
    ("an unmatched brace", IMAGES + "data.path_template=imgs/{{classname", ["not a template"]),
    ("an unknown encoding", TEXT + "data.csv={q} data.encoding=utf9", ["data.encoding", "utf9"]),
    ("a CSV that is missing", TEXT + "data.csv={out}/nope.csv", ["data.csv=", "no such file"]),
]


@pytest.mark.parametrize("line, words", [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_a_mistake_with_own_data_is_one_line_and_writes_nothing(files, tmp_path, capsys, line, words):
    out = tmp_path / "out"
    before = sorted(p for p in tmp_path.rglob("*"))
    code = main([a.format(out=out, **files) for a in shlex.split(line)])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert lines[0].startswith("deepstudy: error: ")
    for word in words:
        assert word.format() in lines[0], lines[0]
    assert sorted(p for p in tmp_path.rglob("*")) == before, "a refused run left files behind"


def test_a_relative_data_path_is_recorded_absolute_so_eval_finds_it_from_anywhere(data_root, tmp_path, monkeypatch,
                                                                                 capsys):
    # data.csv=questions.csv typed in the folder that holds it: config.json must name the file
    # itself, or `deepstudy eval` (and --from, --resume) from another folder reads nothing
    from deepstudy.cli import main

    root = data_root
    here = tmp_path / "work"
    here.mkdir()
    trec_csv(root, here / "questions.csv")
    monkeypatch.chdir(here)
    r = api.run("trec-cnn", tier="smoke", out=tmp_path / "run", data_dir=root, threads=1, progress=False, log=quiet,
                options={"data.name": "text_csv", "data.csv": "questions.csv", "data.text_column": "question",
                         "data.label_column": "label", "data.limit": 300})
    recorded = r.config["config"]["data"]["csv"]
    assert recorded == str(here / "questions.csv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run")]) == 0
    assert f"accuracy {100 * r.metrics['test']['accuracy']:.2f}%" in capsys.readouterr().out
    # and ~ means the home folder, not a folder named "~"
    from deepstudy.config import UserPath, coerce
    assert coerce("data.csv", "~/q.csv", UserPath) == str(Path.home() / "q.csv") and coerce("data.csv", "", UserPath) == ""
