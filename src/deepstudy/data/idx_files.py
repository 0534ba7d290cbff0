"""Where the four IDX files of MNIST and Fashion-MNIST are found, in torchvision's folder layout
(`<root>/MNIST/raw/*.gz`), returned as uint8 NumPy arrays.

Looked for, in order: the data root (the .gz downloads, checked against torchvision's MD5s,
or the unpacked IDX files torchvision leaves beside them); for MNIST, the copy carried inside
the package; then torchvision's own download, when the network is there.

Torch-free (torchvision is imported only to download), so the PyTorch datasets in vision.py
and the NumPy-only code in deepstudy.scratch share this one lookup.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from ..errors import DataError
from .idx import IdxError, read_idx
from .root import EMBEDDED, cache_dir, downloads_allowed, packaged_data_allowed, writable

FAMILIES = {
    # name: (folder, torchvision dataset class, class names)
    "mnist": ("MNIST", "MNIST", [str(i) for i in range(10)]),
    "fashion_mnist": ("FashionMNIST", "FashionMNIST", ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                       "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]),
}
# The MD5s torchvision publishes for the canonical downloads (a test checks they still agree
# with torchvision.datasets.*.resources); kept here so reading local files needs no torchvision
# import, which costs over a second.
MD5 = {
    "MNIST": {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
              "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
              "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
              "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
    "FashionMNIST": {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                     "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                     "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                     "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
}
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class Where(Protocol):
    """What the lookup needs from a DataContext: the data root and somewhere to log."""
    root: Path
    log: Callable[[str], None]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _read_folder(raw: Path, md5s: dict[str, str], title: str) -> dict[str, np.ndarray] | None:
    """The four arrays from `raw`, or None when the folder lacks them.  A file that is present
    but wrong raises DataError: silently using another copy would hide the problem."""
    arrays = {}
    for stem in FILES:
        gz, plain = raw / f"{stem}.gz", raw / stem
        if gz.is_file():
            digest = _md5(gz)
            if digest != md5s[gz.name]:
                raise DataError(f"{title}: {gz} fails its checksum (MD5 {digest}, expected {md5s[gz.name]}); "
                                f"delete it or replace it with the canonical download")
            path = gz
        elif plain.is_file():
            path = plain  # unpacked by torchvision: no published checksum, the IDX structure is checked
        else:
            return None
        try:
            arrays[stem] = read_idx(path)
        except IdxError as e:
            raise DataError(f"{title}: {e}; replace it with the canonical download") from None
    return arrays


def _download(kind: str, ctx: Where) -> Path | None:
    """torchvision's download (mirrors and MD5 checks are its own) into the data root, or into
    our cache when the data root is read-only.  Returns the raw folder, or None offline."""
    folder, tv_name, _ = FAMILIES[kind]
    if not downloads_allowed():
        return None
    import torchvision

    tv_class = getattr(torchvision.datasets, tv_name)
    target = ctx.root if writable(ctx.root) else cache_dir() / "data"
    ctx.log(f"{folder} not found under {ctx.root}: downloading with torchvision into {target}")
    try:
        tv_class(str(target), train=True, download=True)
        tv_class(str(target), train=False, download=True)
    except Exception as e:  # any network failure: fall through to the clear message
        ctx.log(f"download failed: {type(e).__name__}: {e}")
        return None
    return target / folder / "raw"


def load_idx_family(kind: str, ctx: Where) -> tuple[dict[str, np.ndarray], str]:
    """{file stem: uint8 array} for the four files of `kind` ("mnist" or "fashion_mnist"), and
    the folder they were read from."""
    folder, _, _ = FAMILIES[kind]
    md5s = MD5[folder]
    places = [ctx.root / folder / "raw"]
    if kind == "mnist" and packaged_data_allowed(ctx.root):
        places.append(EMBEDDED / "MNIST" / "raw")
    for raw in places:
        arrays = _read_folder(raw, md5s, folder)
        if arrays is not None:
            return arrays, str(raw)
    raw = _download(kind, ctx)
    if raw is not None and (arrays := _read_folder(raw, md5s, folder)) is not None:
        return arrays, str(raw)
    raise DataError(
        f"{folder} not found: expected {', '.join(f + '.gz' for f in FILES)} in "
        f"{' or '.join(str(p) for p in places)}; put the canonical downloads there "
        f"(or point --data-dir / DEEPSTUDY_DATA at a folder holding {folder}/raw/), "
        f"or connect to the network and torchvision will download them"
        + ("" if kind != "mnist" or packaged_data_allowed(ctx.root) else
           " (the MNIST inside the package serves only when no data root is named)"))


def check_pair(images: np.ndarray, labels: np.ndarray, split_name: str, folder: str) -> None:
    """Images and labels of one split belong together and the labels are digits 0-9."""
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{folder}: {split_name} images {images.shape} and labels {labels.shape} do not match")
    if labels.size and labels.max() > 9:
        raise DataError(f"{folder}: {split_name} labels outside 0-9")


def load_checked(kind: str, ctx: Where) -> tuple[dict[str, np.ndarray], str]:
    """load_idx_family, with each split's images and labels checked against each other."""
    arrays, source = load_idx_family(kind, ctx)
    folder = FAMILIES[kind][0]
    check_pair(arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"], "training", folder)
    check_pair(arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"], "test", folder)
    return arrays, source
