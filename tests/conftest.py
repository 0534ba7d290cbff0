"""Shared fixtures.  Every test runs offline (DEEPSTUDY_OFFLINE=1) with its own cache folder.

Real data: tests that need more than the MNIST the package carries use ../shared/datasets
(beside the checkout, or $DEEPSTUDY_SHARED_DATA) and skip with a reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from deepstudy.data.idx import write_idx

def _find_shared() -> Path:
    """$DEEPSTUDY_SHARED_DATA, else the nearest `shared/datasets` beside the checkout or above it
    (a git worktree may sit deeper than the main checkout)."""
    if os.environ.get("DEEPSTUDY_SHARED_DATA"):
        return Path(os.environ["DEEPSTUDY_SHARED_DATA"])
    for parent in Path(__file__).resolve().parents[1:]:
        if (parent / "shared" / "datasets").is_dir():
            return parent / "shared" / "datasets"
    return Path(__file__).resolve().parents[2] / "shared" / "datasets"


SHARED = _find_shared()


@pytest.fixture(autouse=True)
def _offline(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("DEEPSTUDY_OFFLINE", "1")
    monkeypatch.setenv("DEEPSTUDY_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("DEEPSTUDY_DATA", raising=False)


def shared_or_skip(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (set DEEPSTUDY_SHARED_DATA)")
    return path


@pytest.fixture
def shared_data() -> Path:
    return shared_or_skip()


def make_idx_family(root: Path, folder: str, n_train: int = 600, n_test: int = 200, seed: int = 0,
                    compress: bool = False) -> Path:
    """A hand-made MNIST-format dataset: each class draws a bright bar at its own row, so a
    model can learn it in one epoch.  Uncompressed files, as torchvision leaves them unpacked
    (compressed .gz would have to match the canonical MD5s)."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, y in enumerate(labels):
            images[i, 2 + 2 * y: 4 + 2 * y, 4:24] = 250
        suffix = ".gz" if compress else ""
        write_idx(raw / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return raw


@pytest.fixture
def data_root(tmp_path) -> Path:
    """A data root for recipe runs: the shared real data when present; else a folder with a
    hand-made Fashion-MNIST (MNIST then comes from the copy inside the package)."""
    if (SHARED / "FashionMNIST" / "raw").exists():
        return SHARED
    root = tmp_path / "data"
    make_idx_family(root, "FashionMNIST")
    return root
