"""LeNet-5 (LeCun et al. 1998) as in the seed: three 5x5 convolutions with average pooling,
then FC 84 -> 10.  C1 pads by 2 so 28x28 MNIST behaves like the paper's 32x32 input."""

from typing import Literal

import torch.nn as nn

from . import register_model
from .common import ACTIVATIONS


@register_model("lenet5")
def lenet5(in_shape, num_classes, *, activation: Literal["tanh", "relu", "sigmoid", "gelu"] = "tanh") -> nn.Module:
    c, h, w = in_shape
    act = ACTIVATIONS[activation]
    pad = 2 if h == 28 else 0  # 28x28 -> the 32x32 geometry of the paper; 32x32 inputs as they are
    return nn.Sequential(
        nn.Conv2d(c, 6, 5, padding=pad), act(), nn.AvgPool2d(2),  # C1, S2: 6 @ 14x14
        nn.Conv2d(6, 16, 5), act(), nn.AvgPool2d(2),  # C3, S4: 16 @ 5x5
        nn.Conv2d(16, 120, 5), act(),  # C5: 120 @ 1x1
        nn.Flatten(),
        nn.Linear(120, 84), act(),  # F6
        nn.Linear(84, num_classes),
    )
