"""Image datasets from files: a folder with one subfolder per class, or a CSV that lists them.

image_folder  `<path>/<class>/*.jpg`, split 80/10/10 (stratified, seeded); or `<path>/train/`,
              `<path>/val/` (or validation/, valid/), `<path>/test/`, each with one subfolder
              per class; a missing val or test split is carved from train, stratified.
image_csv     a CSV with a path column and a class column (names configurable), relative paths
              read from the CSV's folder (or data.image_root), or made from the row's columns by
              data.path_template (`imgs/train/{classname}/{img}`, as State Farm's list names
              bare files in per-class folders); an optional group column keeps every group (a
              patient, a driver, a video) inside one split; an optional split column gives the
              split outright.  The CSV is read by data/userfiles.py, as text_csv's is.

Missing and unreadable images are listed by name and skipped; more than `max_bad` of them and
the run stops with one line saying which.  Every image is resized to size x size (squashed,
as Keras' target_size does) and kept as uint8.

In memory or streamed: when N x 3 x size x size bytes fit in `memory_mb` (2,000 images at
150x150 are 135 MB), the images are decoded once, cached in the cache directory and served by
slicing, like MNIST; several times faster than a DataLoader on a small CPU, and feature
extraction reads them once anyway.  A folder too big for that (25,000 photos at 224x224 are
3.8 GB) streams through a torch DataLoader that decodes every image on every pass, with
`workers` processes (0 = in the main process: on two cores worker processes rarely pay).

Augmentation is the seeds' ImageDataGenerator (rotation, shift, shear, zoom, horizontal flip)
done by torchvision.transforms.v2, each image with its own random parameters drawn from the
training loop's generator, so a resumed run augments exactly as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import string
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..config import Amount, Count, Encoding, Fraction, Share, Size, UserPath
from ..errors import ConfigError, DataError, UserError
from ..io import atomic_path
from . import ClassificationData, DataContext, register_dataset
from .images import open_image
from .root import cache_dir
from .tensors import ImageTensors, Normalize
from .userfiles import SPLIT_NAMES, check_bad, read_table, require_columns, resolve_path, split_name

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SPLIT_FOLDERS = SPLIT_NAMES
SPLITS = ("train", "val", "test")
_CACHE_FORMAT = "1"


@dataclass
class FileList:
    paths: list[Path]
    labels: list[int]
    groups: list[str] | None = None

    def __len__(self):
        return len(self.paths)

    def take(self, index) -> "FileList":
        return FileList([self.paths[i] for i in index], [self.labels[i] for i in index],
                        [self.groups[i] for i in index] if self.groups is not None else None)


# ------------------------------------------------------------------ augmentation (the seeds')

def seed_augment(rotation: float = 0.0, shift: float = 0.0, shear: float = 0.0, zoom: float = 0.0,
                 flip: bool = False) -> Callable | None:
    """Keras ImageDataGenerator's rotation_range (degrees), width/height_shift_range (fraction),
    shear_range (degrees, as Keras 2 reads it), zoom_range (fraction) and horizontal_flip, as one
    torchvision.transforms.v2 pipeline applied image by image.  Returns fn(uint8 batch,
    generator) -> uint8 batch, or None when everything is off.  Areas moved in from outside
    are black (Keras repeats the edge pixels; v2's affine has no such mode)."""
    if not (rotation or shift or shear or zoom or flip):
        return None
    from torchvision.transforms import v2

    steps = []
    if rotation or shift or shear or zoom:
        steps.append(v2.RandomAffine(degrees=rotation, translate=(shift, shift) if shift else None,
                                     scale=(1 - zoom, 1 + zoom) if zoom else None, shear=shear or None))
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    transform = v2.Compose(steps)

    def augment(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        # v2 draws from torch's global generator: seed it from ours, in a fork, so the caller's
        # generator alone decides the result (and a resumed run repeats it)
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return torch.stack([transform(img) for img in x]) if len(x) else x

    # what the feature cache keys augmented views by
    augment.description = f"seed_augment(rotation={rotation}, shift={shift}, shear={shear}, zoom={zoom}, flip={flip})"
    return augment


# ------------------------------------------------------------------ splitting

def stratified_split(labels: list[int], fractions: tuple[float, ...], seed: int,
                     groups: list[str] | None = None) -> list[list[int]]:
    """Indices for each split (fractions sum to 1; the first split takes the remainder).
    Within each class, whole groups are dealt out (each image its own group when there are
    none), so no group spans two splits; a group goes with its most common class."""
    if groups is None:
        groups = [str(i) for i in range(len(labels))]
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    by_class: dict[int, list[str]] = {}
    for g, idx in members.items():
        counts = np.bincount([labels[i] for i in idx])
        by_class.setdefault(int(counts.argmax()), []).append(g)
    rng = np.random.default_rng(seed)
    out: list[list[int]] = [[] for _ in fractions]
    for label in sorted(by_class):
        names = sorted(by_class[label])
        rng.shuffle(names)
        total = sum(len(members[g]) for g in names)
        # the smaller splits are filled first, each up to its share of this class's images
        targets = [round(f * total) for f in fractions]
        filled = [0] * len(fractions)
        for g in names:
            n = len(members[g])
            k = next((s for s in range(1, len(fractions)) if filled[s] + n / 2 < targets[s]), 0)
            out[k] += members[g]
            filled[k] += n
    return [sorted(s) for s in out]


# ------------------------------------------------------------------ listing

def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _find(base: Path, names: tuple[str, ...]) -> Path | None:
    return next((base / n for n in names if (base / n).is_dir()), None)


def list_folder(root: Path, val_fraction: float, test_fraction: float, seed: int) -> tuple[dict[str, FileList], list[str]]:
    split_dirs = {s: _find(root, names) for s, names in SPLIT_FOLDERS.items()}
    if split_dirs["train"] is not None:
        class_root = split_dirs["train"]
    else:
        class_root = root
        if any(split_dirs.values()):
            raise DataError(f"{root} has {', '.join(p.name for p in split_dirs.values() if p)}/ but no train/ folder")
    classes = sorted(p.name for p in class_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"{class_root} needs one subfolder per class (at least two); found "
                        f"{', '.join(classes) or 'none'}")

    def files_of(folder: Path) -> FileList:
        paths, labels = [], []
        for label, c in enumerate(classes):
            found = _images_in(folder / c) if (folder / c).is_dir() else []
            paths += found
            labels += [label] * len(found)
        return FileList(paths, labels)

    if split_dirs["train"] is None:
        every = files_of(root)
        parts = stratified_split(every.labels, (1 - val_fraction - test_fraction, val_fraction, test_fraction), seed)
        splits = {s: every.take(p) for s, p in zip(SPLITS, parts)}
    else:
        splits = {s: files_of(d) for s, d in split_dirs.items() if d is not None}
        missing = [s for s in ("val", "test") if s not in splits]
        if missing:  # carve what is missing out of train, stratified
            fractions = {"val": val_fraction, "test": test_fraction}
            shares = [fractions[s] for s in missing]
            parts = stratified_split(splits["train"].labels, (1 - sum(shares), *shares), seed)
            train = splits["train"]
            splits["train"] = train.take(parts[0])
            for s, p in zip(missing, parts[1:]):
                splits[s] = train.take(p)
    for s in SPLITS:
        if not len(splits[s]):
            raise DataError(f"{root}: the {s} split has no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))} "
                            f"files in one subfolder per class)")
    return splits, classes


def list_csv(csv_path: Path, image_root: Path, path_column: str, label_column: str, group_column: str,
             split_column: str, val_fraction: float, test_fraction: float, seed: int, path_template: str = "",
             encoding: str = "auto") -> tuple[dict[str, FileList], list[str], list[tuple[str, str]]]:
    """Splits, classes and the rows that could not be used (name, reason).  Each row's image is
    its `path_column`, or `path_template` filled in with the row's columns
    (`imgs/train/{classname}/{img}`: a bare file name inside a per-class folder)."""
    columns, rows = read_table(csv_path, encoding)
    template = _template_fields(csv_path, path_template, columns) if path_template else None
    require_columns(csv_path, columns, {"data.path_column": "" if path_template else path_column,
                                        "data.label_column": label_column, "data.group_column": group_column,
                                        "data.split_column": split_column})
    bad: list[tuple[str, str]] = []
    kept = []
    for n, row in rows:  # line numbers as an editor shows them
        label = (row.get(label_column) or "").strip()
        empty = [c for c in (template or [path_column]) if not (row.get(c) or "").strip()]
        name = "" if empty else path_template.format(**{c: row[c].strip() for c in template}) if template \
            else row[path_column].strip()
        if empty or not label:
            bad.append((name or f"line {n}", f"line {n}: empty {empty[0] if empty else label_column}"))
            continue
        split = split_name(row.get(split_column)) if split_column else ""
        if split_column and not split:
            bad.append((name, f"line {n}: {split_column} is {row.get(split_column)!r}, not train/val/test"))
            continue
        kept.append((name, label, (row.get(group_column) or "").strip() if group_column else None, split))
    classes = sorted({label for _, label, _, _ in kept})
    if len(classes) < 2:
        raise DataError(f"{csv_path}: column {label_column!r} names {len(classes)} class(es); need at least two")
    index = {c: i for i, c in enumerate(classes)}
    every = FileList([image_root / name for name, *_ in kept], [index[label] for _, label, _, _ in kept],
                     [g if g else f"row{i}" for i, (_, _, g, _) in enumerate(kept)] if group_column else None)
    if split_column:
        splits = {s: every.take([i for i, k in enumerate(kept) if k[3] == s]) for s in SPLITS}
    else:
        parts = stratified_split(every.labels, (1 - val_fraction - test_fraction, val_fraction, test_fraction),
                                 seed, every.groups)
        splits = {s: every.take(p) for s, p in zip(SPLITS, parts)}
    return splits, classes, bad


def _template_fields(csv_path: Path, template: str, columns: list[str]) -> list[str]:
    """The columns a path template names, each checked against the CSV's header."""
    try:
        parts = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as e:  # an unmatched brace
        raise ConfigError(f"data.path_template={template!r} is not a template ({e}); write column names in "
                          f"braces, e.g. imgs/train/{{classname}}/{{img}}") from None
    fields = [f for f, _, _ in parts]
    unknown = [f for f in fields if f not in columns]
    if unknown:
        problem = f"names no column {', '.join(f'{{{f}}}' for f in unknown)}"
    elif not fields:
        problem = "has no {column} placeholder"
    elif any(spec or conv for _, spec, conv in parts):  # {img:>5}, {img!r}: a file name is the value as written
        problem = "may hold only plain {column} placeholders"
    else:
        return list(dict.fromkeys(fields))
    raise ConfigError(f"data.path_template={template!r} {problem}; the columns of {csv_path.name} are "
                      f"{', '.join(columns) or 'none'}")


# ------------------------------------------------------------------ decoding

def load_file(path: Path, size: int) -> np.ndarray:
    """3 x size x size uint8, or UserError naming the file."""
    img = open_image(path)  # missing, truncated, not an image: UserError; any colour mode -> RGB
    img = img.resize((size, size), Image.BILINEAR)
    return np.asarray(img).transpose(2, 0, 1).copy()


def _decode(paths: list[Path], size: int) -> tuple[np.ndarray, list[str | None]]:
    """Every file (threads: PIL's decoders release the GIL); a failure is a reason, not an image."""
    out = np.zeros((len(paths), 3, size, size), np.uint8)
    reasons: list[str | None] = [None] * len(paths)

    def one(i: int):
        try:
            out[i] = load_file(paths[i], size)
        except UserError as e:
            reasons[i] = "missing" if not paths[i].exists() else str(e).split(": ", 1)[-1]

    with ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as pool:
        list(pool.map(one, range(len(paths))))
    return out, reasons


def _file_key(paths: list[Path], size: int) -> str:
    h = hashlib.sha256(f"images v{_CACHE_FORMAT} {size}\n".encode())
    for p in paths:
        try:
            st = p.stat()
            h.update(f"{p.resolve()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}\tmissing\n".encode())
    return h.hexdigest()


def decode_cached(paths: list[Path], size: int, log) -> tuple[torch.Tensor, list[str | None]]:
    """Decoded images (N x 3 x size x size uint8) and a failure reason per file (None: fine),
    from the cache when the same files (name, size, mtime) were decoded before."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file as load_tensors, save_file

    key = _file_key(paths, size)
    cached = cache_dir() / "images" / f"{key[:32]}.safetensors"
    if cached.is_file():
        try:
            from safetensors import safe_open
            with safe_open(str(cached), "pt") as f:
                reasons = json.loads(f.metadata()["reasons"])
            return load_tensors(str(cached))["images"], reasons
        except (SafetensorError, OSError, ValueError, KeyError) as e:
            log(f"decoded-image cache {cached} is unreadable ({e}); decoding again")
    log(f"decoding {len(paths):,} images at {size}x{size} (once; cached in {cached.parent})")
    images, reasons = _decode(paths, size)
    tensor = torch.from_numpy(images)
    with atomic_path(cached) as tmp:
        save_file({"images": tensor}, str(tmp), metadata={"reasons": json.dumps(reasons)})
    return tensor, reasons


# ------------------------------------------------------------------ the data objects

@dataclass
class FileImageData(ClassificationData):
    """In-memory images that came from files: what ClassificationData holds, plus the files
    that were skipped (copied into config.json)."""

    skipped: list = field(default_factory=list)
    listing: list = field(default_factory=list)  # splits.csv: every file kept, with its split (file_rows)

    def info(self) -> dict:
        return {**super().info(), "skipped": [{"file": n, "reason": r} for n, r in self.skipped]}

    def members(self) -> list[dict]:
        return self.listing


class _Files(torch.utils.data.Dataset):
    def __init__(self, files: FileList, size: int):
        self.files, self.size = files, size

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        try:
            x = load_file(self.files.paths[i], self.size)
        except UserError as e:
            raise DataError(f"{e} (it was readable when the run started)") from None
        return torch.from_numpy(x), self.files.labels[i]


@dataclass
class StreamingImageData:
    """Images decoded from their files on every pass, through a DataLoader: for folders that do
    not fit in memory.  Provides what the training loop and feature extraction use."""

    name: str
    splits: dict[str, FileList]
    classes: list[str]
    normalize: Normalize
    source: str
    side: int  # images are side x side
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    augment: Callable | None = None
    workers: int = 0
    skipped: list = field(default_factory=list)
    preprocess: str = "resize"
    listing: list = field(default_factory=list)

    def members(self) -> list[dict]:
        return self.listing

    def _batches(self, split: str, batch_size: int, order=None, generator=None, channels_last=False):
        loader = torch.utils.data.DataLoader(_Files(self.splits[split], self.side), batch_size=batch_size,
                                             sampler=order, num_workers=self.workers)
        for x, y in loader:
            x, y = x.to(self.device), y.to(self.device)
            if generator is not None and self.augment is not None:
                x = self.augment(x, generator)
            x = self.normalize(x)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y

    def train_batches(self, batch_size: int, generator: torch.Generator, channels_last: bool = False):
        order = torch.randperm(self.size("train"), generator=generator).tolist()
        return self._batches("train", batch_size, order, generator, channels_last)

    def eval_batches(self, split: str, batch_size: int, channels_last: bool = False):
        return self._batches(split, batch_size, channels_last=channels_last)

    def view_batches(self, split: str, batch_size: int, generator: torch.Generator, channels_last: bool = False):
        """Stored order, augmented (feature extraction's augmented views)."""
        return self._batches(split, batch_size, None, generator, channels_last)

    def labels(self, split: str) -> torch.Tensor:
        return torch.tensor(self.splits[split].labels, dtype=torch.int64, device=self.device)

    def size(self, split: str) -> int:
        return len(self.splits[split])

    def images(self, split: str, index) -> torch.Tensor:
        files = self.splits[split]
        return torch.stack([torch.from_numpy(load_file(files.paths[int(i)], self.side)) for i in index])

    def fingerprint(self, split: str) -> str:
        return _file_key(self.splits[split].paths, self.side) + str(self.splits[split].labels)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return (3, self.side, self.side)

    def info(self) -> dict:
        return {"name": self.name, "classes": list(self.classes), "in_shape": list(self.in_shape),
                "mean": list(self.normalize.mean), "std": list(self.normalize.std), "preprocess": self.preprocess,
                "sizes": {s: len(f) for s, f in self.splits.items()}, "source": self.source, "streamed": True,
                "skipped": [{"file": n, "reason": r} for n, r in self.skipped]}


def build_file_data(name: str, ctx: DataContext, splits: dict[str, FileList], classes: list[str], source: str,
                    bad: list[tuple[str, str]], *, size: int, max_bad: float, memory_mb: int, workers: int,
                    limit: int, augment: Callable | None, where: str, names_from: Path):
    """In memory when it fits in memory_mb, else streamed; bad files listed and skipped."""
    if size < 8:
        raise ConfigError(f"data.size must be at least 8 pixels, got {size}")
    if limit:  # smoke tier: a seeded random subset of each split, decoded quickly
        g = np.random.default_rng(ctx.seed)
        caps = {"train": limit, "val": max(1, limit // 4), "test": max(1, limit // 4)}
        splits = {s: f.take(sorted(g.permutation(len(f))[:caps[s]].tolist())) for s, f in splits.items()}
    total = sum(len(f) for f in splits.values()) + len(bad)
    needed = sum(len(f) for f in splits.values()) * 3 * size * size
    if needed <= memory_mb * 2 ** 20:
        every = [p for s in SPLITS for p in splits[s].paths]
        images, reasons = decode_cached(every, size, ctx.log)  # one pass, one cache file for all splits
        tensors, start, listing = {}, 0, []
        for s in SPLITS:
            files = splits[s]
            mine = range(start, start + len(files))
            start += len(files)
            ok = [i for i in mine if reasons[i] is None]
            bad += [(_name(every[i], names_from), reasons[i]) for i in mine if reasons[i] is not None]
            tensors[s] = ImageTensors(images[ok].contiguous(),
                                      torch.tensor([files.labels[i - mine.start] for i in ok], dtype=torch.int64))
            listing += file_rows(s, files, [i - mine.start for i in ok], classes, names_from)
        check_bad(bad, total, max_bad, where, ctx.log)
        if any(len(tensors[s]) == 0 for s in SPLITS):
            raise DataError(f"{where}: after skipping unreadable images a split is empty "
                            f"({', '.join(f'{s} {len(t)}' for s, t in tensors.items())})")
        normalize = Normalize.fit(tensors["train"].images)
        return FileImageData(name, tensors["train"].to(ctx.device), tensors["val"].to(ctx.device),
                             tensors["test"].to(ctx.device), classes, normalize, source, preprocess="resize",
                             augment=augment, skipped=bad, listing=listing)

    # Streamed: check every file can be opened now (a header check, not a decode), so a bad one
    # is skipped here rather than failing an epoch later
    ctx.log(f"{sum(len(f) for f in splits.values()):,} images at {size}x{size} need "
            f"{needed / 2 ** 20:,.0f} MB, more than data.memory_mb={memory_mb}: streaming them from disk")
    for s in SPLITS:
        files = splits[s]
        reasons = [_verify(p) for p in files.paths]
        bad += [(_name(p, names_from), r) for p, r in zip(files.paths, reasons) if r is not None]
        splits[s] = files.take([i for i, r in enumerate(reasons) if r is None])
    check_bad(bad, total, max_bad, where, ctx.log)
    sample = splits["train"].take(range(0, len(splits["train"]), max(1, len(splits["train"]) // 500)))
    normalize = Normalize.fit(torch.from_numpy(_decode(sample.paths, size)[0]))  # statistics of <=500 images
    listing = [row for s in SPLITS for row in file_rows(s, splits[s], range(len(splits[s])), classes, names_from)]
    return StreamingImageData(name, splits, classes, normalize, source, size, ctx.device, augment, workers, bad,
                              listing=listing)


def file_rows(split: str, files: FileList, keep, classes: list[str], root: Path) -> list[dict]:
    """splits.csv's rows for the files of one split that were kept: the file as the user names
    it, its class and, with a group column, its group (so a split by group can be checked)."""
    return [{"split": split, "file": _name(files.paths[i], root), "label": classes[files.labels[i]],
             **({"group": files.groups[i]} if files.groups is not None else {})} for i in keep]


def _name(path: Path, root: Path) -> str:
    """How a user recognises the file: relative to the folder or CSV it came from."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _verify(path: Path) -> str | None:
    if not path.is_file():
        return "missing"
    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as e:  # PIL raises many kinds for broken files
        return f"not an image that can be read ({type(e).__name__}: {e})"
    return None


# ------------------------------------------------------------------ the registered datasets

@register_dataset("image_folder")
def image_folder(ctx: DataContext, *, path: UserPath = "", size: Size = 150, val_fraction: Fraction = 0.1,
                 test_fraction: Fraction = 0.1, max_bad: Share = 0.05, memory_mb: Size = 2048, workers: Count = 0,
                 limit: Count = 0, rotation: Amount = 0.0, shift: Share = 0.0, shear: Amount = 0.0, zoom: Fraction = 0.0,
                 flip: bool = False) -> ClassificationData:
    """A folder of images, one subfolder per class (see data/folders.py).  size: side the images
    are resized to; val_fraction, test_fraction: shares carved when the folder has no val/test
    split; max_bad: share of unreadable images tolerated (skipped and listed); memory_mb: above
    this the images are streamed from disk; workers: DataLoader processes when streamed; limit:
    cap on training images (smoke tests); rotation (degrees), shift (fraction), shear (degrees),
    zoom (fraction), flip: the seeds' augmentation."""
    root = resolve_path(ctx.root, path, "path")
    if not root.is_dir():
        raise DataError(f"data.path={path} is a file; image_folder expects a folder of class subfolders")
    splits, classes = list_folder(root, val_fraction, test_fraction, ctx.seed)
    return build_file_data(root.name, ctx, splits, classes, str(root), [], size=size, max_bad=max_bad,
                           memory_mb=memory_mb, workers=workers, limit=limit,
                           augment=seed_augment(rotation, shift, shear, zoom, flip), where=str(root), names_from=root)


@register_dataset("image_csv")
def image_csv(ctx: DataContext, *, csv: UserPath = "", path_column: str = "path", label_column: str = "label",
              path_template: str = "", group_column: str = "", split_column: str = "", image_root: UserPath = "",
              encoding: Encoding = "auto", size: Size = 150,
              val_fraction: Fraction = 0.1, test_fraction: Fraction = 0.1, max_bad: Share = 0.05, memory_mb: Size = 2048,
              workers: Count = 0, limit: Count = 0, rotation: Amount = 0.0, shift: Share = 0.0, shear: Amount = 0.0,
              zoom: Fraction = 0.0, flip: bool = False) -> ClassificationData:
    """Images listed in a CSV (see data/folders.py).  csv: the file; path_column, label_column:
    its columns for the image path and the class; path_template: the path made from columns
    instead, e.g. imgs/train/{classname}/{img} (State Farm's driver_imgs_list.csv); group_column:
    images of one group never span two splits; split_column: train/val/test given per row;
    image_root: folder the paths are relative to (default: the CSV's folder); encoding: the
    CSV's (auto: UTF-8); the other options as for image_folder."""
    csv_path = resolve_path(ctx.root, csv, "csv")
    root = Path(image_root).expanduser() if image_root else csv_path.parent
    splits, classes, bad = list_csv(csv_path, root, path_column, label_column, group_column, split_column,
                                    val_fraction, test_fraction, ctx.seed, path_template, encoding)
    return build_file_data(csv_path.stem, ctx, splits, classes, str(csv_path), bad, size=size, max_bad=max_bad,
                           memory_mb=memory_mb, workers=workers, limit=limit,
                           augment=seed_augment(rotation, shift, shear, zoom, flip), where=str(csv_path),
                           names_from=root)
