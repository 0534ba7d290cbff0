"""Reading a user's own files, the same way for every dataset that takes them (image_csv,
text_csv, a text file for the language model): where a path given as an option is looked for,
how text is decoded, how a CSV or TSV is read, and the one rule for rows or files that cannot
be used (listed and skipped, until there are more than `data.max_bad` of them).

Torch-free, like idx.py and root.py.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path
from typing import Callable

from ..errors import ConfigError, DataError

# a split column's values, and the folder names image_folder reads, per split
SPLIT_NAMES = {"train": ("train", "training"), "val": ("val", "valid", "validation"), "test": ("test", "testing")}
DELIMITERS = {",": ",", ";": ";", "tab": "\t", "|": "|"}  # data.delimiter's choices (auto: detected)


def resolve_path(root: Path, value: str, option: str) -> Path:
    """A file or folder named by `data.<option>`: as given (relative to the current folder), else
    relative to the data root."""
    if not value:
        raise ConfigError(f"data.{option} is not set: give it with --set data.{option}=PATH")
    path = Path(value).expanduser()
    if not path.is_absolute() and not path.exists() and (root / path).exists():
        path = root / path
    if not path.exists():
        raise DataError(f"data.{option}={value}: no such file or folder (looked in the current folder and {root})")
    return path


def read_bytes(path: Path) -> bytes:
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a file")
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e})") from None


def decode_text(path: Path, raw: bytes, encoding: str = "auto") -> str:
    """The file's text.  auto: UTF-8, with or without the byte-order mark Windows tools write
    (UTF-16 when it starts with UTF-16's mark, as Excel's "Unicode text" does); anything else
    must be named, since no guess between cp1252, latin-1 and the rest is safe."""
    if encoding == "auto":
        encoding = "utf-16" if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    elif codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"  # a named UTF-8 file may still carry the mark: it is not part of the text
    wide = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))  # their ASCII letters hold NUL bytes
    if not wide and b"\x00" in raw[:1_000_000]:  # no text file holds NUL: a binary one almost always does
        raise DataError(f"{path} is not a text file (it holds NUL bytes)")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        what = "UTF-8" if encoding == "utf-8-sig" else encoding
        raise DataError(f"{path} is not {what} text (byte 0x{raw[e.start]:02x} on line {line}); name the encoding "
                        f"it was saved in, e.g. data.encoding=cp1252 (Windows) or data.encoding=latin-1") from None
    if not looks_like_text(text):
        raise DataError(f"{path} is not a text file (it holds NUL bytes or control characters)")
    return text


def looks_like_text(text: str) -> bool:
    """No NUL, and control characters (other than tabs, line and page breaks) in at most 1 in
    1,000 characters: a binary file can happen to decode, but not to look like this."""
    sample = text[:1_000_000]
    controls = sum(1 for c in sample if (c < " " and c not in "\t\n\r\f\v") or c == "\x7f")
    return "\x00" not in sample and controls <= len(sample) / 1000


def read_table(path: Path, encoding: str = "auto", delimiter: str = "auto") -> tuple[list[str], list[tuple[int, dict]]]:
    """A CSV or TSV file: its column names and its rows, each as (the line it starts on, as an
    editor numbers lines, {column: value}).  Blank rows are left out.  The delimiter: data.delimiter,
    else a tab for .tsv/.tab files, else what the header line is separated by (, ; tab |)."""
    text = decode_text(path, read_bytes(path), encoding)
    header_line = text.split("\n", 1)[0]
    if delimiter != "auto":
        sep = DELIMITERS[delimiter]
    elif path.suffix.lower() in (".tsv", ".tab"):
        sep = "\t"
    else:
        try:
            sep = csv.Sniffer().sniff(header_line, delimiters=",;\t|").delimiter
        except csv.Error:  # a single column: nothing to tell
            sep = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    rows = []
    try:
        columns = [c.strip() for c in next(reader, [])]
        start = reader.line_num + 1
        for values in reader:
            if any(v.strip() for v in values):
                rows.append((start, dict(zip(columns, values))))
            start = reader.line_num + 1
    except csv.Error as e:
        raise DataError(f"{path} line {reader.line_num}: cannot read it as a CSV ({e})") from None
    return columns, rows


def require_columns(path: Path, columns: list[str], named: dict[str, str]) -> None:
    """Every column an option names ({"data.text_column": "question", ...}; empty: not used) is
    in the file, else one line that lists the columns it has."""
    absent = {option: name for option, name in named.items() if name and name not in columns}
    if absent:
        raise DataError(f"{path}: no column {', '.join(map(repr, absent.values()))}; its columns are "
                        f"{', '.join(columns) or 'none'} (set {' / '.join(absent)})")


def split_name(value: str | None) -> str:
    """A split column's value as train, val or test ('' when it is none of them)."""
    value = (value or "").strip().lower()
    return next((s for s, names in SPLIT_NAMES.items() if value in names), "")


def check_bad(bad: list[tuple[str, str]], total: int, max_bad: float, where: str, log: Callable[[str], None],
              unit: str = "images", problem: str = "missing or unreadable") -> None:
    """The rule for what cannot be used, images or rows alike: each one listed (name, why) and
    skipped; more than `max_bad` of `total` and the run stops in one line saying which."""
    if not bad:
        return
    listing = ", ".join(f"{name} ({why})" for name, why in bad[:10]) + (f", and {len(bad) - 10} more" if len(bad) > 10 else "")
    if len(bad) > max_bad * total:
        raise DataError(f"{where}: {len(bad)} of {total} {unit} ({100 * len(bad) / max(total, 1):.1f}%) are {problem}, "
                        f"more than data.max_bad={max_bad:g}: {listing}")
    log(f"skipping {len(bad)} of {total} {unit} that are {problem}:")
    for name, why in bad:
        log(f"  {name}: {why}")
