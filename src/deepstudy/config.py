"""Typed options: every setting of a run is a dotted key (`optim.lr`, `model.hidden`), with a
type and a default, so a typo or a wrong value is a clear error instead of a silent no-op.

A run's configuration has five sections.  `optim`, `schedule` and `train` are fixed and
described by the dataclasses below.  A recipe may add an optional section of its own kind
(`transfer` for transfer learning): it exists only in the recipes whose config names it.  `data` and `model` depend on the dataset and model
chosen: their options are the keyword-only parameters of the registered builder function
(`def lenet5(in_shape, num_classes, *, activation: str = "tanh")`), so adding an option to a
model is adding a parameter, nothing else.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Literal

from .errors import ConfigError

SECTIONS = ("data", "model", "optim", "schedule", "train")
OPTIONAL_SECTIONS = ("transfer",)  # only in recipes whose config has them
ALL_SECTIONS = SECTIONS + OPTIONAL_SECTIONS


@dataclass
class OptimConfig:
    name: Literal["sgd", "adam", "adamw", "rmsprop"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # SGD and RMSprop only
    nesterov: bool = False  # SGD only
    weight_decay: float = 0.0
    betas: tuple[float, ...] = (0.9, 0.999)  # Adam and AdamW only


@dataclass
class ScheduleConfig:
    name: Literal["none", "step", "multistep", "cosine", "linear", "onecycle", "plateau"] = "none"
    warmup_epochs: float = 0.0  # linear warm-up from lr * warmup_start, before any schedule but plateau
    warmup_start: float = 0.01  # the warm-up's first learning rate, as a fraction of optim.lr
    step_size: int = 10  # step: epochs between decays
    milestones: tuple[int, ...] = ()  # multistep: epochs at which to decay
    gamma: float = 0.1  # step / multistep: decay factor
    min_lr: float = 0.0  # cosine, linear: final learning rate
    pct_start: float = 0.25  # onecycle: fraction of the run spent rising to optim.lr
    factor: float = 0.1  # plateau: decay factor
    patience: int = 2  # plateau: epochs without improvement before decaying


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    eval_batch_size: int = 1000
    seed: int = 0
    label_smoothing: float = 0.0
    # mixup (Zhang et al. 2018): each batch blended with a shuffled copy of itself, weight
    # lam ~ Beta(mixup, mixup), the loss blended alike; 0 = off.  A regulariser for small data
    mixup: float = 0.0
    # an exponential moving average of the weights, updated after every step with this decay
    # (0 = off): validation, the best checkpoint and the test set see the average.  It smooths
    # the step-to-step noise of small batches; 1 / (1 - ema) steps is its memory
    ema: float = 0.0
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    early_stop: int = 0  # patience in epochs on `monitor`; 0 = off
    monitor: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    device: str = "auto"  # auto = CUDA when present, else CPU
    max_minutes: float = 0.0  # stop after the epoch that crosses this wall-clock budget; 0 = off
    # bf16: matrix products and convolutions in bfloat16 under torch.autocast, weights and
    # optimizer in float32 (on an AVX-512 BF16 CPU an LSTM step runs ~1.7x faster, a
    # fastnet_cifar step ~2x; on CPUs without native bf16 it is emulated and far slower).
    # auto: bf16 where the device computes it natively (GPUs with bf16, CPUs with AVX-512 BF16
    # or AMX), else fp32; a run's config.json records which it took
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    # CPU compute threads: 0 = auto, as many as cores that other work leaves free at the start
    # (one for the NumPy recipes and the tiny forecasters, whatever the cores); N = N
    threads: int = 0


@dataclass
class TransferConfig:
    """How a pretrained backbone is used (tasks/transfer.py).  The head stage (and `scratch`)
    trains with optim.*, schedule.* and train.*; fine-tuning adds the finetune_* settings."""

    mode: Literal["scratch", "features", "finetune"] = "features"
    # imagenet (torch hub cache, else torchvision's download) | none (random) |
    # PATH: a state dict (.pth/.pt), a .safetensors file, or a deepstudy run directory
    weights: str = "imagenet"
    views: int = 1  # training-set views cached as features: 1 = as they are; K > 1 adds K-1 augmented copies
    unfreeze: int = 3  # fine-tuning: backbone layers/blocks trained, counted from the end
    finetune_epochs: int = 10
    finetune_lr: float = 1e-5  # the backbone's learning rate while fine-tuning
    head_lr: float = 0.0  # the head's learning rate while fine-tuning; 0 = finetune_lr
    # fine-tuning: alpha of L2-SP (Li et al. 2018), a penalty alpha/2 * ||w - w0||^2 that pulls
    # the base's trained weights toward the pretrained ones w0 (plain weight decay pulls them
    # toward zero, i.e. away from what was transferred); 0 = off
    l2sp: float = 0.0
    # what the head reads from a backbone that is not a transfer model itself (fastnet_cifar,
    # cnn_simple, ...): the base's output flattened (the seeds'), or globally averaged or maxed;
    # the torchvision backbones and vgg_small_cifar take model.pool instead
    pool: Literal["flatten", "avg", "max"] = "flatten"


FIXED_SECTIONS = {"optim": OptimConfig, "schedule": ScheduleConfig, "train": TrainConfig}
OPTIONAL_CLASSES = {"transfer": TransferConfig}


@dataclass(frozen=True)
class Option:
    name: str
    type: Any
    default: Any


def dataclass_options(cls) -> dict[str, Option]:
    hints = typing.get_type_hints(cls)
    return {f.name: Option(f.name, hints[f.name], f.default) for f in dataclasses.fields(cls)}


def builder_options(fn: Callable) -> dict[str, Option]:
    """The user-settable options of a registered builder: its keyword-only parameters."""
    hints = typing.get_type_hints(fn)
    opts = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind is inspect.Parameter.KEYWORD_ONLY:
            if p.default is inspect.Parameter.empty:
                raise TypeError(f"{fn.__name__}: option {p.name} needs a default")
            opts[p.name] = Option(p.name, hints.get(p.name, type(p.default)), p.default)
    return opts


# --------------------------------------------------------------------------- coercion

def describe(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    if _is_optional(tp):
        return describe(_non_none(tp)) + " or none"
    if origin in (tuple, list):
        inner = typing.get_args(tp)[0] if typing.get_args(tp) else str
        plural = {int: "integers", float: "numbers", str: "strings", bool: "true/false values"}.get(inner, str(inner))
        return f"a comma-separated list of {plural} (e.g. 256,128)"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def _is_optional(tp) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def _non_none(tp):
    return next(a for a in typing.get_args(tp) if a is not type(None))


def coerce(key: str, value: Any, tp) -> Any:
    """Turn `value` (a CLI string or a Python value) into type `tp`, or raise ConfigError."""
    try:
        return _coerce(value, tp)
    except (ValueError, TypeError, SyntaxError):
        raise ConfigError(f"option {key} expects {describe(tp)}, got {value!r}") from None


def _coerce(value, tp):
    if _is_optional(tp):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
            return None
        return _coerce(value, _non_none(tp))
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if isinstance(value, str):
            value = value.strip()
        if value not in choices:
            raise ValueError
        return value
    if origin in (tuple, list):
        inner = typing.get_args(tp)[0] if typing.get_args(tp) else str
        if isinstance(value, str):
            text = value.strip()
            if text.startswith(("[", "(")):
                value = ast.literal_eval(text)
            else:
                value = [v for v in text.split(",") if v.strip()] if text else []
        if not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(_coerce(v, inner) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("false", "no", "0", "off"):
            return False
        raise ValueError
    if tp is int:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        return int(value.strip()) if isinstance(value, str) else int(value)
    if tp is float:
        if isinstance(value, bool):
            raise TypeError
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise TypeError
        return value
    return value


# --------------------------------------------------------------------------- resolution

def unknown_key_error(section: str, key: str, valid: typing.Iterable[str], what: str) -> ConfigError:
    valid = sorted(valid)
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {section}.{close[0]}?)" if close else ""
    listing = ", ".join(f"{section}.{v}" for v in valid) or "none"
    return ConfigError(f"unknown option {section}.{key} for {what}{hint}; valid: {listing}")


def parse_assignments(pairs: typing.Iterable[str]) -> dict[str, str]:
    """`["optim.lr=0.01", "model.hidden=256,128"]` -> {"optim.lr": "0.01", ...}."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        if "." not in key or key.split(".", 1)[0] not in ALL_SECTIONS:
            raise ConfigError(f"--set key {key!r} must start with one of: " + ", ".join(f"{s}." for s in ALL_SECTIONS))
        out[key] = value
    return out


def merge(base: dict, overrides: dict[str, Any]) -> dict:
    """Apply dotted overrides to a nested {section: {key: value}} dict (returns a new dict)."""
    out = {s: dict(base.get(s, {})) for s in SECTIONS}
    out.update({s: dict(base[s]) for s in OPTIONAL_SECTIONS if s in base})
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        if section in OPTIONAL_SECTIONS and section not in out and key:
            raise ConfigError(f"option {dotted}: {section}.* options apply only to recipes with a {section} "
                              f"section (`deepstudy list` shows them)")
        if section not in ALL_SECTIONS or not key:
            raise ConfigError(f"option {dotted!r} must start with one of: " + ", ".join(f"{s}." for s in SECTIONS))
        out[section][key] = value
    return out


def resolve_section(section: str, values: dict, options: dict[str, Option], what: str) -> dict:
    """Check every key against `options`, coerce its value, and fill in defaults."""
    out = {}
    for key, value in values.items():
        if key == "name" and section in ("data", "model"):
            continue
        if key not in options:
            raise unknown_key_error(section, key, options, what)
        out[key] = coerce(f"{section}.{key}", value, options[key].type)
    for key, opt in options.items():
        out.setdefault(key, opt.default)
    return out


def resolve(raw: dict, data_options: Callable[[str], dict[str, Option]],
            model_options: Callable[[str], dict[str, Option]]) -> dict:
    """Turn a raw nested config (recipe + tier + user overrides) into a fully typed one."""
    cfg = {}
    for section in ("data", "model"):
        name = raw[section].get("name")
        lookup = data_options if section == "data" else model_options
        opts = lookup(name)  # raises ConfigError for an unknown name
        cfg[section] = {"name": name, **resolve_section(section, raw[section], opts, f"{section} {name!r}")}
    for section, cls in FIXED_SECTIONS.items():
        cfg[section] = resolve_section(section, raw.get(section, {}), dataclass_options(cls), section)
    for section, cls in OPTIONAL_CLASSES.items():
        if section in raw:
            cfg[section] = resolve_section(section, raw[section], dataclass_options(cls), section)
    return cfg


def flat(cfg: dict) -> dict[str, Any]:
    """{"optim": {"lr": 0.1}} -> {"optim.lr": 0.1}"""
    return {f"{s}.{k}": v for s, sec in cfg.items() if s in ALL_SECTIONS for k, v in sec.items()}
