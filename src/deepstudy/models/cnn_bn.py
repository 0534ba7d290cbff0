"""The seed's BatchNorm CNN for CIFAR-10: VGG-style blocks of (Conv3x3 -> BN -> ReLU) x n, each
block ending in a 2x2 max-pool, then a fully connected head with dropout.

BatchNorm is what lets this plain stack train at a high learning rate in a few epochs; the
conv biases are dropped because BN's shift makes them redundant.
"""

import torch.nn as nn

from . import register_model
from ..config import Depth, Probability, Size, Sizes


@register_model("cnn_bn")
def cnn_bn(in_shape, num_classes, *, channels: Sizes = (64, 128, 256), convs_per_block: Depth = 2,
           hidden: Size = 256, dropout: Probability = 0.3) -> nn.Module:
    """channels: output channels of each block (each halves the image with a max-pool);
    convs_per_block: Conv-BN-ReLU layers per block; hidden: width of the FC layer before the
    classifier (0: straight to the classifier); dropout: before each FC layer."""
    c, h, w = in_shape
    layers: list[nn.Module] = []
    for out in channels:
        for _ in range(convs_per_block):
            layers += [nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            c = out
        layers.append(nn.MaxPool2d(2))
        h, w = h // 2, w // 2
    layers.append(nn.Flatten())
    width = c * h * w
    if hidden:
        layers += [nn.Dropout(dropout), nn.Linear(width, hidden, bias=False), nn.BatchNorm1d(hidden),
                   nn.ReLU(inplace=True)]
        width = hidden
    layers += [nn.Dropout(dropout), nn.Linear(width, num_classes)]
    return nn.Sequential(*layers)
