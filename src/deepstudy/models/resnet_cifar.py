"""ResNets for 32x32 CIFAR images.

resnet20/32/56_cifar   He et al. 2015, section 4.2: a 3x3 conv with 16 channels, then three
                       stages of n basic blocks at 16, 32 and 64 channels (32x32, 16x16, 8x8),
                       global average pooling, one linear layer: 6n+2 layers.  Shortcuts are
                       option A by default, as in the paper's CIFAR experiments: identity, and
                       where the shape changes, the input subsampled by 2 and zero-padded with
                       the missing channels (no parameters).  shortcut="B" uses a 1x1 conv + BN
                       projection there instead.  0.27M / 0.46M / 0.85M parameters.
resnet18_cifar         the ImageNet ResNet-18 layout (four stages of two blocks, 64-512 channels)
                       with a 3x3 stride-1 stem and no max-pool, as CIFAR code commonly uses;
                       projection (B) shortcuts.  11.2M parameters.
All of them take `tta` (models/tta.py): in eval mode, the logits averaged over the image and its
mirror image (flip) or airbench's six views; none, the paper's single view, by default.
"""

from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import register_model
from ..config import Size
from .tta import TTA, averaged_logits


class PadShortcut(nn.Module):
    """Option A: subsample by the stride and zero-pad the new channels (no parameters)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride, self.extra = stride, out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        # pad the channel dimension: half the new channels before, half after, as in the paper's code
        return F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a shortcut, ReLU after the sum."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        elif shortcut == "A":
            self.shortcut = PadShortcut(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class ResNetCifar(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, stages: list[tuple[int, int]], stem: int, shortcut: str,
                 tta: str = "none"):
        """stages: (channels, blocks) per stage; every stage after the first halves the image;
        tta: the views averaged in eval mode (models/tta.py)."""
        super().__init__()
        self.tta = tta
        self.stem = nn.Sequential(nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem),
                                  nn.ReLU(inplace=True))
        blocks, c = [], stem
        for i, (out, n) in enumerate(stages):
            for j in range(n):
                blocks.append(BasicBlock(c, out, 2 if (i > 0 and j == 0) else 1, shortcut))
                c = out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")  # He et al.'s init

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x) if self.training else averaged_logits(self.logits, x, self.tta)


def _register_he(depth: int):
    n = (depth - 2) // 6

    @register_model(f"resnet{depth}_cifar")
    def build(in_shape, num_classes, *, width: Size = 16, shortcut: Literal["A", "B"] = "A",
              tta: TTA = "none") -> nn.Module:
        """width: channels of the first stage (16 in the paper; then 2x and 4x);
        shortcut: A (zero-padding identity, the paper's CIFAR choice) or B (1x1 conv projection);
        tta: test-time views, none (the paper's single view), flip or flip_translate (models/tta.py)."""
        return ResNetCifar(in_shape[0], num_classes, [(width, n), (2 * width, n), (4 * width, n)], width, shortcut,
                           tta)
    build.__name__ = f"resnet{depth}_cifar"
    return build


for _depth in (20, 32, 56):
    _register_he(_depth)


@register_model("resnet18_cifar")
def resnet18_cifar(in_shape, num_classes, *, width: Size = 64, tta: TTA = "none") -> nn.Module:
    """width: channels of the first stage (64 as in ResNet-18; then 2x, 4x, 8x);
    tta: test-time views, none, flip or flip_translate (models/tta.py)."""
    return ResNetCifar(in_shape[0], num_classes, [(width, 2), (2 * width, 2), (4 * width, 2), (8 * width, 2)],
                       width, "B", tta)
