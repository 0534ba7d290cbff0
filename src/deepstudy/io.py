"""Atomic file writes: a reader (or a crash) never sees a half-written file.

Everything is written to a temporary file in the same folder, flushed to disk, then renamed
over the target.  `os.replace` is atomic on POSIX and Windows when both paths share a
filesystem, which the same folder guarantees."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator


_UMASK = os.umask(0)
os.umask(_UMASK)


# Under torchrun every process runs the same code, and process 0 alone may write (the
# torchvision references' save_on_master): the runner clears this flag in the others, and every
# file deepstudy writes goes through atomic_path below, so no other process can write one.
_WRITES = True


@contextmanager
def writes(allowed: bool) -> Iterator[None]:
    """Within this block, files are written only if `allowed` (elsewhere they are discarded)."""
    global _WRITES
    before, _WRITES = _WRITES, allowed
    try:
        yield
    finally:
        _WRITES = before


def may_write() -> bool:
    """Whether this process writes files (False in processes other than 0 under torchrun); for
    writers that cannot go through atomic_path, such as TensorBoard's event files."""
    return _WRITES


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path`, on error it is removed.
    In a process that may not write (see `writes`), a throwaway path instead."""
    if not _WRITES:
        with tempfile.TemporaryDirectory(prefix="deepstudy-discarded-") as scratch:
            yield Path(scratch) / Path(path).name
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp makes 0600 files, and some writers (safetensors) make their own file anew: give
        # the finished file the usual permissions, after whoever wrote it
        os.chmod(tmp, 0o666 & ~_UMASK)
        with open(tmp, "rb+") as f:  # whatever library wrote it, make sure it is on disk
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def write_csv(path, rows: Iterable[dict], fieldnames: list[str] | None = None) -> None:
    rows = list(rows)
    if fieldnames is None:
        fieldnames = list(rows[0]) if rows else []
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def torch_load_safely(path, map_location="cpu") -> Any:
    """torch.load(weights_only=True): tensors and plain containers only, so opening a file never
    runs code.  Torch's warnings about what it is refusing (a plain pickle's protocol) are kept
    quiet: the caller turns the refusal into one line for the user."""
    import warnings

    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, map_location=map_location, weights_only=True)


def read_json(path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_csv(path) -> list[dict]:
    """Rows of a CSV with numbers turned back into floats/ints where they parse."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _json_default(obj):
    # numpy scalars, tuples from configs, Paths
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, os.PathLike):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
