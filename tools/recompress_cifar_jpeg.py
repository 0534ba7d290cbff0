"""Write a copy of the CIFAR-10 JPEG folder re-encoded at another JPEG quality, to measure how
much accuracy the compression itself costs a recipe.

No lossless CIFAR-10 is reachable offline, so the cost of the shared copy's q75 4:2:0 encoding
cannot be measured directly; its slope can: train the same recipe on this copy, re-encoded
harder, and compare with the shared copy.

    python tools/recompress_cifar_jpeg.py ../shared/datasets/cifar10-jpeg /tmp/q50 --quality 50
    DEEPSTUDY_DATA=/tmp/q50 DEEPSTUDY_CACHE=/tmp/q50-cache deepstudy run cifar-fast --set data.variant=jpeg

(DEEPSTUDY_CACHE apart, so the decoded cache of the shared copy is left alone.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path, help="the cifar10-jpeg folder (train/ and test/ inside)")
    ap.add_argument("out", type=Path, help="a data root to write cifar10-jpeg/ into")
    ap.add_argument("--quality", type=int, default=50)
    ap.add_argument("--subsampling", type=int, default=2, help="PIL's: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0")
    args = ap.parse_args()
    files = sorted(args.source.glob("*/*/*.jpg"))
    if not files:
        print(f"error: no */<class>/*.jpg under {args.source}", file=sys.stderr)
        return 1
    target = args.out / "cifar10-jpeg"
    for f in files:
        dest = target / f.relative_to(args.source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(f) as im:
            im.convert("RGB").save(dest, quality=args.quality, subsampling=args.subsampling)
    print(f"{len(files):,} images re-encoded at quality {args.quality} into {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
