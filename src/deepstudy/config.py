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
import codecs
import re
import dataclasses
import difflib
import inspect
import math
import os
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal

from .errors import ConfigError

SECTIONS = ("data", "model", "optim", "schedule", "train")
OPTIONAL_SECTIONS = ("transfer",)  # only in recipes whose config has them
ALL_SECTIONS = SECTIONS + OPTIONAL_SECTIONS


@dataclass(frozen=True)
class OptimConfig:
    name: Literal["sgd", "adam", "adamw", "rmsprop"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # SGD and RMSprop only
    nesterov: bool = False  # SGD only
    weight_decay: float = 0.0
    betas: tuple[float, ...] = (0.9, 0.999)  # Adam and AdamW only

    def __post_init__(self):
        _at_least("optim.lr", self.lr, 0)  # 0 is allowed: a frozen model, as some tests use
        _within("optim.momentum", self.momentum, 0, 1)
        _at_least("optim.weight_decay", self.weight_decay, 0)
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {_show(self.betas)}")


@dataclass(frozen=True)
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

    def __post_init__(self):
        _at_least("schedule.warmup_epochs", self.warmup_epochs, 0)
        _within("schedule.warmup_start", self.warmup_start, 0, 1, low_open=True)
        _at_least("schedule.step_size", self.step_size, 1)
        if any(m < 1 for m in self.milestones) or list(self.milestones) != sorted(set(self.milestones)):
            raise ConfigError(f"schedule.milestones must be increasing epochs from 1, got {_show(self.milestones)}")
        _above("schedule.gamma", self.gamma, 0)
        _at_least("schedule.min_lr", self.min_lr, 0)
        _within("schedule.pct_start", self.pct_start, 0, 1, low_open=True, high_open=True)
        _within("schedule.factor", self.factor, 0, 1, low_open=True, high_open=True)
        _at_least("schedule.patience", self.patience, 0)
        if self.warmup_epochs and self.name == "plateau":
            raise ConfigError("schedule.warmup_epochs cannot be combined with schedule.name=plateau")
        if self.warmup_epochs and self.name == "onecycle":
            raise ConfigError("schedule.name=onecycle has its own warm-up (schedule.pct_start); drop schedule.warmup_epochs")


@dataclass(frozen=True)
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
    # airbench's lookahead (train/lookahead.py): every N optimizer steps the weights are pulled
    # back towards a slow average of themselves, more strongly as the run ends; 0 = off
    lookahead: int = 0
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    early_stop: int = 0  # patience in epochs on `monitor`; 0 = off
    monitor: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    device: str = "auto"  # auto = CUDA when present, else CPU
    max_minutes: float = 0.0  # stop after the epoch that crosses this wall-clock budget; 0 = off
    # bf16: matrix products and convolutions in bfloat16 under torch.autocast, weights and
    # optimizer in float32 (faster where the hardware has bf16; on CPUs without native bf16
    # it is emulated and far slower: benchmarks/bf16_steps.py measures both).
    # auto: bf16 where the device computes it natively (GPUs with bf16, CPUs with AVX-512 BF16
    # or AMX), else fp32; a run's config.json records which it took
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    # CPU compute threads: 0 = auto, as many as cores that other work leaves free at the start
    # (one for the NumPy recipes and the tiny forecasters, whatever the cores); N = N
    threads: int = 0
    # TensorBoard event files in RUN_DIR/tensorboard/, every epoch's history row (train/tensorboard.py);
    # needs the `tensorboard` extra, checked with the rest of the configuration (tasks.base.resolve)
    tensorboard: bool = False
    # false: each epoch's validation sees one view of every image, and only the kept weights are
    # validated again (and tested) with the model's test-time views (model.tta): airbench's
    # practice, since six views cost six forward passes and the choice of epoch hardly needs them.
    # history.csv then holds the one-view numbers, metrics.json the views' ones
    tta_every_epoch: bool = True

    def __post_init__(self):
        _at_least("train.epochs", self.epochs, 1)
        _at_least("train.batch_size", self.batch_size, 1)
        _at_least("train.eval_batch_size", self.eval_batch_size, 1)
        _within("train.label_smoothing", self.label_smoothing, 0, 1, high_open=True)
        if self.mixup < 0:
            raise ConfigError(f"train.mixup={self.mixup:g}: mixup needs a classification task and an alpha >= 0")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"train.ema={self.ema:g}: the moving average's decay must be in [0, 1)")
        _at_least("train.lookahead", self.lookahead, 0)
        _at_least("train.grad_clip", self.grad_clip, 0)
        _at_least("train.early_stop", self.early_stop, 0)
        _at_least("train.max_minutes", self.max_minutes, 0)
        if not 0 <= self.threads <= MAX_THREADS:
            raise ConfigError(f"train.threads must be 0 (auto: the cores other work leaves free) or a count up "
                              f"to {MAX_THREADS}, got {self.threads}")
        _within("train.seed", self.seed, 0, 2**32 - 1)  # NumPy's seeds are 32-bit
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device):
            raise ConfigError(f"train.device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")


@dataclass(frozen=True)
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

    def __post_init__(self):
        if self.l2sp < 0:
            raise ConfigError(f"transfer.l2sp={self.l2sp:g}: the penalty's weight must be >= 0")
        if self.views < 1:
            raise ConfigError(f"transfer.views must be at least 1, got {self.views}")
        _at_least("transfer.unfreeze", self.unfreeze, 0)
        _at_least("transfer.finetune_epochs", self.finetune_epochs, 0)
        _above("transfer.finetune_lr", self.finetune_lr, 0)
        _at_least("transfer.head_lr", self.head_lr, 0)


def _show(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else f"{value:g}" if isinstance(value, float) else str(value)


def _finite(key: str, value) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number, got {_show(value)}")


def _at_least(key: str, value, low) -> None:
    _finite(key, value)
    if value < low:
        raise ConfigError(f"{key} must be at least {low}, got {_show(value)}")


def _above(key: str, value, low) -> None:
    _finite(key, value)
    if value <= low:
        raise ConfigError(f"{key} must be above {low}, got {_show(value)}")


def _within(key: str, value, low, high, low_open: bool = False, high_open: bool = False) -> None:
    _finite(key, value)
    if (value <= low if low_open else value < low) or (value >= high if high_open else value > high):
        raise ConfigError(f"{key} must be in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}, "
                          f"got {_show(value)}")


MAX_THREADS = 1024  # far above any CPU's cores: more is a typo that would start that many threads

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


class Rule:
    """What an option's value must satisfy beyond its type, written in its annotation
    (`Annotated[float, Range(0, 1)]`) and checked when the configuration is resolved."""

    def holds(self, value) -> bool:
        raise NotImplementedError

    def convert(self, value):
        """The value as stored, once it holds (a rule may normalise it: Absolute)."""
        return value


@dataclass(frozen=True)
class Range(Rule):
    """A bound on a builder option's value, checked when the configuration is resolved (before
    any data is read): `val_fraction: Annotated[float, Range(0, 1, high_open=True)]`."""
    low: float
    high: float = math.inf
    high_open: bool = False

    def __str__(self) -> str:
        return f"at least {self.low:g}" if self.high == math.inf else \
            f"in [{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def holds(self, value) -> bool:
        return math.isfinite(value) and self.low <= value and (value < self.high if self.high_open else value <= self.high)


Fraction = Annotated[float, Range(0, 1, high_open=True)]  # a share of a split: 0 <= x < 1
Share = Annotated[float, Range(0, 1)]  # a share that may be all: 0 <= x <= 1
Count = Annotated[int, Range(0, 2**31 - 1)]  # 0 or more
# Upper bounds catch a slip of the keyboard (99999999999999999999) before torch overflows or
# allocates for minutes; a size that merely does not fit in memory is refused when it is allocated.
Size = Annotated[int, Range(1, 2**24)]  # a width, a length, a count: 1 or more
Depth = Annotated[int, Range(1, 1000)]  # layers, convolutions per block
Sizes = tuple[Size, ...]  # layer widths: each 1 or more
Probability = Annotated[float, Range(0, 1, high_open=True)]  # dropout: 1 would drop everything
Amount = Annotated[float, Range(0)]  # a magnitude (degrees of rotation, noise, a scale): 0 or more


@dataclass(frozen=True)
class TextEncoding(Rule):
    """`auto` or the name of a text encoding Python knows (utf-8, cp1252, latin-1, utf-16, ...):
    a misspelt name is refused with the other options, before the file is read."""

    def __str__(self) -> str:
        return "naming a text encoding (auto, utf-8, cp1252, latin-1, ...)"

    def holds(self, value) -> bool:
        if value == "auto":
            return True
        try:  # not base64_codec, zlib_codec, ... (bytes to bytes), nor "undefined" (refuses everything)
            return codecs.lookup(value)._is_text_encoding and bool(b"text".decode(value))
        except (LookupError, UnicodeError):  # and not a name that is not even text (a lone surrogate)
            return False


Encoding = Annotated[str, TextEncoding()]  # auto: UTF-8 with or without a byte-order mark


@dataclass(frozen=True)
class Absolute(Rule):
    """A path the user names, made absolute (and ~ expanded) when the options are resolved, in the
    folder the command ran from.  WHY: config.json records it, and `eval`, `--from` and `--resume`
    from another folder must find the same file; "" (not given) stays "".  Any string holds."""

    def holds(self, value) -> bool:
        return True

    def convert(self, value: str) -> str:
        return os.path.abspath(os.path.expanduser(value)) if value else value


UserPath = Annotated[str, Absolute()]  # data.path, data.csv, ...: a file or folder of the user's


def builder_options(fn: Callable) -> dict[str, Option]:
    """The user-settable options of a registered builder: its keyword-only parameters."""
    hints = typing.get_type_hints(fn, include_extras=True)
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
    if origin is Annotated:
        base, *extras = typing.get_args(tp)
        return " ".join([describe(base), *(str(e) for e in extras if isinstance(e, Rule))])
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    if _is_optional(tp):
        return describe(_non_none(tp)) + " or none"
    if origin in (tuple, list):
        inner = typing.get_args(tp)[0] if typing.get_args(tp) else str
        base, *extras = typing.get_args(inner) if typing.get_origin(inner) is Annotated else (inner,)
        plural = {int: "integers", float: "numbers", str: "strings", bool: "true/false values"}.get(base, str(base))
        bounds = "".join(f", each {e}" for e in extras if isinstance(e, Rule))
        return f"a comma-separated list of {plural}{bounds} (e.g. 256,128)"
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
    if typing.get_origin(tp) is Annotated:
        base, *extras = typing.get_args(tp)
        value = _coerce(value, base)
        rules = [e for e in extras if isinstance(e, Rule)]
        if not all(r.holds(value) for r in rules):
            raise ValueError
        for r in rules:
            value = r.convert(value)
        return value
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
        number = float(value)
        if not math.isfinite(number):  # nan or inf is never a setting: it would only surface as NaN losses
            raise ValueError
        return number
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


FILE_KEYS = ("recipe", "tier")  # what a settings file may say besides the dotted options


def read_settings_file(path) -> dict[str, Any]:
    """A settings file for `deepstudy run --config FILE`: TOML (YAML too, when PyYAML is
    installed) whose keys are the dotted options, as tables or dotted keys,

        recipe = "lenet5-mnist"      # optional: NAME on the command line may then be left out
        tier = "quick"               # optional
        [train]
        epochs = 5
        [model]
        hidden = [256, 128]

    Returns {"train.epochs": 5, ..., "recipe": ..., "tier": ...}; the values are checked with
    the recipe's options when the run resolves them (an unknown key lists the valid ones)."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--config {path}: no such file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as e:
        raise ConfigError(f"--config {path}: not a readable UTF-8 text file ({type(e).__name__})") from None
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"--config {path}: YAML needs PyYAML (pip install pyyaml); or write the file in TOML") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"--config {path}: not valid YAML ({' '.join(str(e).split())})") from None
        data = {} if data is None else data
    else:
        import tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"--config {path}: not valid TOML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected tables of settings such as [train] epochs = 5")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in FILE_KEYS:
            if not isinstance(value, str):
                raise ConfigError(f"--config {path}: {key} must be a string, got {value!r}")
            out[key] = value
        elif isinstance(value, dict) and key in ALL_SECTIONS:
            for name, inner in _dotted(value):
                out[f"{key}.{name}"] = inner
        else:
            raise ConfigError(f"--config {path}: {key!r} is not a section; the file holds "
                              + ", ".join(f"[{s}]" for s in ALL_SECTIONS) + " and " + " / ".join(FILE_KEYS))
    return out


def _dotted(table: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """A nested table as dotted names: {"a": {"b": 1}} -> [("a.b", 1)] (TOML's dotted keys nest)."""
    pairs = []
    for key, value in table.items():
        if isinstance(value, dict):
            pairs += _dotted(value, f"{prefix}{key}.")
        else:
            pairs.append((f"{prefix}{key}", value))
    return pairs


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


@dataclass(frozen=True)
class Choice:
    """A dataset or a model: its registered name and the options of its builder."""

    name: str
    options: types.MappingProxyType = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))

    def as_dict(self) -> dict:
        return {"name": self.name, **self.options}


@dataclass(frozen=True)
class RunConfig:
    """Every setting of a run, typed and checked: `cfg.train.epochs`, `cfg.model.options["hidden"]`.
    Frozen: a run's settings are decided once, before any work; a variant is made with
    `cfg.replace(train={"epochs": 3})`."""

    data: Choice
    model: Choice
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    train: TrainConfig = TrainConfig()
    transfer: TransferConfig | None = None

    def as_dict(self) -> dict:
        """The nested {section: {key: value}} form that config.json holds."""
        out = {"data": self.data.as_dict(), "model": self.model.as_dict()}
        for section in ("optim", "schedule", "train", "transfer"):
            value = getattr(self, section)
            if value is not None:
                out[section] = dataclasses.asdict(value)
        return out

    def replace(self, **sections: dict) -> "RunConfig":
        """A copy with some values changed: replace(train={"epochs": 3}, optim={"lr": 1e-5})."""
        changes = {}
        for section, values in sections.items():
            current = getattr(self, section)
            if isinstance(current, Choice):
                changes[section] = Choice(current.name, types.MappingProxyType({**current.options, **values}))
            else:
                changes[section] = dataclasses.replace(current, **values)
        return dataclasses.replace(self, **changes)


def resolve(raw: dict, data_options: Callable[[str], dict[str, Option]],
            model_options: Callable[[str], dict[str, Option]]) -> RunConfig:
    """Turn a raw nested config (recipe + tier + user overrides) into a typed, checked RunConfig."""
    sections = {}
    for section in ("data", "model"):
        name = raw[section].get("name")
        lookup = data_options if section == "data" else model_options
        opts = lookup(name)  # raises ConfigError for an unknown name
        values = resolve_section(section, raw[section], opts, f"{section} {name!r}")
        sections[section] = Choice(name, types.MappingProxyType(values))
    for section, cls in FIXED_SECTIONS.items():
        sections[section] = cls(**resolve_section(section, raw.get(section, {}), dataclass_options(cls), section))
    for section, cls in OPTIONAL_CLASSES.items():
        if section in raw:
            sections[section] = cls(**resolve_section(section, raw[section], dataclass_options(cls), section))
    return RunConfig(**sections)


def flat(cfg: "dict | RunConfig") -> dict[str, Any]:
    """{"optim": {"lr": 0.1}} (or a RunConfig) -> {"optim.lr": 0.1}"""
    if isinstance(cfg, RunConfig):
        cfg = cfg.as_dict()
    return {f"{s}.{k}": v for s, sec in cfg.items() if s in ALL_SECTIONS for k, v in sec.items()}
