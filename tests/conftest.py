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

# The suite runs on every core through pytest-xdist (`-n auto`, README): each worker gets its
# share of the cores, so two workers on a 2-core machine do not fight over four threads.
XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def _threads_per_worker() -> int:
    from deepstudy.machine import allowed_cpus

    return max(1, len(allowed_cpus()) // XDIST_WORKERS)


if XDIST_WORKERS > 1:
    import torch

    torch.set_num_threads(_threads_per_worker())


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """With `--dist loadgroup`, keep each file whose tests share a module-scoped fixture (a run
    trained once and read by many tests) on one worker: spread over two, the run trains twice.
    tryfirst: xdist reads the marks in its own hook of the same name."""
    for item in items:
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        if any(d.scope == "module" for fixturedefs in defs.values() for d in fixturedefs):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


def _isolate(monkeypatch, cache: Path) -> None:
    from deepstudy import machine

    # every run on every core, however busy the machine: a run's numbers can depend on how many
    # threads shared its sums, and tests that compare two runs must not depend on the load
    # (tests/test_machine.py tests the real look at the load)
    # (under xdist: the other workers' share of the cores counts as busy)
    busy = float(len(machine.allowed_cpus()) - _threads_per_worker()) if XDIST_WORKERS > 1 else 0.0
    monkeypatch.setattr(machine, "busy_cores", lambda interval=0.25: busy)
    monkeypatch.setenv("DEEPSTUDY_OFFLINE", "1")
    monkeypatch.setenv("DEEPSTUDY_CACHE", str(cache))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("DEEPSTUDY_DATA", raising=False)


@pytest.fixture(scope="session", autouse=True)
def _offline_session(tmp_path_factory):
    """The same for module-scoped fixtures, which pytest sets up before any test's own fixtures:
    without it the runs they train would read the user's cache and $DEEPSTUDY_DATA, and could
    try the network."""
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, tmp_path_factory.mktemp("session-cache"))
        yield


@pytest.fixture(autouse=True)
def _offline(tmp_path_factory, monkeypatch):
    _isolate(monkeypatch, tmp_path_factory.mktemp("cache"))


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


CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar_like(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n hand-made 32x32 colour images (N x 3 x 32 x 32 uint8) and labels: each class has its
    own colour under noise and a bright bar at its own row, so a CNN learns it in one epoch.
    `seed` draws the noise only: the class colours are the same for every seed, so a test split
    drawn with another seed is the same task as the training split."""
    palette = np.random.default_rng(0).integers(30, 226, (10, 3))
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = np.clip(palette[labels][:, :, None, None] + rng.integers(-40, 41, (n, 3, 32, 32)), 0, 255)
    for i, y in enumerate(labels):
        images[i, :, 3 * y: 3 * y + 2, 4:28] = 250
    return images.astype(np.uint8), labels.astype(np.int64)


def make_cifar_jpeg(root: Path, n_train: int = 120, n_test: int = 30, seed: int = 0) -> Path:
    """A hand-made copy in the layout of ../shared/datasets/cifar10-jpeg: per class, n_train
    and n_test images as <split>/<class>/NNNN.jpg."""
    from PIL import Image

    folder = root / "cifar10-jpeg"
    for split_name, n in (("train", n_train), ("test", n_test)):
        images, labels = cifar_like(10 * n, seed + (split_name == "test"))
        counts = [0] * 10
        for image, y in zip(images, labels):
            d = folder / split_name / CIFAR_CLASSES[y]
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image.transpose(1, 2, 0)).save(d / f"{counts[y]:04d}.jpg", quality=90)
            counts[y] += 1
    return folder


# Hand-made TREC: each coarse class has its own question pattern, so a model learns it at once.
TREC_PATTERNS = {
    "ABBR:exp": "What does {W} stand for ?", "DESC:def": "What is the meaning of {w} ?",
    "ENTY:animal": "Which animal eats the {w} ?", "HUM:ind": "Who invented the {w} ?",
    "LOC:city": "Where is the {w} museum ?", "NUM:count": "How many {w} are there in {w2} ?",
}
WORDS = ("bridge tower river violin comet glacier lantern harbor engine meadow orchard compass "
         "falcon spire canyon beacon").split()


def make_trec(root: Path, n_train: int = 1200, n_test: int = 200, seed: int = 0) -> Path:
    """`trec/train_5500.label` and `trec/TREC_10.label` in the real format (not the real bytes)."""
    folder = root / "trec"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = sorted(TREC_PATTERNS)
    for name, n in (("train_5500.label", n_train), ("TREC_10.label", n_test)):
        lines = []
        for _ in range(n):
            label = labels[rng.integers(len(labels))]
            w, w2 = rng.choice(WORDS, 2)
            lines.append(f"{label} " + TREC_PATTERNS[label].format(w=w, w2=w2, W=w.upper()[:3]))
        (folder / name).write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return folder


def make_shakespeare(root: Path, chars: int = 60_000, seed: int = 0) -> Path:
    """`tinyshakespeare/input.txt`: speeches in the real file's layout, from a small word list."""
    rng = np.random.default_rng(seed)
    speakers = ["ROMEO", "JULIET", "MERCUTIO", "NURSE"]
    words = "thou art my love and i am thine the night is sweet what light doth break".split()
    parts, size = [], 0
    while size < chars:
        speech = f"{rng.choice(speakers)}:\n" + " ".join(rng.choice(words, rng.integers(4, 12))).capitalize() + ".\n\n"
        parts.append(speech)
        size += len(speech)
    path = root / "tinyshakespeare" / "input.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(parts), encoding="utf-8")
    return path


# The datasets a user's clone lacks (no ../shared beside it): the tests make their own copies.
# MNIST and airline passengers ride in the package; the sine wave and the toy sets are generated.
HANDMADE_DATASETS = {"fashion_mnist": "FashionMNIST/raw", "cifar10": "cifar10-jpeg",
                     "cifar10_cats_dogs": "cifar10-jpeg", "trec": "trec", "tinyshakespeare": "tinyshakespeare/input.txt"}


def real_data_present() -> bool:
    return all((SHARED / p).exists() for p in HANDMADE_DATASETS.values())


@pytest.fixture
def data_root(tmp_path) -> Path:
    """A data root for recipe runs: the shared real data when present; else a folder with
    hand-made Fashion-MNIST, CIFAR-10 JPEG copy, TREC and tiny Shakespeare (MNIST then comes
    from the package)."""
    if real_data_present():
        return SHARED
    return make_handmade_root(tmp_path)


@pytest.fixture
def handmade_root(tmp_path) -> Path:
    """Always the hand-made data root, as a user's clone without ../shared sees it."""
    return make_handmade_root(tmp_path)


def make_handmade_root(tmp_path: Path) -> Path:
    from deepstudy.data.root import EMBEDDED
    from deepstudy.data.series import AIRLINE_FILE

    root = tmp_path / "data"
    # the data the package carries serves only when no data root is named: this root holds its own
    (root / "MNIST").mkdir(parents=True)
    (root / "MNIST" / "raw").symlink_to(EMBEDDED / "MNIST" / "raw")
    (root / AIRLINE_FILE).parent.mkdir(parents=True)
    (root / AIRLINE_FILE).symlink_to(EMBEDDED / AIRLINE_FILE)
    make_idx_family(root, "FashionMNIST")
    make_cifar_jpeg(root)
    make_trec(root)
    make_shakespeare(root)
    return root


# ------------------------------------------------------------------ user mistakes

def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` and its bytes: equal before and after = nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def assert_one_line_refusal(code: int, out: str, err: str, words=()) -> str:
    """What every user mistake must end in: exit code 2 and exactly one `deepstudy: error:` line
    on stderr (holding `words`), no traceback.  Returns the line."""
    assert code == 2, (code, out[-500:], err[-2000:])
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert lines[0].startswith("deepstudy: error: "), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]
