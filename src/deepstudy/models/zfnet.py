"""ZFNet (Zeiler & Fergus 2013) shaped for 32x32 CIFAR images, as in the seed: five
convolutions, three max-pools, three fully connected layers.

ZFNet is AlexNet with a smaller, denser first layer (7x7 stride 2 instead of 11x11 stride 4:
their visualisations showed the big strided filters aliasing) and wider middle layers.  On
32x32 images the same idea becomes a 5x5 stride-1 first layer; the widths follow ZFNet's
96-256-384-384-256, and BatchNorm (optional, on by default) stands in for the local response
normalisation of the original.
"""

import torch.nn as nn

from . import register_model
from .alexnet import alexnet_like
from ..config import Probability, Sizes


@register_model("zfnet_cifar")
def zfnet_cifar(in_shape, num_classes, *, channels: Sizes = (96, 256, 384, 384, 256),
                hidden: Sizes = (1024, 512), dropout: Probability = 0.5, batch_norm: bool = True) -> nn.Module:
    """channels: the five convolutions' widths (5x5 first, then 3x3); hidden: widths of the two
    hidden FC layers (the third is the classifier); dropout: before each hidden FC layer;
    batch_norm: BN after each convolution (the original used local response normalisation)."""
    if len(hidden) != 2:
        raise ValueError("zfnet_cifar has three FC layers: model.hidden needs two widths")
    return alexnet_like(in_shape, num_classes, channels, (5, 3, 3, 3, 3), tuple(hidden), dropout, batch_norm)
