"""Transfer learning: a convolutional base (a backbone) with the seeds' classifier head on top.

    TransferNet = base (convolutions) -> pool (none, global average or global max) -> head
    head        = Flatten -> Linear 256 -> ReLU -> Dropout 0.5 -> Linear n      (the seeds' head)

The bases of torchvision's vgg16, vgg16_bn, resnet18, resnet50 and mobilenet_v3_small are
registered here as models (their own classifiers dropped, the seeds' head in their place), so
they train like any other model; their submodules keep torchvision's names, so torchvision's
ImageNet state dicts load into them unchanged (models/weights.py finds them).  Any deepstudy
model that is an nn.Sequential with a Flatten (cnn_simple, ...) serves as a backbone too: its
layers before the Flatten are the base (`as_transfer_net`); so does one with a `transfer_base()`
method that returns its base (fastnet_cifar).

Freezing works on "units", what Keras calls layers: a convolution with its BatchNorm and
activation, a pooling layer, or a whole residual / inverted-residual block.  `unfreeze=15` on
vgg16 trains its last 15 of 18 units, as the seed's `layers[:-15]` does.  Frozen units stay in
eval mode while the rest trains, so their BatchNorm statistics never move.
"""

from __future__ import annotations

import typing
from collections import OrderedDict
from typing import Literal

import torch
import torch.nn as nn

from ..config import Count, Probability
from ..errors import ConfigError
from . import register_model

Pool = Literal["flatten", "avg", "max"]  # Keras applications' pooling=None/"avg"/"max"
POOLS = typing.get_args(Pool)


def seed_head(in_features: int, num_classes: int, hidden: int = 256, dropout: float = 0.5) -> nn.Sequential:
    """Flatten -> Dense 256 -> ReLU -> Dropout 0.5 -> Dense n.  A two-class task keeps two
    logits: softmax over (a, b) is sigmoid(a - b), so it is the seed's one sigmoid unit with BCE
    and the same code serves every class count (and the confusion matrix, per-class report)."""
    if hidden:
        return nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(inplace=True),
                             nn.Dropout(dropout), nn.Linear(hidden, num_classes))
    return nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(in_features, num_classes))


class TransferNet(nn.Module):
    def __init__(self, base: nn.Module, in_shape, num_classes: int, *, hidden: int = 256, dropout: float = 0.5,
                 pool: str = "flatten"):
        super().__init__()
        if pool not in POOLS:
            raise ConfigError(f"model.pool expects one of {', '.join(POOLS)}, got {pool!r}")
        self.base = base
        # Why a separate pool: what the head reads is what feature extraction caches
        self.pool = {"avg": nn.AdaptiveAvgPool2d(1), "max": nn.AdaptiveMaxPool2d(1)}.get(pool, nn.Identity())
        with torch.no_grad():
            was = base.training
            base.eval()
            shape = self.pool(base(torch.zeros(1, *in_shape))).shape[1:]
            base.train(was)
        self.feature_shape = tuple(shape)
        self.head = seed_head(int(torch.tensor(shape).prod()), num_classes, hidden, dropout)
        self._frozen: list[nn.Module] = []

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the head reads: the base's output (globally averaged or maxed when pool=avg/max)."""
        return self.pool(self.base(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    # ------------------------------------------------------------------ freezing

    def units(self) -> list[nn.Module]:
        return base_units(self.base)

    def freeze(self, unfreeze_last: int = 0) -> None:
        """Freeze the base except its last `unfreeze_last` units; the head always trains."""
        units = self.units()
        if not 0 <= unfreeze_last <= len(units):
            raise ConfigError(f"transfer.unfreeze={unfreeze_last}: this backbone has {len(units)} layers/blocks "
                              f"that can be unfrozen (0-{len(units)})")
        frozen = units[:len(units) - unfreeze_last]
        for p in self.base.parameters():
            p.requires_grad_(False)
        for unit in units[len(units) - unfreeze_last:]:
            for p in unit.parameters():
                p.requires_grad_(True)
        for p in self.head.parameters():
            p.requires_grad_(True)
        self._frozen = frozen
        self.train(self.training)

    def unfreeze_all(self) -> None:
        for p in self.parameters():
            p.requires_grad_(True)
        self._frozen = []

    def train(self, mode: bool = True):
        super().train(mode)
        # A frozen unit computes what it computed when the backbone was trained: BatchNorm uses
        # (and never updates) its running statistics, dropout is off.
        for unit in self._frozen:
            unit.eval()
        return self

    def param_groups(self, base_lr: float, head_lr: float) -> list[dict]:
        """Trainable parameters only, the backbone's and the head's at their own rates."""
        base = [p for p in self.base.parameters() if p.requires_grad]
        head = [p for p in self.head.parameters() if p.requires_grad]
        return [g for g in ({"params": base, "lr": base_lr}, {"params": head, "lr": head_lr}) if g["params"]]


def base_units(base: nn.Module) -> list[nn.Module]:
    """The base's layers in Keras's sense, in order.  A convolution, linear or pooling layer
    starts a unit; BatchNorm, activations and dropout join the unit before them; a block with
    its own children (a residual block) is one unit; plain containers are walked into."""
    units: list[list[nn.Module]] = []
    starts = (nn.Conv2d, nn.Linear, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)

    def walk(module: nn.Module):
        for child in module.children():
            leaf = not list(child.children())
            if not leaf and not isinstance(child, nn.Sequential):
                units.append([child])  # a block
            elif not leaf:
                walk(child)  # a container (torchvision's Conv2dNormActivation is a Sequential too)
            elif isinstance(child, starts) or not units:
                units.append([child])
            else:
                units[-1].append(child)

    walk(base)
    # wrapped so that callers can ask a unit for its parameters and switch its mode at once
    return [u[0] if len(u) == 1 else _Unit(u) for u in units]


class _Unit(nn.Module):
    """A view of a few sibling modules as one (not registered anywhere: no new parameters)."""

    def __init__(self, modules: list[nn.Module]):
        super().__init__()
        self.parts = nn.ModuleList(modules)


# ------------------------------------------------------------------ deepstudy models as backbones

def split_base(model: nn.Module) -> nn.Module:
    """The convolutional base of a deepstudy model: `.base` of a TransferNet, else the layers of
    an nn.Sequential before its first Flatten (their indices kept, so a saved state dict's keys
    still match)."""
    if isinstance(model, TransferNet):
        return model.base
    if hasattr(model, "transfer_base"):  # a model that says where its base ends (fastnet_cifar)
        return model.transfer_base()
    if isinstance(model, nn.Sequential):
        layers = OrderedDict()
        for name, layer in model.named_children():
            if isinstance(layer, nn.Flatten):
                if not layers:
                    break
                return nn.Sequential(layers)
            layers[name] = layer
    raise ConfigError(f"{type(model).__name__} cannot serve as a backbone: expected a TransferNet, a model with "
                      f"a transfer_base() method or an nn.Sequential whose convolutional layers come before a Flatten")


def as_transfer_net(model: nn.Module, in_shape, num_classes: int, *, hidden: int = 256, dropout: float = 0.5,
                    pool: str = "flatten") -> TransferNet:
    """`model`'s base with a new seed head (a TransferNet's own head is replaced)."""
    return TransferNet(split_base(model), in_shape, num_classes, hidden=hidden, dropout=dropout, pool=pool)


def build_transfer_model(model_cfg: dict, in_shape, num_classes: int, pool: str = "flatten") -> TransferNet:
    """The model a transfer run trains: a registered TransferNet as it is (its pooling is its
    own `model.pool`), any other registered model's base under a new seed head with `pool`."""
    from . import create_model

    model = create_model(model_cfg["name"], in_shape, num_classes, **{k: v for k, v in model_cfg.items() if k != "name"})
    if isinstance(model, TransferNet):
        if pool != "flatten":
            raise ConfigError(f"transfer.pool is for backbones that are not transfer models; "
                              f"{model_cfg['name']} takes model.pool={pool}")
        return model
    return as_transfer_net(model, in_shape, num_classes, pool=pool)


# ------------------------------------------------------------------ torchvision backbones

def _vgg_base(batch_norm: bool) -> nn.Module:
    # Why not torchvision.models.vgg16(): it also builds the 120M-parameter classifier we drop,
    # seconds of initialisation for nothing.  make_layers is what VGG itself calls; the loop
    # below is VGG's own initialisation of the same layers.
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["D"], batch_norm=batch_norm)
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return nn.Sequential(OrderedDict(features=features))  # keys "features.N.*", as torchvision's


def _resnet_base(name: str) -> nn.Module:
    import torchvision

    net = torchvision.models.get_model(name, weights=None)
    parts = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
    return nn.Sequential(OrderedDict((k, getattr(net, k)) for k in parts))  # torchvision's key names


def _mobilenet_base(name: str) -> nn.Module:
    import torchvision

    net = torchvision.models.get_model(name, weights=None)
    return nn.Sequential(OrderedDict(features=net.features))


TORCHVISION_BASES = {
    "vgg16": lambda: _vgg_base(False),
    "vgg16_bn": lambda: _vgg_base(True),
    "resnet18": lambda: _resnet_base("resnet18"),
    "resnet50": lambda: _resnet_base("resnet50"),
    "mobilenet_v3_small": lambda: _mobilenet_base("mobilenet_v3_small"),
}


def _register(name: str):
    def build(in_shape, num_classes, *, hidden: Count = 256, dropout: Probability = 0.5, pool: Pool = "flatten") -> TransferNet:
        """torchvision's convolutional base with the seeds' head.  hidden: width of the head's
        Dense layer (0: none); dropout: before the last layer; pool: flatten (the seeds'), avg or max
        (global average or max pooling first: far fewer head weights on big inputs)."""
        return TransferNet(TORCHVISION_BASES[name](), in_shape, num_classes, hidden=hidden, dropout=dropout, pool=pool)

    build.__name__ = name
    register_model(name)(build)


for _name in TORCHVISION_BASES:
    _register(_name)


def l2sp_penalty(model: TransferNet, alpha: float):
    """L2-SP (Li, Grandvalet and Davoine 2018, "Explicit inductive bias for transfer learning"):
    alpha/2 * ||w - w0||^2 over the base's trainable weights, w0 their values now (the
    pretrained ones).  Returns the penalty as a function of no arguments, for fit(penalty=...)."""
    params = [p for p in model.base.parameters() if p.requires_grad]
    start = [p.detach().clone() for p in params]

    def penalty() -> torch.Tensor:
        return alpha / 2 * sum(((p - p0) ** 2).sum() for p, p0 in zip(params, start))

    return penalty
