"""Pretrained weights for a TransferNet's base, from wherever they are:

    --weights PATH      a state dict (.pth / .pt, read with torch.load(weights_only=True)) or a
                        .safetensors file
    imagenet            torchvision's ImageNet weights: the torch hub cache first
                        ($TORCH_HOME/hub/checkpoints/, as torchvision itself looks), then
                        torchvision's download when the network is there
    none                random initialisation (training from scratch, smoke tests)

(A deepstudy run directory, or `recipe:NAME`, is resolved by the transfer task, tasks/transfer.py:
models know nothing of run directories.)

A state dict may hold a whole torchvision model (its classifier is ignored), only the base, or
a deepstudy TransferNet ("base.*" keys).  Missing weights never fail silently: offline and not
in the cache, the error names the file, the folder to put it in and the address to get it from.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.root import downloads_allowed
from ..errors import ConfigError, UserError
from ..io import torch_load_safely
from .transfer import TORCHVISION_BASES, TransferNet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsError(UserError):
    """Pretrained weights that are missing, unreadable or do not fit the backbone."""


@dataclass
class Pretrained:
    source: str  # what was loaded, for config.json and the log
    mean: tuple[float, ...] | None = None  # the normalisation the backbone was trained with (None: unknown)
    std: tuple[float, ...] | None = None


def hub_checkpoint(name: str) -> tuple[Path, str]:
    """Where torchvision keeps `name`'s default ImageNet weights, and where it downloads them from."""
    from torchvision.models import get_model_weights

    weights = get_model_weights(name).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name, weights.url


@dataclass
class Located:
    kind: str  # none | hub (a file in the torch hub cache) | download | file
    path: Path | None = None
    url: str = ""


def _not_found(name: str, path: Path, url: str, reason: str) -> WeightsError:
    return WeightsError(
        f"ImageNet weights for {name} not found: expected {path.name} in {path.parent} (the torch hub cache; "
        f"$TORCH_HOME moves it) and {reason}; download {url} into that folder, or pass --weights PATH "
        f"(a .pth state dict, a .safetensors file or a deepstudy run directory)")


def locate(model_cfg: dict, spec: str) -> Located:
    """Where `spec`'s weights are, without reading them: called before any data is loaded, so a
    missing file is reported at once."""
    name = model_cfg["name"]
    spec = (spec or "none").strip()
    if spec == "none":
        return Located("none")
    if spec == "imagenet":
        if name not in TORCHVISION_BASES:
            raise ConfigError(f"model {name} has no ImageNet weights; pass --weights with a run directory or a "
                              f"weights file of this model, or --set transfer.weights=none to start from random")
        path, url = hub_checkpoint(name)
        if path.is_file():
            return Located("hub", path, url)
        if downloads_allowed():
            return Located("download", path, url)
        raise _not_found(name, path, url, "downloading is off (DEEPSTUDY_OFFLINE is set)")
    path = Path(spec).expanduser()
    if path.is_file():
        return Located("file", path)
    raise WeightsError(f"--weights {spec}: no such file or folder; give a state dict (.pth), a .safetensors file "
                       f"or a deepstudy run directory" + (", or 'imagenet'" if name in TORCHVISION_BASES else ""))


def load_pretrained(model: TransferNet, model_cfg: dict, spec: str, log=print) -> Pretrained:
    """Load `spec` into `model.base` (see the module's docstring) and say what was loaded."""
    name = model_cfg["name"]
    where = locate(model_cfg, spec)
    if where.kind == "none":
        return Pretrained("random initialisation")
    if where.kind == "file":
        n = load_base_state(model, read_state_dict(where.path), str(where.path))
        imagenet = name in TORCHVISION_BASES  # torchvision's weights files are ImageNet-trained
        log(f"loaded {n} backbone tensors from {where.path}" + (" (normalising with ImageNet statistics)" if imagenet else ""))
        return Pretrained(str(where.path), *((IMAGENET_MEAN, IMAGENET_STD) if imagenet else (None, None)))
    if where.kind == "hub":
        state, source = read_state_dict(where.path), str(where.path)
    else:
        from torchvision.models import get_model_weights

        log(f"{name}: ImageNet weights not in {where.path.parent}; downloading {where.url}")
        try:
            # torchvision's own download: into the same hub cache, with its hash check
            state = get_model_weights(name).DEFAULT.get_state_dict(progress=True, check_hash=True)
        except Exception as e:  # any network failure ends in the clear message
            first = str(e).splitlines()[0] if str(e) else ""
            raise _not_found(name, where.path, where.url, f"the download failed ({type(e).__name__}: {first})") from None
        source = where.url
    n = load_base_state(model, state, source)
    log(f"loaded ImageNet weights for {name} ({n} tensors) from {source}")
    return Pretrained(source, IMAGENET_MEAN, IMAGENET_STD)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A .safetensors file or a torch state dict, never unpickling code."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise WeightsError(f"{path}: not a readable .safetensors file ({e})") from None
    try:
        state = torch_load_safely(path)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"{path}: not a state dict that can be read safely ({first}); save one with "
                           f"torch.save(model.state_dict(), path) or safetensors") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # a training checkpoint that wraps the weights
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: holds a {type(state).__name__}, not a state dict of tensors")
    return state


def load_base_state(model: TransferNet, state: dict[str, torch.Tensor], source: str) -> int:
    """Copy the base's tensors out of `state` (extra keys such as a classifier are ignored);
    every tensor of the base must be there with its shape.  Returns how many were loaded."""
    if any(k.startswith("base.") for k in state):
        state = {k[5:]: v for k, v in state.items() if k.startswith("base.")}
    own = model.base.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise WeightsError(f"{source} does not hold this backbone's weights: {len(missing)} of {len(own)} tensors "
                           f"missing (e.g. {', '.join(missing[:3])}); is it a state dict of the same model?")
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items() if state[k].shape != v.shape]
    if wrong:
        raise WeightsError(f"{source}: {len(wrong)} tensors have the wrong shape for this backbone "
                           f"(e.g. {wrong[0]}); were they saved from another model or other options?")
    model.base.load_state_dict({k: state[k] for k in own})
    return len(own)
