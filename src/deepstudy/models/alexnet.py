"""AlexNet (Krizhevsky et al. 2012) shaped for 32x32 CIFAR images: five convolutions, three
max-pools, a fully connected head with dropout 0.5.  No ImageNet stem: the 11x11 stride-4
first layer would shrink a 32x32 image to nothing, so the first layers are 5x5/3x3, stride 1.

alexnet_mini    the seed's small version: 5 conv (3x3), 3 max-pool, 2 FC of 1024, dropout 0.5
alexnet_cifar   AlexNet's channel plan (64-192-384-256-256, as in torchvision's AlexNet) with
                5x5 kernels in the first two layers and two FC layers of 4096: ~36M parameters
                for 50k images, which is why the seed's 100 Adam epochs overfit.
"""

import torch.nn as nn

from . import register_model
from ..config import Probability, Size, Sizes


def _features(in_channels: int, channels, kernels, pool_after, batch_norm: bool) -> tuple[nn.Sequential, int, int]:
    """Conv -> [BN] -> ReLU for each layer, a 2x2 max-pool after the layers listed in
    pool_after.  Returns (layers, output channels, how many times the image was halved)."""
    layers, c, halvings = [], in_channels, 0
    for i, (out, k) in enumerate(zip(channels, kernels)):
        layers.append(nn.Conv2d(c, out, k, padding=k // 2, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.ReLU(inplace=True))
        if i in pool_after:
            layers.append(nn.MaxPool2d(2))
            halvings += 1
        c = out
    return nn.Sequential(*layers), c, halvings


def _head(width: int, hidden: tuple[int, ...], num_classes: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    for h in hidden:
        layers += [nn.Dropout(dropout), nn.Linear(width, h), nn.ReLU(inplace=True)]
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def alexnet_like(in_shape, num_classes, channels, kernels, hidden, dropout, batch_norm) -> nn.Module:
    if len(channels) != 5 or len(kernels) != 5:
        raise ValueError("AlexNet has five convolutions: channels and kernels need five values each")
    c, h, w = in_shape
    # pools after conv1, conv2 and conv5, as in AlexNet
    features, out, halvings = _features(c, channels, kernels, pool_after=(0, 1, 4), batch_norm=batch_norm)
    size = (h >> halvings) * (w >> halvings)
    return nn.Sequential(features, _head(out * size, hidden, num_classes, dropout))


@register_model("alexnet_mini")
def alexnet_mini(in_shape, num_classes, *, channels: Sizes = (64, 128, 256, 256, 128),
                 hidden: Size = 1024, dropout: Probability = 0.5, batch_norm: bool = False) -> nn.Module:
    """channels: the five convolutions' widths (3x3 kernels); hidden: width of the two FC
    layers; dropout: before each FC layer; batch_norm: BN after each convolution (not in the
    seed; trains in far fewer epochs)."""
    return alexnet_like(in_shape, num_classes, channels, (3, 3, 3, 3, 3), (hidden, hidden), dropout, batch_norm)


@register_model("alexnet_cifar")
def alexnet_cifar(in_shape, num_classes, *, channels: Sizes = (64, 192, 384, 256, 256),
                  hidden: Size = 4096, dropout: Probability = 0.5, batch_norm: bool = False) -> nn.Module:
    """channels: the five convolutions' widths (5x5, 5x5, then 3x3 kernels); hidden: width of
    the two FC layers; dropout: before each FC layer; batch_norm: BN after each convolution."""
    return alexnet_like(in_shape, num_classes, channels, (5, 5, 3, 3, 3), (hidden, hidden), dropout, batch_norm)
