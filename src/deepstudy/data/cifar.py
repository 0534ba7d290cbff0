"""CIFAR-10: the canonical files in torchvision's python layout, or the JPEG copy as a variant.

canonical (default)  `<root>/cifar-10-batches-py/{data_batch_1..5,test_batch}` as torchvision
                     unpacks them, else the `<root>/cifar-10-python.tar.gz` archive read in
                     place (nothing is unpacked into the data root), else torchvision's own
                     download when the network is there.  Every file is checked against
                     torchvision's MD5 BEFORE it is unpickled: a pickle can run code, so only
                     the known canonical bytes are ever loaded.
jpeg                 `<root>/cifar10-jpeg/{train,test}/<class>/NNNN.jpg` (the copy in
                     ../shared/datasets: canonical split and labels, lossy q75 pixels).  Decoded
                     once, on both cores, into uint8 arrays cached in the cache directory (never
                     the data root) under a key made from every file's name, size and mtime, so a
                     changed copy is decoded again.  Every result made from it says so
                     (`note`, copied into config.json, metrics.json and the catalog).

Both end as the same uint8 N x 3 x 32 x 32 tensors and are used identically from there on:
validation carved from training data (45k/5k by default), normalisation fitted on the training
split, whole-batch augmentation (random crop with zero padding, horizontal flip, cutout).

`classes=("cat", "dog")` keeps a subset of the classes, relabelled 0..k-1 in the order given
(transfer-learning studies pretrain on 8 classes and carve cats vs dogs from the other two).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch

from ..config import Count, Fraction, Range
from ..errors import ConfigError, DataError
from ..io import atomic_path
from . import ClassificationData, DataContext, register_dataset
from .augment import random_cutout, random_hflip, random_translate
from .root import cache_dir, downloads_allowed, writable
from .tensors import ImageTensors, Normalize, split

Pixels = Annotated[int, Range(0, 32)]  # padding for the random crop, a cutout's side: within a 32x32 image

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

# torchvision.datasets.CIFAR10's names and MD5s (a test checks they still agree); kept here so
# reading local files needs no torchvision import.
FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCH_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]

JPEG_FOLDER = "cifar10-jpeg"
JPEG_NOTE = ("JPEG copy of CIFAR-10 (q75, 4:2:0; canonical split and labels, lossy pixels): "
             "expect accuracies a little below those published for the canonical files")
_CACHE_FORMAT = "1"  # bump when the cached layout changes: old caches are then ignored


@dataclass
class CifarSplits:
    """The two canonical splits as uint8 tensors, before any validation split or selection."""

    train: ImageTensors
    test: ImageTensors
    source: str  # the folder or archive read
    note: str = ""  # set when the pixels are not the canonical ones


# ------------------------------------------------------------------ canonical python layout

def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _unpickle_batch(data: bytes, name: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One verified batch file -> (N x 3 x 32 x 32 uint8, N int64).  Called only on bytes whose
    MD5 matched, so the pickle is the canonical one."""
    batch = pickle.loads(data, encoding="bytes")
    images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if len(images) != len(labels):
        raise DataError(f"CIFAR-10: {where}/{name} holds {len(images)} images but {len(labels)} labels")
    return images, labels


def _check(data: bytes, name: str, where: str) -> None:
    digest = _md5(data)
    if digest != BATCH_MD5[name]:
        raise DataError(f"CIFAR-10: {where}/{name} fails its checksum (MD5 {digest}, expected {BATCH_MD5[name]}); "
                        f"delete it or replace it with the canonical download")


def _splits_from(batches: dict[str, tuple[np.ndarray, np.ndarray]], source: str) -> CifarSplits:
    train_x = np.concatenate([batches[n][0] for n in TRAIN_BATCHES])
    train_y = np.concatenate([batches[n][1] for n in TRAIN_BATCHES])
    test_x, test_y = batches["test_batch"]
    return CifarSplits(ImageTensors(torch.from_numpy(train_x), torch.from_numpy(train_y), torch.arange(len(train_y))),
                       ImageTensors(torch.from_numpy(test_x), torch.from_numpy(test_y), torch.arange(len(test_y))),
                       source)


def read_python_folder(folder: Path) -> CifarSplits | None:
    """`cifar-10-batches-py/` as torchvision leaves it, or None when there is no such folder."""
    if not folder.is_dir():
        return None
    missing = [n for n in BATCH_MD5 if not (folder / n).is_file()]
    if missing:
        raise DataError(f"CIFAR-10: {folder} is incomplete (missing {', '.join(missing)}); "
                        f"delete it, or replace it with the unpacked canonical {ARCHIVE}")
    batches = {}
    for name in BATCH_MD5:
        data = (folder / name).read_bytes()
        _check(data, name, str(folder))
        batches[name] = _unpickle_batch(data, name, str(folder))
    return _splits_from(batches, str(folder))


def read_archive(path: Path) -> CifarSplits | None:
    """The canonical `cifar-10-python.tar.gz`, read in place, or None when it is absent."""
    if not path.is_file():
        return None
    data = path.read_bytes()
    if _md5(data) != ARCHIVE_MD5:
        raise DataError(f"CIFAR-10: {path} fails its checksum (MD5 {_md5(data)}, expected {ARCHIVE_MD5}); "
                        f"delete it or replace it with the canonical download")
    batches = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar:
            name = Path(member.name).name
            if name in BATCH_MD5 and member.isfile():
                blob = tar.extractfile(member).read()
                _check(blob, name, str(path))
                batches[name] = _unpickle_batch(blob, name, str(path))
    if set(batches) != set(BATCH_MD5):  # cannot happen with the right MD5; kept for clarity
        raise DataError(f"CIFAR-10: {path} lacks {', '.join(sorted(set(BATCH_MD5) - set(batches)))}")
    return _splits_from(batches, str(path))


def _download(ctx: DataContext) -> Path | None:
    """torchvision's download (URL and MD5 checks are its own) into the data root, or into the
    cache when the data root is read-only.  Returns the unpacked folder, or None offline."""
    if not downloads_allowed():
        return None
    import torchvision

    target = ctx.root if writable(ctx.root) else cache_dir() / "data"
    ctx.log(f"CIFAR-10 not found under {ctx.root}: downloading with torchvision into {target}")
    try:
        torchvision.datasets.CIFAR10(str(target), train=True, download=True)
    except Exception as e:  # any network failure: fall through to the clear message
        ctx.log(f"download failed: {type(e).__name__}: {e}")
        return None
    return target / FOLDER


def load_canonical(ctx: DataContext) -> CifarSplits:
    folder, archive = ctx.root / FOLDER, ctx.root / ARCHIVE
    found = read_python_folder(folder) or read_archive(archive)
    if found is None and (downloaded := _download(ctx)) is not None:
        found = read_python_folder(downloaded)
    if found is None:
        hint = ""
        if (ctx.root / JPEG_FOLDER).is_dir():
            hint = f"; a JPEG copy is at {ctx.root / JPEG_FOLDER}: add --set data.variant=jpeg to use it"
        raise DataError(
            f"CIFAR-10 not found: expected {FOLDER}/ ({', '.join(BATCH_MD5)}) or {ARCHIVE} in {ctx.root}; "
            f"put torchvision's download there (or point --data-dir / DEEPSTUDY_DATA at a folder holding it), "
            f"or connect to the network and torchvision will download it{hint}")
    return found


# ------------------------------------------------------------------ the JPEG copy

def _jpeg_listing(folder: Path) -> tuple[dict[str, list[list[str]]], str]:
    """({split: [files of class 0, files of class 1, ...]}, cache key), checking the layout.

    The key changes when any file is added, removed, resized or rewritten (name, size, mtime).
    os.scandir rather than pathlib: 60,000 Path objects cost a second on their own."""
    if not folder.is_dir():
        raise DataError(
            f"CIFAR-10 JPEG copy not found: expected {folder}/train/<class>/NNNN.jpg and test/<class>/NNNN.jpg "
            f"for the classes {', '.join(CLASSES)}; point --data-dir / DEEPSTUDY_DATA at the folder holding "
            f"{JPEG_FOLDER}/ (../shared/datasets on this project's machines), or drop --set data.variant=jpeg "
            f"to use the canonical files")
    key = hashlib.sha256(f"cifar10-jpeg v{_CACHE_FORMAT}\n".encode())
    listing = {}
    for split_name in ("train", "test"):
        per_class = []
        for c in CLASSES:
            d = folder / split_name / c
            try:
                with os.scandir(d) as it:
                    entries = [e for e in it if e.name.endswith(".jpg") and e.is_file()]
            except (FileNotFoundError, NotADirectoryError):
                entries = []
            if not entries:
                raise DataError(f"CIFAR-10 JPEG copy at {folder} is incomplete: no {split_name}/{c}/*.jpg; "
                                f"restore the folder (it must hold train/ and test/ with one folder per class: "
                                f"{', '.join(CLASSES)})")
            entries.sort(key=lambda e: (len(e.name), e.name))  # 0000.jpg ... 4999.jpg: the original order
            for e in entries:
                st = e.stat()
                key.update(f"{split_name}/{c}/{e.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
            per_class.append([e.path for e in entries])
        listing[split_name] = per_class
    return listing, key.hexdigest()


def _decode_chunk(paths: list[str]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    out = np.empty((len(paths), 32, 32, 3), dtype=np.uint8)
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as im:
                if im.size != (32, 32):
                    raise DataError(f"CIFAR-10 JPEG copy: {p} is {im.size[0]}x{im.size[1]}, expected 32x32")
                out[i] = np.asarray(im.convert("RGB"))
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise DataError(f"CIFAR-10 JPEG copy: {p} is not a readable JPEG ({e}); "
                            f"restore it from the original copy") from None
    return out


def _decode(files: list[str]) -> torch.Tensor:
    """All files as one uint8 N x 3 x 32 x 32 tensor.  Pillow releases the GIL while it
    decodes, so threads use every core without the start-up and copying of worker processes."""
    if not files:
        return torch.empty(0, 3, 32, 32, dtype=torch.uint8)
    workers = max(1, min(os.cpu_count() or 1, 8))
    size = max(256, math.ceil(len(files) / (4 * workers)))
    chunks = [files[i:i + size] for i in range(0, len(files), size)]
    with ThreadPoolExecutor(workers) as pool:
        hwc = np.concatenate(list(pool.map(_decode_chunk, chunks)))
    return torch.from_numpy(hwc).permute(0, 3, 1, 2).contiguous()


def _decode_splits(listing: dict[str, list[list[str]]], per_class: dict[str, int] | None = None) -> dict:
    out = {}
    for split_name, by_class in listing.items():
        files, labels = [], []
        for label, class_files in enumerate(by_class):
            if per_class is not None:
                class_files = class_files[:per_class[split_name]]
            files += class_files
            labels += [label] * len(class_files)
        out[f"{split_name}_images"] = _decode(files)
        out[f"{split_name}_labels"] = torch.tensor(labels, dtype=torch.int64)
    return out


def _as_splits(arrays: dict, source: str) -> CifarSplits:
    return CifarSplits(ImageTensors(arrays["train_images"], arrays["train_labels"]),
                       ImageTensors(arrays["test_images"], arrays["test_labels"]), source, JPEG_NOTE)


def load_jpeg(ctx: DataContext, per_class: dict[str, int] | None = None) -> CifarSplits:
    """The JPEG copy, from the decoded cache when it matches the files, else decoded and cached.
    `per_class` ({"train": n, "test": m}) decodes only the first files of each class, uncached:
    a small real subset for smoke tests, in a fraction of a second."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, save_file

    folder = ctx.root / JPEG_FOLDER
    listing, key = _jpeg_listing(folder)
    if per_class is not None:
        return _as_splits(_decode_splits(listing, per_class), str(folder))

    cached = cache_dir() / "cifar10" / f"jpeg-{key[:24]}.safetensors"
    if cached.is_file():
        try:
            return _as_splits(load_file(str(cached)), str(folder))
        except (SafetensorError, OSError, ValueError, KeyError) as e:
            ctx.log(f"decoded cache {cached} is unreadable ({e}); decoding the JPEG files again")
    n = sum(len(f) for by_class in listing.values() for f in by_class)
    ctx.log(f"decoding {n:,} CIFAR-10 JPEG files from {folder} (once; cached in {cached.parent})")
    arrays = _decode_splits(listing)
    with atomic_path(cached) as tmp:
        save_file({k: v.contiguous() for k, v in arrays.items()}, str(tmp),
                  metadata={"source": str(folder), "key": key})
    for old in cached.parent.glob("jpeg-*.safetensors"):  # decodes of an older copy: dead weight
        if old != cached:
            old.unlink(missing_ok=True)
    return _as_splits(arrays, str(folder))


# ------------------------------------------------------------------ selection and the dataset

def class_indices(names: tuple[str, ...] | list[str]) -> list[int]:
    """Canonical label of each class name, in the order given (ConfigError for an unknown one)."""
    unknown = [n for n in names if n not in CLASSES]
    if unknown:
        raise ConfigError(f"data.classes: unknown CIFAR-10 class {', '.join(map(repr, unknown))}; "
                          f"choose from {', '.join(CLASSES)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"data.classes lists a class twice: {', '.join(names)}")
    return [CLASSES.index(n) for n in names]


def select_classes(ds: ImageTensors, labels: list[int]) -> ImageTensors:
    """The images of the given labels, relabelled 0..k-1 in that order (order kept)."""
    remap = torch.full((max(len(CLASSES), int(ds.labels.max()) + 1 if len(ds) else 0),), -1, dtype=torch.int64)
    remap[torch.tensor(labels)] = torch.arange(len(labels))
    keep = remap[ds.labels] >= 0
    return ImageTensors(ds.images[keep], remap[ds.labels[keep]], None if ds.origin is None else ds.origin[keep.cpu()])


def load_cifar10(ctx: DataContext, variant: str = "canonical", classes: tuple[str, ...] = (),
                 per_class: dict[str, int] | None = None) -> tuple[CifarSplits, list[str]]:
    """The train and test splits (optionally only some classes, relabelled) and the class names.
    For code that wants the images without the validation split or augmentation."""
    if variant == "jpeg":
        splits = load_jpeg(ctx, per_class)
    elif variant == "canonical":
        splits = load_canonical(ctx)
    else:
        raise ConfigError(f"data.variant expects canonical or jpeg, got {variant!r}")
    if not classes:
        return splits, list(CLASSES)
    labels = class_indices(classes)
    return CifarSplits(select_classes(splits.train, labels), select_classes(splits.test, labels),
                       splits.source, splits.note), list(classes)


def make_augment(crop: int, flip: bool, cutout: int, normalize: Normalize, pad: str = "zeros"):
    """uint8 batch, generator -> augmented uint8 batch, or None when nothing is switched on."""
    if not (crop or flip or cutout):
        return None
    # Why the mean colour: cutout is defined on normalised inputs, where a zeroed square is the
    # mean; on uint8 pixels the same square is the mean colour, not black.
    fill = tuple(round(255 * m) for m in normalize.mean)

    def augment(x, generator):
        if crop:
            x = random_translate(x, crop, generator, pad)
        if flip:
            x = random_hflip(x, generator)
        if cutout:
            x = random_cutout(x, cutout, generator, fill)
        return x
    return augment


@register_dataset("cifar10")
def cifar10(ctx: DataContext, *, variant: Literal["canonical", "jpeg"] = "canonical", val_fraction: Fraction = 0.1,
            classes: tuple[str, ...] = (), limit: Count = 0, crop: Pixels = 4, flip: bool = True,
            cutout: Pixels = 0, pad: Literal["zeros", "reflect"] = "zeros",
            alternate_flip: bool = False, low_res: Pixels = 0, low_res_epochs: Count = 0) -> ClassificationData:
    """CIFAR-10.  variant: canonical (torchvision's python layout) or jpeg (the JPEG copy, decoded
    once and cached); val_fraction: share of the training images held out for validation (0.1:
    45k/5k; the seeds' 0.2: 40k/10k); classes: keep only these classes, relabelled in this order
    (e.g. cat,dog); limit: cap the training images (val and test get a quarter as many; smoke
    tests); crop: random crop of the image padded by this many pixels (0: off); flip: random
    horizontal flips; cutout: side of a square blanked at a random place in each image (0: off);
    pad: how the crop's border is filled, zeros (torchvision's RandomCrop) or reflect (airbench);
    alternate_flip: airbench's alternating flips instead of random ones (needs flip): a random half
    of the training images is mirrored once, here, and every second epoch mirrors them all, so
    each image is seen both ways in any two epochs in a row (random flips repeat a view in half
    of all pairs of epochs); low_res, low_res_epochs: progressive resizing, the first
    low_res_epochs epochs train on the augmented images scaled down to low_res x low_res pixels
    (a net that ends in global pooling takes any size; validation and test stay at 32)."""
    if bool(low_res) != bool(low_res_epochs) or low_res >= 32:
        raise ConfigError(f"data.low_res={low_res} with data.low_res_epochs={low_res_epochs}: progressive resizing "
                          f"needs both, a size below 32 pixels and a number of epochs (or both 0: off)")
    if alternate_flip and not flip:
        raise ConfigError("data.alternate_flip=true alternates the flips of data.flip: set data.flip=true too")
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
    per_class = None
    if limit and variant == "jpeg":
        # decode just enough of each class for the subset below instead of all 60,000 files
        k = len(classes) or len(CLASSES)
        need = max(limit / (1 - val_fraction), limit / 4 / val_fraction if val_fraction else 0)
        per_class = {"train": math.ceil(need / k) + 1, "test": math.ceil(limit / 4 / k) + 1}
    splits, names = load_cifar10(ctx, variant, classes, per_class)
    train, val = split(splits.train, val_fraction, ctx.seed)
    test = splits.test
    if limit:
        # test keeps its class order (sorted by class in the JPEG copy): take a random quarter
        g = torch.Generator().manual_seed(ctx.seed)
        test = test.subset(torch.randperm(len(test), generator=g)[:max(1, limit // 4)])
        train, val = train.subset(slice(0, limit)), val.subset(slice(0, max(1, limit // 4)))
    normalize = Normalize.fit(train.images)
    if alternate_flip:  # the once-only half; data.start_epoch mirrors every image on even epochs
        mirrored = torch.rand(len(train), generator=torch.Generator().manual_seed(ctx.seed)) < 0.5
        images = torch.where(mirrored[:, None, None, None], train.images.flip(3), train.images)
        train = ImageTensors(images, train.labels, train.origin)
    return ClassificationData("cifar10", train.to(ctx.device), val.to(ctx.device), test.to(ctx.device), names,
                              normalize, splits.source, preprocess="crop", alternate_flip=alternate_flip,
                              low_res=low_res, low_res_epochs=low_res_epochs,
                              augment=make_augment(crop, flip and not alternate_flip, cutout, normalize, pad),
                              note=splits.note)
