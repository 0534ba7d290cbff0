"""CIFAR-10's data layer: the canonical python layout and archive (checked against torchvision's
MD5s before anything is unpickled), the JPEG copy (decoded once, cached outside the data root,
invalidated when the files change), class selection, splits, normalisation and augmentation."""

import hashlib
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from deepstudy.data import DataContext, cifar, load_dataset
from deepstudy.data.augment import random_cutout
from deepstudy.data.root import cache_dir
from deepstudy.errors import ConfigError, DataError

from conftest import CIFAR_CLASSES, cifar_like, make_cifar_jpeg, shared_or_skip


def ctx(root, seed=0):
    return DataContext(root=root, seed=seed, log=lambda m: None)


def test_constants_agree_with_torchvision():
    import torchvision

    tv = torchvision.datasets.CIFAR10
    assert (tv.base_folder, tv.filename, tv.tgz_md5) == (cifar.FOLDER, cifar.ARCHIVE, cifar.ARCHIVE_MD5)
    assert dict(tv.train_list + tv.test_list) == cifar.BATCH_MD5
    assert cifar.CLASSES == CIFAR_CLASSES


def write_python_layout(folder, sizes=(30, 30, 30, 30, 30, 40)):
    """A hand-made cifar-10-batches-py/ in torchvision's format; returns {name: md5}."""
    folder.mkdir(parents=True)
    md5s = {}
    for i, (name, n) in enumerate(zip(cifar.BATCH_MD5, sizes)):
        images, labels = cifar_like(n, seed=i)
        blob = pickle.dumps({b"batch_label": name.encode(), b"labels": labels.tolist(),
                             b"data": images.reshape(n, -1), b"filenames": [b"x.png"] * n})
        (folder / name).write_bytes(blob)
        md5s[name] = hashlib.md5(blob).hexdigest()
    return md5s


def test_python_layout_and_archive_read_the_same(tmp_path, monkeypatch):
    md5s = write_python_layout(tmp_path / "a" / cifar.FOLDER)
    monkeypatch.setattr(cifar, "BATCH_MD5", md5s)  # the hand-made files stand in for the canonical ones
    data = load_dataset("cifar10", ctx(tmp_path / "a"), val_fraction=0.2)
    assert (len(data.train), len(data.val), len(data.test)) == (120, 30, 40)
    assert data.in_shape == (3, 32, 32) and data.classes == CIFAR_CLASSES and data.note == ""
    assert data.source == str(tmp_path / "a" / cifar.FOLDER)
    first, _ = cifar_like(30, seed=0)
    folder = cifar.read_python_folder(tmp_path / "a" / cifar.FOLDER)
    assert torch.equal(folder.train.images[:30], torch.from_numpy(first))  # rows are CHW planes, as documented

    # the same files inside the .tar.gz, read in place: nothing is unpacked into the data root
    archive = tmp_path / "b" / cifar.ARCHIVE
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "a" / cifar.FOLDER, arcname=cifar.FOLDER)
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    packed = cifar.read_archive(archive)
    assert torch.equal(packed.train.images, folder.train.images) and torch.equal(packed.test.labels, folder.test.labels)
    assert sorted(p.name for p in archive.parent.iterdir()) == [cifar.ARCHIVE]


def test_canonical_files_are_checked_before_unpickling(tmp_path, monkeypatch):
    md5s = write_python_layout(tmp_path / cifar.FOLDER)
    monkeypatch.setattr(cifar, "BATCH_MD5", md5s)
    # a pickle that would run code: it must be refused by its checksum, never loaded
    (tmp_path / cifar.FOLDER / "data_batch_3").write_bytes(pickle.dumps(os.system))
    with pytest.raises(DataError, match="data_batch_3 fails its checksum"):
        load_dataset("cifar10", ctx(tmp_path))
    (tmp_path / cifar.FOLDER / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"incomplete \(missing data_batch_3\)"):
        load_dataset("cifar10", ctx(tmp_path))


def test_missing_canonical_data_names_files_places_and_remedies(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("cifar10", ctx(tmp_path))
    msg = str(e.value)
    assert "CIFAR-10 not found" in msg and cifar.FOLDER in msg and cifar.ARCHIVE in msg and "data_batch_1" in msg
    assert str(tmp_path) in msg and "--data-dir" in msg and "download" in msg and "\n" not in msg
    assert "variant=jpeg" not in msg
    make_cifar_jpeg(tmp_path, n_train=1, n_test=1)
    with pytest.raises(DataError, match="add --set data.variant=jpeg"):
        load_dataset("cifar10", ctx(tmp_path))


def test_jpeg_copy_is_decoded_once_cached_outside_the_root_and_invalidated(tmp_path, monkeypatch):
    folder = make_cifar_jpeg(tmp_path / "root", n_train=12, n_test=3)
    before = sorted((str(p), p.stat().st_mtime_ns) for p in (tmp_path / "root").rglob("*"))
    data = load_dataset("cifar10", ctx(tmp_path / "root"), variant="jpeg", val_fraction=0.25)
    assert (len(data.train), len(data.val), len(data.test)) == (90, 30, 30)
    assert "JPEG copy" in data.note and data.info()["note"] == data.note and data.source == str(folder)
    # decoded pixels are Pillow's, labels follow the class folders
    splits, _ = cifar.load_cifar10(ctx(tmp_path / "root"), "jpeg")
    pil = np.asarray(Image.open(folder / "train" / "bird" / "0005.jpg").convert("RGB")).transpose(2, 0, 1)
    assert torch.equal(splits.train.images[2 * 12 + 5], torch.from_numpy(pil.copy()))
    assert splits.train.labels.tolist() == [c for c in range(10) for _ in range(12)]
    assert sorted((str(p), p.stat().st_mtime_ns) for p in (tmp_path / "root").rglob("*")) == before
    cached = list((cache_dir() / "cifar10").glob("jpeg-*.safetensors"))
    assert len(cached) == 1

    def no_decoding(*a, **k):
        raise AssertionError("decoded again although the cache matches the files")
    monkeypatch.setattr(cifar, "_decode_splits", no_decoding)
    again, _ = cifar.load_cifar10(ctx(tmp_path / "root"), "jpeg")
    assert torch.equal(again.train.images, splits.train.images)
    monkeypatch.undo()

    # a changed file changes the key: decoded again, the stale cache is removed
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(folder / "test" / "ship" / "0001.jpg")
    changed, _ = cifar.load_cifar10(ctx(tmp_path / "root"), "jpeg")
    assert changed.test.images[8 * 3 + 1].max() < 10
    now = list((cache_dir() / "cifar10").glob("jpeg-*.safetensors"))
    assert len(now) == 1 and now != cached


def test_damaged_cache_is_rebuilt_and_corrupt_jpeg_is_named(tmp_path):
    folder = make_cifar_jpeg(tmp_path, n_train=2, n_test=1)
    first, _ = cifar.load_cifar10(ctx(tmp_path), "jpeg")
    [cached] = (cache_dir() / "cifar10").glob("jpeg-*.safetensors")
    cached.write_bytes(cached.read_bytes()[:1000])
    again, _ = cifar.load_cifar10(ctx(tmp_path), "jpeg")
    assert torch.equal(again.train.images, first.train.images)
    (folder / "train" / "dog" / "0001.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match=r"dog/0001.jpg is not a readable JPEG"):
        cifar.load_cifar10(ctx(tmp_path), "jpeg")


def test_jpeg_copy_missing_or_incomplete(tmp_path):
    with pytest.raises(DataError, match="JPEG copy not found: expected .*cifar10-jpeg/train/<class>/NNNN.jpg"):
        load_dataset("cifar10", ctx(tmp_path), variant="jpeg")
    folder = make_cifar_jpeg(tmp_path, n_train=1, n_test=1)
    for f in (folder / "test" / "frog").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="incomplete: no test/frog/"):
        load_dataset("cifar10", ctx(tmp_path), variant="jpeg")


def test_class_selection_relabels_in_the_order_given(tmp_path):
    make_cifar_jpeg(tmp_path, n_train=10, n_test=4)
    data = load_dataset("cifar10", ctx(tmp_path), variant="jpeg", classes=("dog", "cat"), val_fraction=0.1)
    assert data.classes == ["dog", "cat"] and (len(data.train), len(data.val), len(data.test)) == (18, 2, 8)
    full, _ = cifar.load_cifar10(ctx(tmp_path), "jpeg")
    # stored order is kept (cats come first in the files); the labels follow the order asked for
    assert torch.equal(data.test.images[4:], full.test.images[5 * 4:5 * 4 + 4])
    assert data.test.labels.tolist() == [1] * 4 + [0] * 4
    eight = [c for c in CIFAR_CLASSES if c not in ("cat", "dog")]
    assert load_dataset("cifar10", ctx(tmp_path), variant="jpeg", classes=tuple(eight)).size("test") == 32
    with pytest.raises(ConfigError, match="unknown CIFAR-10 class 'cats'"):
        load_dataset("cifar10", ctx(tmp_path), variant="jpeg", classes=("cats", "dog"))


def test_limit_decodes_a_small_balanced_subset(tmp_path, monkeypatch):
    make_cifar_jpeg(tmp_path, n_train=30, n_test=10)
    data = load_dataset("cifar10", ctx(tmp_path), variant="jpeg", limit=100)
    assert (len(data.train), len(data.val), len(data.test)) == (100, 25, 25)
    assert min(data.train.class_counts(10)) >= 5
    assert not (cache_dir() / "cifar10").exists()  # a subset is not cached


def test_real_jpeg_copy_sizes_normalisation_and_selection(tmp_path):
    root = shared_or_skip("cifar10-jpeg").parent
    data = load_dataset("cifar10", ctx(root), variant="jpeg")
    assert (len(data.train), len(data.val), len(data.test)) == (45_000, 5_000, 10_000)
    assert data.test.class_counts(10) == [1000] * 10
    # statistics of the training split: the canonical set's are 0.4914/0.4822/0.4465 and
    # 0.2470/0.2435/0.2616; JPEG's smoothing lowers the spread a little.  Not 0.2023/0.1994/0.2010,
    # the per-image figures that tutorials copy.
    assert data.normalize.mean == pytest.approx((0.4914, 0.4822, 0.4465), abs=1.5e-3)
    assert data.normalize.std == pytest.approx((0.2470, 0.2435, 0.2616), abs=2.5e-3)
    # the seeds' 80/20 split, from the cache this time
    seeds = load_dataset("cifar10", ctx(root), variant="jpeg", val_fraction=0.2, classes=("cat", "dog"))
    assert (len(seeds.train), len(seeds.val), len(seeds.test)) == (8_000, 2_000, 2_000)


def test_cutout_blanks_one_square_per_image_with_the_fill():
    x = torch.full((300, 3, 16, 16), 200, dtype=torch.uint8)
    out = random_cutout(x, 6, torch.Generator().manual_seed(0), fill=(10, 20, 30))
    hidden = (out[:, 0] == 10)
    assert torch.equal(out[:, 1] == 20, hidden) and torch.equal(out[:, 2] == 30, hidden)
    area = hidden.sum((1, 2))
    assert area.max() == 36 and area.min() >= 9  # whole squares, some clipped at the border
    rows = hidden.any(2).float().argmax(1)
    assert len(set(rows.tolist())) > 8  # each image its own position
    assert torch.equal(random_cutout(x, 0, None), x)


def test_augmentation_runs_per_image_and_keeps_the_dtype(tmp_path):
    make_cifar_jpeg(tmp_path, n_train=10, n_test=2)
    data = load_dataset("cifar10", ctx(tmp_path), variant="jpeg", cutout=8)
    x = data.train.images[:64]
    a = data.augment(x, torch.Generator().manual_seed(1))
    b = data.augment(x, torch.Generator().manual_seed(1))
    assert a.dtype == torch.uint8 and a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    assert load_dataset("cifar10", ctx(tmp_path), variant="jpeg", crop=0, flip=False).augment is None


def test_prediction_analysis_of_a_cifar_run(data_root, tmp_path):
    """The seed's prediction analysis: every test image's confidence, the most confident
    mistakes (all wrong, surest first), per-class accuracy equal to the report's recall."""
    import csv
    import json

    from deepstudy import api

    r = api.run("cifar-cnn-bn", tier="smoke", data_dir=data_root, out=tmp_path / "run", progress=False,
                log=lambda m: None)
    plots_dir = r.run_dir / "plots"
    m = json.loads((r.run_dir / "metrics.json").read_text())

    def rows(name):
        with open(plots_dir / name, newline="") as f:
            return list(csv.DictReader(f))

    every = rows("confidence.csv")
    assert len(every) == r.config["data"]["sizes"]["test"]
    assert all(0.1 <= float(row["confidence"]) <= 1 for row in every)  # top softmax of 10 classes
    right = sum(row["true"] == row["predicted"] for row in every)
    assert right / len(every) == pytest.approx(m["test"]["accuracy"])

    # the mistakes table is exactly the surest of the wrong predictions, surest first (on hand-made
    # images a net can make none: then the table is empty and there is no picture of it)
    mistakes = rows("confident_mistakes.csv")
    assert all(row["true"] != row["predicted"] for row in mistakes)
    wrong = sorted((float(row["confidence"]) for row in every if row["true"] != row["predicted"]), reverse=True)
    assert len(mistakes) == min(24, len(wrong))
    assert [float(row["confidence"]) for row in mistakes] == wrong[:len(mistakes)]
    assert (plots_dir / "confident_mistakes.png").exists() == bool(wrong)

    per_class = {row["class"]: float(row["accuracy"]) for row in rows("per_class_accuracy.csv")}
    assert per_class == {c: pytest.approx(v["recall"], abs=1e-6) for c, v in m["test"]["per_class"].items()}
    for name in ("confidence.png", "per_class_accuracy.png", "class_distribution.png") + (("confident_mistakes.png",) if wrong else ()):
        assert (plots_dir / name).stat().st_size > 1000
