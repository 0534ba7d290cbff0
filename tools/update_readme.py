#!/usr/bin/env python
"""Regenerate the README's catalog table (between <!-- catalog:start --> and <!-- catalog:end -->)
from the recipes and recipes/measured.json, so the README never drifts from `deepstudy list`."""

import re
import sys
from pathlib import Path

from deepstudy.catalog import catalog_rows, format_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def main() -> int:
    text = README.read_text(encoding="utf-8")
    table = format_markdown(catalog_rows("*"))
    new, n = re.subn(r"(<!-- catalog:start -->\n).*?(<!-- catalog:end -->)", lambda m: m.group(1) + table + "\n" + m.group(2),
                     text, flags=re.S)
    if n != 1:
        print("README.md has no catalog markers", file=sys.stderr)
        return 1
    README.write_text(new, encoding="utf-8")
    print(f"catalog: {len(catalog_rows('*'))} recipes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
