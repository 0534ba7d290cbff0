"""Where data is looked for and where derived files are cached.

Data root: `--data-dir`, else $DEEPSTUDY_DATA, else <cache>/data.  Folders inside it use
torchvision's layouts (`MNIST/raw/*.gz`, `cifar-10-batches-py/`), so a folder that
torchvision filled works here and the other way round.  The data root may be read-only:
anything we derive (decoded images, unpacked archives) goes to the cache directory,
$DEEPSTUDY_CACHE or the per-user cache (~/.cache/deepstudy, %LOCALAPPDATA%\\deepstudy).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_dir() -> Path:
    if os.environ.get("DEEPSTUDY_CACHE"):
        return Path(os.environ["DEEPSTUDY_CACHE"]).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "deepstudy"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "deepstudy"


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The data root, as an absolute path: a relative `--data-dir` or $DEEPSTUDY_DATA is read
    against the folder the command was started in, once, so that what a run records in its
    config.json and what an error names still points at the same place from anywhere else."""
    if explicit:
        return _absolute(explicit)
    if os.environ.get("DEEPSTUDY_DATA"):
        return _absolute(os.environ["DEEPSTUDY_DATA"])
    return _absolute(cache_dir() / "data")


def _absolute(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(Path(path).expanduser()))


def downloads_allowed() -> bool:
    """Set DEEPSTUDY_OFFLINE=1 to never try the network (the tests do)."""
    return os.environ.get("DEEPSTUDY_OFFLINE", "").lower() not in ("1", "true", "yes")


def writable(path: Path) -> bool:
    """True when files can be created in `path` (creating it if needed)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


EMBEDDED = Path(__file__).parent / "embedded"
