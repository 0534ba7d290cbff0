"""Feature extraction: a frozen backbone's outputs, computed once per split and cached, so the
head trains on them in seconds instead of running the backbone at every step.

Augmentation becomes views: view 0 of the training split is the images as they are, views
1..K-1 are augmented copies (each drawn from its own seeded generator, so it can be
recomputed exactly).  Each epoch the head sees every training image once, in one of its K
views picked at random.

The cache (`<cache>/features/*.safetensors`) is keyed by everything the numbers depend on:
the backbone's weights, the pooling, the images, the normalisation, the augmentation and the
view's seed.  A change to any of them computes the features again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import torch

from ..io import atomic_path
from .root import cache_dir

_FORMAT = "1"


@dataclass
class FeatureData:
    """Cached features in the shape the training loop consumes (the same four methods as
    ClassificationData): train views K x N x D..., val and test N x D..."""

    train_views: torch.Tensor
    train_labels: torch.Tensor
    evals: dict  # split -> (features, labels)

    def train_batches(self, batch_size: int, generator: torch.Generator, channels_last: bool = False):
        k, n = self.train_views.shape[:2]
        order = torch.randperm(n, generator=generator)
        view = torch.randint(0, k, (n,), generator=generator)
        device = self.train_views.device
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size].to(device)
            yield self.train_views[view[start:start + batch_size].to(device), index], self.train_labels[index]

    def eval_batches(self, split: str, batch_size: int, channels_last: bool = False):
        x, y = self.evals[split]
        for start in range(0, len(y), batch_size):
            yield x[start:start + batch_size], y[start:start + batch_size]

    def labels(self, split: str) -> torch.Tensor:
        return self.train_labels if split == "train" else self.evals[split][1]

    def size(self, split: str) -> int:
        return len(self.labels(split))


def _digest(h, tensor: torch.Tensor) -> None:
    h.update(f"{tuple(tensor.shape)} {tensor.dtype}".encode())
    h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())


def model_fingerprint(model) -> str:
    """Changes with any weight of the base or the kind of pooling."""
    h = hashlib.blake2b(f"features v{_FORMAT} torch {torch.__version__} {type(model.pool).__name__}".encode())
    for name, tensor in model.base.state_dict().items():
        h.update(name.encode())
        _digest(h, tensor)
    return h.hexdigest()


def data_fingerprint(data, split: str) -> str:
    """Changes with the split's images, their normalisation and the augmentation."""
    h = hashlib.blake2b(f"{data.normalize.mean} {data.normalize.std}".encode())
    h.update(str(getattr(data.augment, "description", data.augment is not None)).encode())
    if hasattr(data, "fingerprint"):  # streamed from files: names, sizes, dates
        h.update(data.fingerprint(split).encode())
    else:
        _digest(h, getattr(data, split).images)
        _digest(h, getattr(data, split).labels)
    return h.hexdigest()


def view_batches(data, split: str, batch_size: int, generator: torch.Generator):
    """Normalised batches of a split in stored order, augmented with `generator`."""
    if hasattr(data, "view_batches"):
        yield from data.view_batches(split, batch_size, generator)
        return
    ds = getattr(data, split)
    for start in range(0, len(ds), batch_size):
        yield data.normalize(data.augment(ds.images[start:start + batch_size], generator)), None


@torch.inference_mode()
def compute_features(model, data, split: str, view: int = 0, seed: int = 0, batch_size: int = 256) -> torch.Tensor:
    """The backbone's features of every image of a split, in stored order (view 0: as they are;
    view k > 0: augmented with a generator seeded from (seed, k))."""
    was_training = model.training
    model.eval()
    if view == 0:
        batches = data.eval_batches(split, batch_size)
    else:
        batches = view_batches(data, split, batch_size, torch.Generator().manual_seed(seed * 1_000_003 + view))
    device = next(model.parameters()).device
    out = [model.features(x.to(device)).float().cpu() for x, _ in batches]
    model.train(was_training)
    return torch.cat(out)


def cached_features(model, data, split: str, view: int = 0, seed: int = 0, batch_size: int = 256,
                    log: Callable[[str], None] = print, model_key: str | None = None) -> tuple[torch.Tensor, bool]:
    """compute_features, from the disk cache when the same features were computed before.
    Returns (features, whether they came from the cache)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, save_file

    if view > 0 and data.augment is not None and not hasattr(data.augment, "description"):
        # an augmentation we cannot describe cannot key a cache: compute, do not store
        return compute_features(model, data, split, view, seed, batch_size), False
    h = hashlib.blake2b(f"{model_key or model_fingerprint(model)} {data_fingerprint(data, split)} {split} "
                        f"view {view} seed {seed if view else 0}".encode())
    path = cache_dir() / "features" / f"{h.hexdigest()[:40]}.safetensors"
    if path.is_file():
        try:
            return load_file(str(path))["features"], True
        except (SafetensorError, OSError, ValueError, KeyError) as e:
            log(f"feature cache {path} is unreadable ({e}); computing again")
    features = compute_features(model, data, split, view, seed, batch_size)
    with atomic_path(path) as tmp:
        save_file({"features": features.contiguous()}, str(tmp))
    return features, False
