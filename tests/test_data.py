"""The data layer: where MNIST-family files are found, how bad files are reported, the split,
normalisation, batching and augmentation."""

import gzip
import json
import shutil

import pytest
import torch

from deepstudy.data import DataContext, load_dataset
from deepstudy.data.augment import random_hflip, random_translate
from deepstudy.data.root import EMBEDDED, data_root
from deepstudy.data.tensors import ImageTensors, Normalize, batches, split
from deepstudy.data.vision import MD5
from deepstudy.errors import DataError

from conftest import make_idx_family


def ctx(root, seed=0):
    return DataContext(root=root, seed=seed, log=lambda m: None)


def test_embedded_mnist_is_the_canonical_download():
    import hashlib

    import torchvision

    assert dict(torchvision.datasets.MNIST.resources) == MD5["MNIST"]
    assert dict(torchvision.datasets.FashionMNIST.resources) == MD5["FashionMNIST"]
    for name, md5 in MD5["MNIST"].items():
        assert hashlib.md5((EMBEDDED / "MNIST" / "raw" / name).read_bytes()).hexdigest() == md5


def test_mnist_from_the_package_when_no_data_root_is_named(tmp_path):
    data = load_dataset("mnist", ctx(data_root(None)), val_fraction=0.1)  # the per-user cache, empty
    assert (len(data.train), len(data.val), len(data.test)) == (54_000, 6_000, 10_000)
    assert data.in_shape == (1, 28, 28) and data.train.images.dtype == torch.uint8
    assert data.classes == [str(i) for i in range(10)]
    assert "embedded" in data.source
    # normalisation fitted on the training split: the well-known MNIST constants
    assert data.normalize.mean[0] == pytest.approx(0.1307, abs=2e-3)
    assert data.normalize.std[0] == pytest.approx(0.3081, abs=2e-3)
    assert data.test.class_counts(10) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_a_named_root_without_mnist_is_an_error_not_the_package_copy(tmp_path):
    """A typo in a data path must never be quietly replaced by other data."""
    with pytest.raises(DataError, match="only when no data root is named"):
        load_dataset("mnist", ctx(tmp_path), val_fraction=0.1)
    with pytest.raises(DataError, match="no such folder"):
        data_root(tmp_path / "typo")


def test_data_root_takes_precedence_and_uncompressed_files_work(tmp_path):
    make_idx_family(tmp_path, "MNIST", n_train=100, n_test=40)
    data = load_dataset("mnist", ctx(tmp_path), val_fraction=0.2)
    assert (len(data.train), len(data.val), len(data.test)) == (80, 20, 40)
    assert data.source == str(tmp_path / "MNIST" / "raw")


def test_data_root_resolution(monkeypatch, tmp_path):
    assert data_root(tmp_path) == tmp_path
    monkeypatch.setenv("DEEPSTUDY_DATA", str(tmp_path / "env"))
    with pytest.raises(DataError, match="DEEPSTUDY_DATA .*no such folder"):
        data_root(None)
    (tmp_path / "env").mkdir()
    assert data_root(None) == tmp_path / "env"
    monkeypatch.delenv("DEEPSTUDY_DATA")
    monkeypatch.setenv("DEEPSTUDY_CACHE", str(tmp_path / "cache"))
    assert data_root(None) == tmp_path / "cache" / "data"


def test_a_relative_data_root_is_read_against_the_starting_folder_once(monkeypatch, tmp_path):
    """`DEEPSTUDY_DATA=datasets` means the folder where the command started, and a run records
    it absolute, so eval/predict from another folder still find the same data."""
    from deepstudy import api

    make_idx_family(tmp_path / "datasets", "MNIST", n_train=300, n_test=100)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEEPSTUDY_DATA", "datasets")
    assert data_root(None) == tmp_path / "datasets" and data_root("./datasets/../datasets") == tmp_path / "datasets"
    r = api.run("lenet5-mnist", tier="smoke", epochs=1, out=tmp_path / "run", progress=False, log=lambda m: None)
    cfg = json.loads((r.run_dir / "config.json").read_text())
    assert cfg["data_root"] == str(tmp_path / "datasets") and cfg["data"]["source"] == str(tmp_path / "datasets" / "MNIST" / "raw")
    monkeypatch.chdir(tmp_path / "run")
    monkeypatch.delenv("DEEPSTUDY_DATA")
    from deepstudy.rundir import RunDir
    assert RunDir(tmp_path / "run").data_root() == tmp_path / "datasets"


def test_missing_dataset_names_files_places_and_remedy(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("fashion_mnist", ctx(tmp_path))
    msg = str(e.value)
    assert "FashionMNIST not found" in msg
    assert "train-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert str(tmp_path / "FashionMNIST" / "raw") in msg
    assert "--data-dir" in msg and "download" in msg
    assert "\n" not in msg


def test_checksum_mismatch(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(EMBEDDED / "MNIST" / "raw", raw)
    path = raw / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(path.read_bytes()))
    data[100] = (data[100] + 1) % 10  # one label changed: still a valid file, wrong content
    path.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz fails its checksum"):
        load_dataset("mnist", ctx(tmp_path))


def test_truncated_file(tmp_path):
    raw = make_idx_family(tmp_path, "FashionMNIST", n_train=50, n_test=20)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="FashionMNIST: .*train-images-idx3-ubyte: truncated"):
        load_dataset("fashion_mnist", ctx(tmp_path))


def test_wrong_magic(tmp_path):
    raw = make_idx_family(tmp_path, "FashionMNIST", n_train=50, n_test=20)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"<html>404</html>")
    with pytest.raises(DataError, match="not an IDX file"):
        load_dataset("fashion_mnist", ctx(tmp_path))


def test_images_and_labels_must_match(tmp_path):
    raw = make_idx_family(tmp_path, "FashionMNIST", n_train=50, n_test=20)
    other = make_idx_family(tmp_path / "other", "FashionMNIST", n_train=60, n_test=20)
    shutil.copy(other / "train-labels-idx1-ubyte", raw / "train-labels-idx1-ubyte")
    with pytest.raises(DataError, match="do not match"):
        load_dataset("fashion_mnist", ctx(tmp_path))


def test_reading_leaves_the_data_root_untouched(tmp_path):
    make_idx_family(tmp_path, "FashionMNIST", n_train=50, n_test=20)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    load_dataset("fashion_mnist", ctx(tmp_path))
    assert sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


def toy(n=103):
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 4, 4).contiguous()
    return ImageTensors(images, torch.arange(n) % 10)


def test_split_is_seeded_disjoint_and_complete():
    ds = toy()
    train, val = split(ds, 0.2, seed=3)
    assert (len(train), len(val)) == (82, 21)
    ids = torch.cat([train.images[:, 0, 0, 0], val.images[:, 0, 0, 0]]).sort().values
    assert torch.equal(ids, torch.arange(103, dtype=torch.uint8))
    again, _ = split(ds, 0.2, seed=3)
    other, _ = split(ds, 0.2, seed=4)
    assert torch.equal(train.labels, again.labels) and not torch.equal(train.labels, other.labels)


def test_normalize_matches_the_formula():
    x = torch.randint(0, 256, (8, 3, 5, 5), dtype=torch.uint8)
    norm = Normalize.fit(x)
    mean = torch.tensor(norm.mean).view(1, 3, 1, 1)
    std = torch.tensor(norm.std).view(1, 3, 1, 1)
    torch.testing.assert_close(norm(x), (x.float() / 255 - mean) / std)
    out = norm(x)
    assert out.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    torch.testing.assert_close(out.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-4, rtol=1e-4)


def test_batches_cover_everything_once_and_shuffle_with_the_generator():
    ds = toy()
    ident = Normalize((0.0,), (1 / 255,))  # x/255 / (1/255) = x: values pass through
    seen = torch.cat([x[:, 0, 0, 0] for x, _ in batches(ds, 10, ident, generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.long().tolist()) == list(range(103))
    assert seen.long().tolist() != list(range(103))
    ordered = torch.cat([x[:, 0, 0, 0] for x, _ in batches(ds, 10, ident)])
    assert ordered.long().tolist() == list(range(103))
    a = [y for _, y in batches(ds, 10, ident, generator=torch.Generator().manual_seed(5))]
    b = [y for _, y in batches(ds, 10, ident, generator=torch.Generator().manual_seed(5))]
    assert all(torch.equal(p, q) for p, q in zip(a, b))


def test_random_translate_moves_each_image_within_bounds():
    x = torch.zeros(64, 1, 9, 9, dtype=torch.uint8)
    x[:, :, 4, 4] = 255  # a dot in the centre
    out = random_translate(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    pos = out.view(64, -1).argmax(1)
    rows, cols = pos // 9, pos % 9
    assert rows.min() >= 2 and rows.max() <= 6 and cols.min() >= 2 and cols.max() <= 6
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10  # per-image offsets, not one per batch
    assert (out.view(64, -1).sum(1) == 255).all()  # nothing lost or duplicated
    assert torch.equal(random_translate(x, 0, None), x)


def test_random_translate_reflect_fills_the_border_with_the_mirrored_image():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 256, (64, 3, 8, 8), generator=g, dtype=torch.uint8)  # no zero pixel anywhere
    zeros = random_translate(x, 2, torch.Generator().manual_seed(1))
    out = random_translate(x, 2, torch.Generator().manual_seed(1), pad="reflect")
    assert (zeros == 0).any() and not (out == 0).any()  # the same shifts; only the fill differs
    moved = (zeros == 0).flatten(1).any(1)
    assert torch.equal(out[moved.logical_not()], x[moved.logical_not()])  # unshifted images untouched
    # each output is a window of the reflect-padded image, at the same offset as the zero-padded one
    padded = torch.nn.functional.pad(x, (2,) * 4, mode="reflect")
    for i in range(64):
        hits = [(r, c) for r in range(5) for c in range(5) if torch.equal(out[i], padded[i, :, r:r + 8, c:c + 8])]
        assert hits and any(torch.equal(zeros[i] != 0, torch.nn.functional.pad(x[i], (2,) * 4)[:, r:r + 8, c:c + 8] != 0)
                            for r, c in hits)
    with pytest.raises(ValueError, match="zeros or reflect"):
        random_translate(x, 2, None, pad="wrap")


def test_random_hflip_flips_about_half():
    x = torch.zeros(200, 1, 2, 2, dtype=torch.uint8)
    x[:, :, :, 0] = 1
    out = random_hflip(x, torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 0, 1] == 1).sum().item()
    assert 70 < flipped < 130
