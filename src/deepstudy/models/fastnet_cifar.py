"""fastnet_cifar: a speed-oriented CIFAR net in the style of airbench (Keller Jordan 2024,
github.com/KellerJordan/cifar10-airbench, itself after tysam-code's hlb-CIFAR10 and David Page's
DAWNBench ResNet), sized for the recipe `cifar-fast` on a 2-core CPU.

    patch whitening: 2x2 conv with fixed filters, then GELU                      3 -> 24 channels
    per width w:  conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU   (64, 256, 256)
    global max-pool -> linear (no bias) -> x 1/9

Eight layers (the fixed whitening conv, six 3x3 convs, a linear head), no skip connections,
about 2 million parameters and 0.47 GFLOPs (0.24 G multiply-adds) per image.
In eval mode the logits are averaged over flipped (and shifted) copies of the input (`tta`),
so validation, test and `deepstudy predict` all see the same function.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import register_model
from ..config import Amount, Count, Share, Sizes
from .tta import TTA, averaged_logits


class PatchWhitening(nn.Module):
    """A k x k conv whose filters are fixed to whiten the k x k pixel patches of the training
    images (each eigenvector of the patch covariance over sqrt(its eigenvalue), and its negative,
    so that the GELU after it keeps both signs).  Only the bias is learned.

    WHY: the first layer then starts with decorrelated, unit-variance features instead of having
    to learn them; airbench measured this as one of its largest speed-ups.

    The filters are fitted once, before the first step: by the training loop on clean
    (unaugmented) training images when the model asks for it (FastNet.init_from_data), else
    lazily on the first training batch the layer sees (a batch of 1,024 CIFAR images holds a
    million patches for a 12 x 12 covariance), so the model needs no data at construction.
    `fitted` is saved with the weights, so a resumed or reloaded model never refits.
    """

    def __init__(self, in_channels: int, kernel_size: int = 2, eps: float = 5e-4):
        super().__init__()
        n = in_channels * kernel_size * kernel_size
        self.eps = eps
        self.register_buffer("weight", torch.zeros(2 * n, in_channels, kernel_size, kernel_size))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.bias = nn.Parameter(torch.zeros(2 * n))
        self._known_fitted = False  # cache of `fitted`, so a step does not read it back from a GPU
        self.register_load_state_dict_post_hook(lambda module, keys: setattr(module, "_known_fitted", False))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        c, k = self.weight.shape[1], self.weight.shape[2]
        with torch.autocast(x.device.type, enabled=False):
            patches = x.float().unfold(2, k, 1).unfold(3, k, 1)  # N x C x H' x W' x k x k
            patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)
            covariance = patches.T @ patches / len(patches)
            eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
            filters = eigenvectors.T.reshape(-1, c, k, k) / torch.sqrt(eigenvalues + self.eps).view(-1, 1, 1, 1)
        self.weight.copy_(torch.cat([filters, -filters]))
        self.fitted.fill_(True)
        self._known_fitted = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._known_fitted:
            self._known_fitted = bool(self.fitted)
            if self.training and not self._known_fitted:
                self.fit(x)
        return F.conv2d(x, self.weight, self.bias)


class ShiftOnlyBatchNorm(nn.BatchNorm2d):
    """BatchNorm with its scale fixed at 1 and a learned shift.

    WHY no scale: a ReLU-like activation after BN does not need one, and fixing it removes
    parameters that SGD with weight decay handles badly (airbench).
    WHY the shift is stored divided by `bias_scale`: under SGD that multiplies its effective
    learning rate by bias_scale**2 without a second parameter group (airbench's 64x for BN biases,
    weight decay per step unchanged), so any optimizer from the catalog trains it as intended.
    """

    def __init__(self, channels: int, momentum: float, bias_scale: float):
        # WHY eps 1e-12: with the scale fixed, eps only guards against 0/0
        super().__init__(channels, eps=1e-12, momentum=momentum, affine=False)
        self.shift = nn.Parameter(torch.zeros(channels))
        self.bias_scale = bias_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, None, self.shift * self.bias_scale,
                            self.training, self.momentum, self.eps)


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    # WHY: the first c_in filters start as the identity, so every conv starts close to a
    # pass-through: the implicit residual that lets a plain 7-layer stack train this fast
    nn.init.dirac_(conv.weight.data[:min(c_in, c_out)])
    return conv


class ConvGroup(nn.Module):
    def __init__(self, c_in: int, c_out: int, activation: type[nn.Module], bn_momentum: float, bias_scale: float):
        super().__init__()
        self.conv1 = conv3x3(c_in, c_out)
        self.norm1 = ShiftOnlyBatchNorm(c_out, bn_momentum, bias_scale)
        self.conv2 = conv3x3(c_out, c_out)
        self.norm2 = ShiftOnlyBatchNorm(c_out, bn_momentum, bias_scale)
        self.act = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # WHY pool straight after the first conv, before BN: BN and GELU then run on a quarter
        # of the pixels
        x = self.act(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return self.act(self.norm2(self.conv2(x)))


class FastNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, widths: tuple[int, ...], activation: type[nn.Module],
                 bn_momentum: float, bias_scale: float, logit_scale: float, tta: str, whiten_fit: str = "clean",
                 whiten_bias_epochs: int = 0):
        super().__init__()
        self.whiten_fit = whiten_fit
        self.whiten_bias_epochs = whiten_bias_epochs
        self.whiten = PatchWhitening(in_channels)
        self.act = activation()
        groups, c = [], self.whiten.weight.shape[0]
        for w in widths:
            groups.append(ConvGroup(c, w, activation, bn_momentum, bias_scale))
            c = w
        self.groups = nn.Sequential(*groups)
        self.head = nn.Linear(c, num_classes, bias=False)
        self.logit_scale = logit_scale
        self.tta = tta

    def init_from_data(self, x: torch.Tensor) -> None:
        """Called by the training loop before the first step with clean, normalised training
        images (data.eval_batches: no augmentation).  WHY fit the whitening on these rather than
        on the first augmented batch: the shifted batch's zero-filled borders and mirrored copies
        are not what test images look like, and on the JPEG copy they skewed 5 of the 12 whitened
        directions to a standard deviation of 0.6-0.85 (airbench too fits on 5,000 clean images)."""
        if self.whiten_fit == "clean" and not bool(self.whiten.fitted):
            self.whiten.fit(x)

    def start_epoch(self, epoch: int) -> None:
        """Called by the training loop before each epoch (1, 2, ...).  WHY freeze the whitening
        bias after a few epochs (airbench: 3): it is the only learned part of the stem, and once
        the net has settled it only adds noise; frozen, the optimizer skips it (its grad stays None).
        The toggle changes which parameters get gradients, which DistributedDataParallel (torchrun)
        does not allow mid-run: there, leave whiten_bias_epochs at 0."""
        if self.whiten_bias_epochs:
            self.whiten.bias.requires_grad_(epoch <= self.whiten_bias_epochs)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.groups(self.act(self.whiten(x)))
        x = F.adaptive_max_pool2d(x, 1).flatten(1)
        # WHY scale the logits down: with label smoothing, small initial logits keep the first
        # steps from saturating the softmax (airbench's 1/9)
        return self.head(x) * self.logit_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.logits(x)
        # WHY test-time augmentation: the net was trained on flipped and shifted images; averaging
        # its logits over such views of each test image is worth several tenths of a point
        return averaged_logits(self.logits, x, self.tta)

    def transfer_base(self) -> nn.Sequential:
        """The convolutional base for transfer learning (models/transfer.py): the whitening stem
        and the conv groups, sharing this net's modules and keeping its state-dict names, so a
        trained fastnet's weights load into a TransferNet's base as they are."""
        return nn.Sequential(OrderedDict(whiten=self.whiten, act=self.act, groups=self.groups))


_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


@register_model("fastnet_cifar")
def fastnet_cifar(in_shape, num_classes, *, widths: Sizes = (64, 256, 256),
                  activation: Literal["gelu", "relu"] = "gelu", bn_momentum: Share = 0.4, bias_scale: Amount = 8.0,
                  logit_scale: Amount = 1 / 9, tta: TTA = "flip",
                  whiten_fit: Literal["clean", "first_batch"] = "clean", whiten_bias_epochs: Count = 0) -> nn.Module:
    """widths: output channels of each conv group (each halves the resolution);
    activation: gelu (airbench's choice) or relu (no faster here: 2.34 s against 2.18 s per bf16
    step of 1,024 images on 2 cores);
    bn_momentum: PyTorch's BatchNorm momentum (WHY 0.4, not 0.1: with ~50 steps an epoch the
    running statistics must keep up with fast-moving weights);
    bias_scale: BN shifts are trained as if their learning rate were bias_scale**2 larger;
    logit_scale: multiplies the output logits;
    tta: in eval mode, average the logits over the image and its mirror image (flip), plus
    one-pixel shifts of both (flip_translate: 6 views; models/tta.py);
    whiten_fit: what the patch whitening is fitted on, clean training images handed over by the
    training loop (up to 5,000) or the first augmented training batch (what cifar8-fast was
    measured with);
    whiten_bias_epochs: train the whitening stem's bias for this many epochs, then freeze it
    (airbench: 3; 0 = never frozen)."""
    return FastNet(in_shape[0], num_classes, tuple(widths), _ACTIVATIONS[activation], bn_momentum, bias_scale,
                   logit_scale, tta, whiten_fit, whiten_bias_epochs)
