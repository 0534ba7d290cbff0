"""Image folders and CSV-described datasets: layouts, stratified and group-aware splits, and
missing or corrupt images listed, skipped, or fatal beyond data.max_bad."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deepstudy import cli
from deepstudy.data import DataContext, load_dataset
from deepstudy.data.folders import stratified_split
from deepstudy.errors import DataError


def ctx_for(tmp_path, messages=None):
    return DataContext(root=tmp_path, log=(messages.append if messages is not None else lambda m: None))


def patient_csv(tmp_path, patients=12, per_patient=3):
    """Images of patients, each patient's images one flat grey whose level encodes the patient
    (PNG: lossless), so a test can tell from the pixels which patient an image came from.  Plus
    a missing file, a corrupt JPEG and a row without a class."""
    images = tmp_path / "scans"
    images.mkdir()
    rows = ["file,diagnosis,patient"]
    for p in range(patients):
        label = "malignant" if p % 2 else "benign"
        for k in range(per_patient):
            Image.new("RGB", (20 + k, 24), (10 * p + 5,) * 3).save(images / f"p{p}_{k}.png")
            rows.append(f"scans/p{p}_{k}.png,{label},patient{p}")
    (images / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 20)  # a JPEG cut short
    rows += ["scans/missing.png,benign,patient99", "scans/corrupt.jpg,malignant,patient98", "scans/p0_0.png,,patient0"]
    csv = tmp_path / "scans.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def load_csv(tmp_path, csv, messages=None, **options):
    return load_dataset("image_csv", ctx_for(tmp_path, messages), csv=str(csv), path_column="file",
                        label_column="diagnosis", group_column="patient", size=16, **options)


def test_csv_lists_and_skips_missing_and_corrupt_rows(tmp_path):
    csv = patient_csv(tmp_path)
    messages = []
    data = load_csv(tmp_path, csv, messages, max_bad=0.2)
    assert data.classes == ["benign", "malignant"]
    assert sum(data.size(s) for s in ("train", "val", "test")) == 36  # every good image, once
    skipped = {item["file"]: item["reason"] for item in data.info()["skipped"]}
    assert set(skipped) == {"scans/missing.png", "scans/corrupt.jpg", "scans/p0_0.png"}
    assert skipped["scans/missing.png"] == "missing" and "diagnosis" in skipped["scans/p0_0.png"]
    log = "\n".join(messages)
    assert all(name in log for name in skipped)  # listed by name
    # no patient spans two splits: the grey level tells which patient an image shows
    seen = {s: set((getattr(data, s).images[:, 0, 8, 8].int() // 10).tolist()) for s in ("train", "val", "test")}
    assert not (seen["train"] & seen["val"]) and not (seen["train"] & seen["test"]) and not (seen["val"] & seen["test"])
    assert all(seen.values())


def test_csv_with_too_many_bad_rows_stops_in_one_line(tmp_path, capsys):
    csv = patient_csv(tmp_path)
    with pytest.raises(DataError, match=r"3 of 39 images .* more than data.max_bad=0.05") as e:
        load_csv(tmp_path, csv, max_bad=0.05)
    assert "scans/missing.png (missing)" in str(e.value) and "scans/corrupt.jpg" in str(e.value)
    code = cli.main(["run", "catsdogs-cifar-scratch", "--out", str(tmp_path / "run"), "--set", "data.name=image_csv",
                     f"data.csv={csv}", "data.path_column=file", "data.label_column=diagnosis", "data.max_bad=0.05"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "scans/corrupt.jpg" in err
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_csv_column_names_are_checked(tmp_path):
    csv = patient_csv(tmp_path)
    with pytest.raises(DataError, match="no column 'path'.*file, diagnosis, patient"):
        load_dataset("image_csv", ctx_for(tmp_path), csv=str(csv), label_column="diagnosis")


def test_csv_split_column(tmp_path):
    d = tmp_path / "img"
    d.mkdir()
    rows = ["path,label,split"]
    for i in range(12):
        Image.new("RGB", (8, 8), (i * 20,) * 3).save(d / f"{i}.png")
        rows.append(f"img/{i}.png,{'ab'[i % 2]},{['train', 'train', 'validation', 'test'][i % 4]}")
    (tmp_path / "x.csv").write_text("\n".join(rows))
    data = load_dataset("image_csv", ctx_for(tmp_path), csv=str(tmp_path / "x.csv"), split_column="split", size=8)
    assert (data.size("train"), data.size("val"), data.size("test")) == (6, 3, 3)


@pytest.mark.parametrize("seed", [0, 1])
def test_group_aware_stratified_split(seed):
    rng = np.random.default_rng(seed)
    groups = [f"g{rng.integers(0, 60)}" for _ in range(600)]
    labels = [int(g[1:]) % 3 for g in groups]  # a group's images share its class
    parts = stratified_split(labels, (0.8, 0.1, 0.1), seed, groups)
    assert sorted(i for p in parts for i in p) == list(range(600))
    where = {}
    for k, part in enumerate(parts):
        for i in part:
            assert where.setdefault(groups[i], k) == k, f"group {groups[i]} spans two splits"
    sizes = [len(p) / 600 for p in parts]
    assert abs(sizes[0] - 0.8) < 0.1 and all(0.03 < s < 0.2 for s in sizes[1:])
    assert all(len({labels[i] for i in p}) == 3 for p in parts)  # stratified: every class everywhere


def test_stratified_split_without_groups_is_exact_and_seeded():
    labels = [0] * 50 + [1] * 30
    parts = stratified_split(labels, (0.8, 0.1, 0.1), seed=3)
    assert [sum(labels[i] == c for i in p) for p in parts for c in (0, 1)] == [40, 24, 5, 3, 5, 3]
    assert parts == stratified_split(labels, (0.8, 0.1, 0.1), seed=3) != stratified_split(labels, (0.8, 0.1, 0.1), seed=4)


def make_classes(root, counts=(10, 10)):
    for c, n in enumerate(counts):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (12, 10), (c * 100, i, 0)).save(root / f"class{c}" / f"{i}.jpg")


def test_image_folder_layouts(tmp_path):
    make_classes(tmp_path / "flat", (20, 30))
    data = load_dataset("image_folder", ctx_for(tmp_path), path=str(tmp_path / "flat"), size=8)
    assert (data.size("train"), data.size("val"), data.size("test")) == (40, 5, 5)  # 80/10/10 of each class
    assert data.in_shape == (3, 8, 8) and data.classes == ["class0", "class1"]

    for split, n in (("train", 10), ("validation", 4), ("test", 3)):
        make_classes(tmp_path / "split" / split, (n, n))
    data = load_dataset("image_folder", ctx_for(tmp_path), path=str(tmp_path / "split"), size=8)
    assert (data.size("train"), data.size("val"), data.size("test")) == (20, 8, 6)

    make_classes(tmp_path / "no_test" / "train", (20, 20))
    make_classes(tmp_path / "no_test" / "val", (3, 3))
    data = load_dataset("image_folder", ctx_for(tmp_path), path=str(tmp_path / "no_test"), size=8)
    assert (data.size("train"), data.size("val"), data.size("test")) == (36, 6, 4)  # test carved from train

    with pytest.raises(DataError, match="no such file"):
        load_dataset("image_folder", ctx_for(tmp_path), path=str(tmp_path / "absent"))
