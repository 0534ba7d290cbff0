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

from ..errors import DataError


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
    config.json and what an error names still points at the same place from anywhere else.
    A root the user named must exist: a typo is never quietly replaced by other data."""
    if explicit:
        return _existing(explicit, "--data-dir")
    if os.environ.get("DEEPSTUDY_DATA"):
        return _existing(os.environ["DEEPSTUDY_DATA"], "DEEPSTUDY_DATA")
    return default_root()


def default_root() -> Path:
    """The data root when none is named: <cache>/data."""
    return _absolute(cache_dir() / "data")


def packaged_data_allowed(root: Path) -> bool:
    """The copies carried inside the package (MNIST, the airline series) stand in only when the
    user named no data root: data asked for in a named folder and missing there is an error."""
    return Path(root) == default_root()


def _existing(path: str | os.PathLike, named_by: str) -> Path:
    root = _absolute(path)
    if not root.is_dir():
        raise DataError(f"{named_by} {root}: no such folder (name the folder that holds the datasets, "
                        f"or leave it out to use the per-user cache and the data inside the package)")
    return root


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
