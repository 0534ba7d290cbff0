"""A small VGG-style backbone for 32x32 images, with the transfer-learning seeds' head.

(Conv3x3 -> BN -> ReLU) x convs_per_block -> MaxPool, once per entry of `channels`, then
Flatten -> Dense 256 -> ReLU -> Dropout 0.5 -> Dense n.  It is what the transfer-learning
proof pretrains on 8 CIFAR-10 classes and then transfers to cats vs dogs: VGG16's shape at a
size that two CPU cores can pretrain in well under an hour (VGG16 itself at 150x150 is the
documented full tier, with torchvision's ImageNet weights).
"""

import torch.nn as nn

from ..config import Count, Depth, Probability, Sizes
from . import register_model
from .transfer import Pool, TransferNet


@register_model("vgg_small_cifar")
def vgg_small_cifar(in_shape, num_classes, *, channels: Sizes = (32, 64, 128), convs_per_block: Depth = 2,
                    hidden: Count = 256, dropout: Probability = 0.5, pool: Pool = "flatten") -> TransferNet:
    """channels: output channels of each block (each ends in a 2x2 max-pool); convs_per_block:
    3x3 convolutions per block; hidden, dropout, pool: the head (see models/transfer.py)."""
    c = in_shape[0]
    layers: list[nn.Module] = []
    for width in channels:
        for _ in range(convs_per_block):
            layers += [nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            c = width
        layers.append(nn.MaxPool2d(2))
    return TransferNet(nn.Sequential(*layers), in_shape, num_classes, hidden=hidden, dropout=dropout, pool=pool)
