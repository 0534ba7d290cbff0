"""splits.csv: a run directory says which example went to train, validation and test, so a
generated split (and a split by group) can be audited and rebuilt from the run alone."""

from __future__ import annotations

from collections import defaultdict

import pytest

from deepstudy import api
from deepstudy.data import DataContext, load_dataset
from deepstudy.data.idx import read_idx
from deepstudy.data.root import EMBEDDED
from deepstudy.io import read_csv
from test_folders import patient_csv


def test_a_run_lists_the_position_of_every_image_in_its_split(tmp_path):
    r = api.run("lenet5-mnist", tier="smoke", out=tmp_path / "run", progress=False, log=lambda m: None)
    rows = read_csv(r.run_dir / "splits.csv")
    index = defaultdict(list)
    for row in rows:
        index[row["split"]].append(row["index"])
    sizes = r.config["data"]["sizes"]
    assert {s: len(v) for s, v in index.items()} == sizes  # every image of every split, once
    assert all(len(set(v)) == len(v) for v in index.values())
    assert not set(index["train"]) & set(index["val"])  # validation is carved from training: never both
    # the positions are real: the label at that position of the file is the label listed
    train_labels, test_labels = _mnist_labels("train"), _mnist_labels("t10k")
    for row in rows:
        labels = test_labels if row["split"] == "test" else train_labels
        assert str(labels[row["index"]]) == str(row["label"])


def _mnist_labels(prefix: str):
    """The labels of the MNIST file the package carries, in file order."""
    path = next(p for p in (EMBEDDED / "MNIST" / "raw").iterdir() if p.name.startswith(f"{prefix}-labels"))
    return read_idx(path)


@pytest.mark.parametrize("memory_mb, size", [(2048, 16), (1, 600)], ids=["in-memory", "streamed"])
def test_a_split_by_group_lists_each_file_with_its_group(tmp_path, memory_mb, size):
    csv = patient_csv(tmp_path)
    data = load_dataset("image_csv", DataContext(root=tmp_path, log=lambda m: None), csv=str(csv),
                        path_column="file", label_column="diagnosis", group_column="patient", size=size,
                        memory_mb=memory_mb, max_bad=0.2)
    rows = data.members()
    assert len(rows) == sum(data.size(s) for s in ("train", "val", "test")) == 36
    split_of_group = defaultdict(set)
    for row in rows:
        split_of_group[row["group"]].add(row["split"])
        patient = int(row["file"].split("_")[0].removeprefix("scans/p"))
        assert row["group"] == f"patient{patient}"  # the file's own group, as the CSV gives it
        assert row["label"] == ("malignant" if patient % 2 else "benign")
    assert all(len(splits) == 1 for splits in split_of_group.values())  # no patient in two splits
    assert {row["split"] for row in rows} == {"train", "val", "test"}
    skipped = {item["file"] for item in data.info()["skipped"]}
    assert not skipped & {row["file"] for row in rows if row["file"] != "scans/p0_0.png"}


def test_a_text_split_lists_each_question_where_it_went(tmp_path, data_root):
    data = load_dataset("trec", DataContext(root=data_root, log=lambda m: None), limit=200)
    rows = data.members()
    by_split = defaultdict(list)
    for row in rows:
        by_split[row["split"]].append(row)
    assert {s: len(v) for s, v in by_split.items()} == {s: data.size(s) for s in ("train", "val", "test")}
    for split in ("train", "val", "test"):  # the texts listed are the split's own, in its order
        assert [r["text"] for r in by_split[split]] == getattr(data, split).texts
    assert not {r["index"] for r in by_split["train"]} & {r["index"] for r in by_split["val"]}
