"""Data for the NumPy studies, as plain arrays.

Generated: Celsius→Fahrenheit pairs, and three 2-D classification problems (XOR, two moons, two
spirals).  Read from files: MNIST and Fashion-MNIST, found exactly as for the PyTorch recipes
(deepstudy.data.idx_files: the data root, the copy inside the package, torchvision's download).

Every builder returns an ArrayData: train / validation / test splits as stored (uint8 images or
float features), and an `encode` that turns stored rows into the float matrix a model reads,
with statistics taken from the training split only.  Batches are slices of a shuffled index
array, a whole batch per NumPy call: there is no Python loop over examples.

A builder is `fn(src: Source, *, options)`; its keyword-only parameters are the `data.*`
options of a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Literal

import numpy as np

from ..config import Count, Fraction, Option, builder_options
from ..errors import ConfigError
from ..data.idx_files import FAMILIES, load_checked


@dataclass
class Source:
    """Where files are looked for, the seed for anything random, and where to report."""
    root: Path
    seed: int = 0
    log: Callable[[str], None] = print


@dataclass
class Split:
    x: np.ndarray  # one row per example, as stored
    y: np.ndarray  # int64 class labels, or float targets

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index) -> "Split":
        return Split(self.x[index], self.y[index])


class PixelScaler:
    """uint8 images -> flat float rows (x/255 − mean) / std.  A pixel has only 256 possible
    values, so a 256-entry table does the division, subtraction and type conversion in one
    gather."""

    def __init__(self, mean: float, std: float):
        self.mean, self.std = mean, std
        self._tables: dict[np.dtype, np.ndarray] = {}

    @classmethod
    def fit(cls, images: np.ndarray) -> "PixelScaler":
        """Mean and (unbiased) standard deviation of all pixels, from a histogram of the 256
        values: exact, and no float copy of the images."""
        counts = np.bincount(images.reshape(-1), minlength=256).astype(np.float64)
        values = np.arange(256) / 255
        n = counts.sum()
        mean = float(counts @ values / n)
        std = float(math.sqrt(counts @ (values - mean) ** 2 / (n - 1)))
        return cls(mean, std)

    def __call__(self, x: np.ndarray, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        if dtype not in self._tables:
            self._tables[dtype] = ((np.arange(256) / 255 - self.mean) / self.std).astype(dtype)
        return self._tables[dtype][x].reshape(len(x), -1)


class Standardizer:
    """Float features -> (x − mean) / std, column by column.  Gradient descent converges far
    faster on features of similar, unit scale."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean, self.std = np.asarray(mean, np.float64), np.asarray(std, np.float64)

    @classmethod
    def fit(cls, x: np.ndarray) -> "Standardizer":
        std = x.std(axis=0)
        return cls(x.mean(axis=0), np.where(std > 0, std, 1.0))

    def __call__(self, x: np.ndarray, dtype) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(dtype)


@dataclass
class ArrayData:
    name: str
    train: Split
    val: Split
    test: Split
    classes: list[str] | None  # None: the target is a number (regression)
    encode: Callable[[np.ndarray, np.dtype], np.ndarray]  # stored rows -> float features
    source: str  # where the data came from
    description: dict = field(default_factory=dict)  # more for config.json (units, normalisation, ...)

    @property
    def is_classification(self) -> bool:
        return self.classes is not None

    @property
    def in_features(self) -> int:
        return self.encode(self.train.x[:1], np.float32).shape[1]

    @property
    def outputs(self) -> int:
        return len(self.classes) if self.classes is not None else 1

    def size(self, split: str) -> int:
        return len(getattr(self, split))

    def batches(self, split: str, batch_size: int, dtype=np.float32,
                rng: np.random.Generator | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(x, y) batches of a split: shuffled with `rng` (training), else in stored order."""
        part = getattr(self, split)
        order = rng.permutation(len(part)) if rng is not None else None
        for start in range(0, len(part), batch_size):
            index = slice(start, start + batch_size) if order is None else order[start:start + batch_size]
            y = part.y[index]
            yield self.encode(part.x[index], dtype), (y if self.is_classification else y.astype(dtype))

    def info(self) -> dict:
        """What eval and predict need to rebuild inputs, as plain JSON (the shape of
        deepstudy.data.ClassificationData.info for images)."""
        return {"name": self.name, "classes": self.classes, **self.description,
                "sizes": {s: self.size(s) for s in ("train", "val", "test")}, "source": self.source}


def _check_fractions(test_fraction: float, val_fraction: float) -> None:
    for name, value in (("data.test_fraction", test_fraction), ("data.val_fraction", val_fraction)):
        if not 0 <= value < 1:
            raise ConfigError(f"{name} must be at least 0 and below 1, got {value}")


def three_way(n: int, rng: np.random.Generator, test_fraction: float, val_fraction: float):
    """Shuffled indices for test, then validation (a fraction of what is left), then training."""
    order = rng.permutation(n)
    n_test = round(n * test_fraction)
    n_val = round((n - n_test) * val_fraction)
    return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]


# --------------------------------------------------------------------------- generated data

def celsius(src: Source, *, n: int = 160, noise: float = 0.0, low: float = -40.0, high: float = 100.0,
            test_fraction: Fraction = 0.2, val_fraction: Fraction = 0.1) -> ArrayData:
    """Temperatures: n Celsius values drawn uniformly from [low, high], each with its Fahrenheit
    value F = 1.8·C + 32, plus Gaussian noise with standard deviation `noise` (°F)."""
    if n < 10 or not low < high or noise < 0:
        raise ConfigError(f"data.n must be at least 10, data.low below data.high, data.noise not negative "
                          f"(got n={n}, low={low}, high={high}, noise={noise})")
    _check_fractions(test_fraction, val_fraction)
    rng = np.random.default_rng(src.seed)
    c = rng.uniform(low, high, n)
    f = 1.8 * c + 32 + noise * rng.standard_normal(n)
    full = Split(c[:, None], f)
    train, val, test = (full.take(i) for i in three_way(n, rng, test_fraction, val_fraction))
    scale = Standardizer.fit(train.x)
    return ArrayData("celsius", train, val, test, None, scale, f"generated: F = 1.8*C + 32, noise {noise} F",
                     {"input": "degrees Celsius", "target": "degrees Fahrenheit", "true_w": 1.8, "true_b": 32.0,
                      "noise": noise, "x_mean": scale.mean.tolist(), "x_std": scale.std.tolist()})


def _xor(rng, n, noise):
    points = rng.uniform(-1, 1, (n, 2))
    labels = (points[:, 0] * points[:, 1] < 0).astype(np.int64)
    return points + noise * rng.standard_normal((n, 2)), labels


def _moons(rng, n, noise):
    labels = np.arange(n) % 2
    angle = rng.uniform(0, math.pi, n)
    upper = np.stack([np.cos(angle), np.sin(angle)], 1)
    lower = np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], 1)
    points = np.where(labels[:, None] == 0, upper, lower)
    return points + noise * rng.standard_normal((n, 2)), labels


def _spirals(rng, n, noise):
    # two arms, each turning 1.5 times around the origin, the second rotated by half a turn
    labels = np.arange(n) % 2
    radius = rng.uniform(0.05, 1, n)
    angle = 3 * math.pi * radius + math.pi * labels
    points = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
    return points + noise * rng.standard_normal((n, 2)), labels


TOY_PROBLEMS = {
    "xor": (_xor, ["x*y > 0", "x*y < 0"]),
    "moons": (_moons, ["upper moon", "lower moon"]),
    "spirals": (_spirals, ["arm A", "arm B"]),
}


def toy2d(src: Source, *, problem: Literal["xor", "moons", "spirals"] = "moons", n: int = 1000,
          noise: float = 0.1, test_fraction: Fraction = 0.2, val_fraction: Fraction = 0.2) -> ArrayData:
    """A 2-D, two-class problem a straight line cannot separate: XOR (the sign of x·y in the
    unit square), two interleaved half-moons, or two spirals.  `noise` is the standard deviation
    of Gaussian noise added to each coordinate."""
    if n < 20 or noise < 0:
        raise ConfigError(f"data.n must be at least 20 and data.noise not negative (got n={n}, noise={noise})")
    _check_fractions(test_fraction, val_fraction)
    make, classes = TOY_PROBLEMS[problem]
    rng = np.random.default_rng(src.seed)
    points, labels = make(rng, n, noise)
    full = Split(points, labels)
    train, val, test = (full.take(i) for i in three_way(n, rng, test_fraction, val_fraction))
    scale = Standardizer.fit(train.x)
    return ArrayData(problem, train, val, test, list(classes), scale, f"generated: {problem}, noise {noise}",
                     {"problem": problem, "noise": noise, "x_mean": scale.mean.tolist(), "x_std": scale.std.tolist()})


# --------------------------------------------------------------------------- MNIST family

def _idx_family(kind: str, src: Source, val_fraction: float, limit: int, standardize: bool) -> ArrayData:
    _check_fractions(0.0, val_fraction)
    if limit < 0:
        raise ConfigError(f"data.limit must not be negative, got {limit}")
    arrays, source = load_checked(kind, src)
    images, labels = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"].astype(np.int64)
    order = np.random.default_rng(src.seed).permutation(len(labels))
    n_val = round(len(labels) * val_fraction)
    train = Split(images[order[n_val:]], labels[order[n_val:]])
    val = Split(images[order[:n_val]], labels[order[:n_val]])
    test = Split(arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"].astype(np.int64))
    if limit:  # smoke tier: a small real subset, same proportions as the PyTorch recipes use
        train, val, test = train.take(slice(0, limit)), val.take(slice(0, max(1, limit // 4))), \
            test.take(slice(0, max(1, limit // 4)))
    scale = PixelScaler.fit(train.x) if standardize else PixelScaler(0.0, 1.0)
    _, _, classes = FAMILIES[kind]
    # the keys deepstudy.data.ClassificationData.info has, so `predict` prepares a user's image
    # the same way for NumPy and PyTorch runs
    return ArrayData(kind, train, val, test, list(classes), scale, source,
                     {"in_shape": [1, *images.shape[1:]], "mean": [scale.mean], "std": [scale.std],
                      "preprocess": "digits" if kind == "mnist" else "fit"})


def mnist(src: Source, *, val_fraction: Fraction = 0.1, limit: Count = 0, standardize: bool = True) -> ArrayData:
    """MNIST digits as flat rows of 784 pixels.  val_fraction: share of the 60k training images
    held out for validation; limit: cap the training images (validation and test get a quarter
    as many; smoke tests); standardize: pixels as (x/255 − mean)/std with the training split's
    statistics, else just x/255 in [0, 1]."""
    return _idx_family("mnist", src, val_fraction, limit, standardize)


def fashion_mnist(src: Source, *, val_fraction: Fraction = 0.1, limit: Count = 0, standardize: bool = True) -> ArrayData:
    """Fashion-MNIST: same options as mnist."""
    return _idx_family("fashion_mnist", src, val_fraction, limit, standardize)


DATASETS: dict[str, Callable[..., ArrayData]] = {
    "celsius": celsius, "toy2d": toy2d, "mnist": mnist, "fashion_mnist": fashion_mnist,
}

# the datasets whose target is a number, not a class: known before loading, so that settings
# that need classes are refused before any work
REGRESSION = {"celsius"}


def _get(name: str) -> Callable[..., ArrayData]:
    if name not in DATASETS:
        raise ConfigError(f"unknown NumPy dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def dataset_options(name: str) -> dict[str, Option]:
    return builder_options(_get(name))


def load_dataset(name: str, src: Source, **options) -> ArrayData:
    return _get(name)(src, **options)
