"""Datasets, registered by name.  A dataset builder takes a DataContext (where to look,
which seed, which device) plus keyword-only options (`data.*` on the command line) and
returns the splits ready for training.

Importing this package does not import torch: the NumPy-only code in deepstudy.scratch reads
its files through `idx` (the IDX reader), `idx_files` (where MNIST-family files are found) and
`root` (data root, cache, the copy inside the package), which are torch-free too."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..config import Option, builder_options
from ..registry import Registry

if TYPE_CHECKING:
    import torch

    from .tensors import ImageTensors, Normalize

# every module of this package registers datasets or is a torch-free helper (idx, tensors, ...)
# that is harmless to import; `embedded` holds data files, not code
DATASETS: Registry[Callable] = Registry(
    "dataset", __name__, skip=("embedded",), hint="`deepstudy.data.list_datasets()` lists them")


def register_dataset(name: str, *, overwrite: bool = False):
    def wrap(fn):
        return DATASETS.add(name, fn, overwrite)
    return wrap


def list_datasets() -> list[str]:
    return DATASETS.names()


def _get(name: str) -> Callable:
    return DATASETS.get(name)


def dataset_options(name: str) -> dict[str, Option]:
    return builder_options(_get(name))


def load_dataset(name: str, ctx: "DataContext", **options):
    return _get(name)(ctx, **options)


def _cpu() -> "torch.device":
    import torch
    return torch.device("cpu")


@dataclass
class DataContext:
    root: Path  # the data root (may be read-only)
    seed: int = 0
    device: "torch.device" = field(default_factory=_cpu)
    log: Callable[[str], None] = print
    # A finished run's vocabulary (tokens in index order, from its vocab.json): text datasets
    # use it instead of building one, so eval and resume feed the model the ids it learned.
    vocab: list[str] | None = None


@dataclass
class ClassificationData:
    """Train/val/test image tensors and what a model and `predict` need to know about them.

    The training loop only uses `train_batches`, `eval_batches`, `labels` and `size`: another
    kind of data (token sequences, cached features) plugs into the same loop by providing them.
    """

    name: str
    train: ImageTensors
    val: ImageTensors
    test: ImageTensors
    classes: list[str]
    normalize: Normalize
    source: str  # where the files were read from
    preprocess: str = "fit"  # how `predict` turns a user's image into an input: digits | fit | crop
    augment: Callable | None = None  # uint8 batch, generator -> uint8 batch (training only)
    note: str = ""  # a caveat every result made from this data must carry (e.g. "JPEG copy")
    # airbench's alternating flips (data/cifar.py): every image mirrored on even epochs
    alternate_flip: bool = False
    # progressive resizing (fast.ai's DAWNBench recipe): the first `low_res_epochs` epochs train
    # on images scaled down to low_res x low_res pixels, cheaper steps for the coarse early
    # learning; the rest, validation and test at full size (0 = off)
    low_res: int = 0
    low_res_epochs: int = 0
    epoch: int = 1  # set by the training loop before each epoch (start_epoch)
    unit = "images"  # what one example is called in messages
    vocab = None  # images have no vocabulary to save with the run (text data has one)

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def train_batches(self, batch_size: int, generator: torch.Generator, channels_last: bool = False):
        """Shuffled, augmented, normalised (x, y) batches of the training split."""
        from .tensors import batches
        return batches(self.train, batch_size, self.normalize, generator=generator, augment=self._augment_now(),
                       channels_last=channels_last)

    def _augment_now(self):
        inner = self.augment
        if self.alternate_flip and self.epoch % 2 == 0:
            def inner(x, generator, inner=inner):  # on even epochs, every image the other way round
                return (x if inner is None else inner(x, generator)).flip(3)
        if self.low_res and self.epoch <= self.low_res_epochs:
            from .augment import downscale

            def inner(x, generator, inner=inner):
                return downscale(x if inner is None else inner(x, generator), self.low_res)
        return inner

    def eval_batches(self, split: str, batch_size: int, channels_last: bool = False):
        """(x, y) batches of a split in stored order, normalised, never augmented."""
        from .tensors import batches
        return batches(getattr(self, split), batch_size, self.normalize, channels_last=channels_last)

    def labels(self, split: str) -> torch.Tensor:
        return getattr(self, split).labels

    def size(self, split: str) -> int:
        return len(getattr(self, split))

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.train.images.shape[1:])

    def example_input(self) -> torch.Tensor:
        """One input of the model's shape, for the model summary."""
        import torch  # here, not at the top: importing deepstudy.data must not import torch
        return torch.zeros((1, *self.in_shape), device=self.train.images.device)

    def members(self) -> list[dict]:
        """splits.csv: which example went to which split — here each image's position in the
        file it came from (the training file for train and val, the test file for test), so a
        generated split can be audited and rebuilt.  [] when the positions are not known."""
        splits = {s: getattr(self, s) for s in ("train", "val", "test")}
        if any(t.origin is None for t in splits.values()):
            return []
        return [{"split": s, "index": int(i), "label": self.classes[int(y)]}
                for s, t in splits.items() for i, y in zip(t.origin.tolist(), t.labels.tolist())]

    def info(self) -> dict:
        """Everything `eval` and `predict` need to rebuild inputs, as plain JSON."""
        return {
            "name": self.name,
            "classes": list(self.classes),
            "in_shape": list(self.in_shape),
            "mean": list(self.normalize.mean),
            "std": list(self.normalize.std),
            "preprocess": self.preprocess,
            "sizes": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
            "source": self.source,
            "note": self.note,
        }

