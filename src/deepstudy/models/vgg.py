"""VGG (Simonyan & Zisserman 2014) shaped for 32x32 CIFAR images: the same stacks of 3x3
convolutions and 2x2 max-pools as configurations A (VGG-11) and D (VGG-16), after which the
image is 1x1, so the 4096-4096 ImageNet head becomes a single linear layer on 512 features
(as in most CIFAR VGGs).  The _bn variants put BatchNorm after every convolution (torchvision's
vgg*_bn); without it, VGG-16 needs a low learning rate and careful initialisation to train.
"""

import torch.nn as nn

from . import register_model
from ..config import Probability, Size

# numbers: a 3x3 conv with that many channels (at width 64); "M": a 2x2 max-pool
PLANS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def vgg_cifar(depth: int, in_shape, num_classes: int, batch_norm: bool, width: int, dropout: float) -> nn.Module:
    c, h, w = in_shape
    layers: list[nn.Module] = []
    for item in PLANS[depth]:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
            continue
        out = item * width // 64
        layers.append(nn.Conv2d(c, out, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.ReLU(inplace=True))
        c = out
    layers += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(c * h * w, num_classes)]
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            # He init: a 13-layer ReLU stack without BN does not train from PyTorch's default
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def _register(depth: int, batch_norm: bool):
    name = f"vgg{depth}{'_bn' if batch_norm else ''}_cifar"

    @register_model(name)
    def build(in_shape, num_classes, *, width: Size = 64, dropout: Probability = 0.0) -> nn.Module:
        """width: channels of the first stage (64 in the paper; the others scale with it);
        dropout: before the classifier."""
        return vgg_cifar(depth, in_shape, num_classes, batch_norm, width, dropout)
    build.__name__ = name
    return build


for _depth in PLANS:
    for _bn in (False, True):
        _register(_depth, _bn)
