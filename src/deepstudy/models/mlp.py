"""Multi-layer perceptron on flattened images: the seeds' 2-hidden-layer DNN and 3x128 network."""

from typing import Literal

import torch.nn as nn

from . import register_model
from .common import ACTIVATIONS
from ..config import Probability, Sizes


@register_model("mlp")
def mlp(in_shape, num_classes, *, hidden: Sizes = (128, 128, 128),
        activation: Literal["relu", "gelu", "sigmoid", "tanh"] = "relu",
        batch_norm: bool = False, dropout: Probability = 0.0) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    width = 1
    for d in in_shape:
        width *= d
    for h in hidden:
        layers.append(nn.Linear(width, h, bias=not batch_norm))  # BN's shift makes the bias redundant
        if batch_norm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(ACTIVATIONS[activation]())
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)
