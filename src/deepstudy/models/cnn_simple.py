"""The seeds' MNIST / Fashion-MNIST CNN: (Conv -> [BN] -> ReLU -> MaxPool) x N -> FC -> FC."""

import torch.nn as nn

from . import register_model
from ..config import Depth, Probability, Size, Sizes


@register_model("cnn_simple")
def cnn_simple(in_shape, num_classes, *, channels: Sizes = (32, 64), kernel_size: Size = 3,
               convs_per_block: Depth = 1, hidden: Size = 128, batch_norm: bool = False,
               dropout: Probability = 0.0, block_dropout: Probability = 0.0) -> nn.Module:
    """channels: output channels of each block (each block ends in a 2x2 max-pool);
    convs_per_block: 2 gives VGG-style Conv-Conv-Pool blocks;
    hidden: width of the FC layer before the classifier (0: none);
    dropout: before each FC layer; block_dropout: after each pooling block (Keras style; on a
    CPU it costs about as much time as the BatchNorm, since a mask is drawn per activation)."""
    c, h, w = in_shape
    layers: list[nn.Module] = []
    for out in channels:
        for _ in range(convs_per_block):
            # 'same' padding keeps the arithmetic of the feature-map size to the pools alone
            layers.append(nn.Conv2d(c, out, kernel_size, padding=kernel_size // 2, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            c = out
        layers.append(nn.MaxPool2d(2))
        h, w = h // 2, w // 2
        if block_dropout:
            layers.append(nn.Dropout(block_dropout))
    layers.append(nn.Flatten())
    width = c * h * w
    if hidden:
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
        width = hidden
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)
