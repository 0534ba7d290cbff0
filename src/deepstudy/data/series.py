"""Univariate time series for one-step-ahead forecasting: the airline passengers (or any CSV
with a numeric column) and a noisy sine wave.

A series y_0..y_{N-1} becomes windows: the input for target y_t is the `look_back` values
before it, so the network is trained with back-propagation through at most `look_back` steps
(truncated BPTT).  The periods are contiguous and in time order:

    | train                              | val (the last months before test) | test        |

Targets are split by their time; an input window may reach back into the previous period (a
forecast at the start of the test period uses the months before it, as it would in real life).
Everything learned from data (the scaler) sees the training period only.

Before the network, values go through an invertible transform, fitted on the training period:
    level   z_t = log(y_t) when data.log, else y_t
    change  d_t = z_t - z_{t-lag} for each lag of data.difference in turn (1: month to month,
            12: year to year; 1,12: both, Box and Jenkins' own choice for this series)
    scale   s_t = (d_t - offset) / scale   (minmax: into [0, 1] over the training period; standard)
Predictions are turned back into original units (passengers) before any metric is computed.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

import numpy as np
import torch

from ..config import Amount, Count, Fraction, Size, Sizes, UserPath
from ..errors import ConfigError, DataError
from . import DataContext, register_dataset
from .root import EMBEDDED, packaged_data_allowed

AIRLINE_FILE = Path("airline-passengers") / "airline-passengers.csv"
MIN_TRAIN_WINDOWS = 8  # fewer and there is nothing to learn from: say so rather than train on it


# ------------------------------------------------------------------------------ the transform

@dataclass(frozen=True)
class Transform:
    log: bool
    lags: tuple[int, ...]  # differencing lags, applied in turn; () = none
    offset: float
    scale: float

    @property
    def coefficients(self) -> np.ndarray:
        """c with d_t = sum_j c_j z_{t-j}: the product of the (1 - B^lag) for each lag."""
        c = np.array([1.0])
        for lag in self.lags:
            shifted = np.zeros(len(c) + lag)
            shifted[lag:] = c
            c = np.concatenate([c, np.zeros(lag)]) - shifted
        return c

    @property
    def span(self) -> int:
        """How many earlier levels one change needs (the sum of the lags)."""
        return len(self.coefficients) - 1

    def level(self, y: np.ndarray) -> np.ndarray:
        return np.log(y) if self.log else np.asarray(y, dtype=np.float64)

    def unlevel(self, z: np.ndarray) -> np.ndarray:
        return np.exp(z) if self.log else z

    def encode(self, y: np.ndarray) -> np.ndarray:
        """Original values -> what the network sees (NaN for the first `span` steps)."""
        z = self.level(y)
        c, k = self.coefficients, self.span
        d = np.full_like(z, np.nan)
        d[k:] = sum(c[j] * z[k - j:len(z) - j] for j in range(k + 1))
        return (d - self.offset) / self.scale

    def base(self, z: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The part of level z_t that earlier levels fix: z_t = d_t + base_t.  With a 12-month
        difference base_t = z_{t-12}; with 1 and 12, z_{t-1} + z_{t-12} - z_{t-13}."""
        c = self.coefficients
        t = np.asarray(t)
        return -sum((c[j] * z[t - j] for j in range(1, len(c))), np.zeros(t.shape))

    def decode(self, s: np.ndarray, base: np.ndarray) -> np.ndarray:
        """Network outputs for targets t -> original units, given base_t of each (from actual
        levels for one-step-ahead forecasts, from earlier predictions when free-running)."""
        return self.unlevel(np.asarray(s, dtype=np.float64) * self.scale + self.offset + base)

    def info(self) -> dict:
        return {"log": self.log, "difference": list(self.lags), "offset": self.offset, "scale": self.scale}


def fit_transform(y_train: np.ndarray, log: bool, lags: tuple[int, ...], scaler: str) -> Transform:
    d = Transform(log, lags, 0.0, 1.0).encode(y_train)
    d = d[~np.isnan(d)]
    if scaler == "minmax":  # the seed's MinMaxScaler(feature_range=(0, 1))
        lo, hi = float(d.min()), float(d.max())
        return Transform(log, lags, lo, (hi - lo) or 1.0)
    if scaler == "standard":
        return Transform(log, lags, float(d.mean()), float(d.std()) or 1.0)
    return Transform(log, lags, 0.0, 1.0)


# ------------------------------------------------------------------------------ the data object

@dataclass
class Windows:
    x: torch.Tensor  # N x look_back x features, float32
    y: torch.Tensor  # N x 1, the encoded target
    t: np.ndarray  # the target's position in the series

    def __len__(self) -> int:
        return len(self.t)


@dataclass
class SeriesData:
    """Train/val/test windows of one series, and what is needed to turn outputs back into its
    units.  Provides the four methods the training loop uses (train_batches, eval_batches,
    labels, size), so the same loop trains classifiers and forecasters."""

    name: str
    values: np.ndarray  # the observed series, original units
    times: list[str]  # a label per value (the CSV's date column) or its index
    unit: str
    transform: Transform
    look_back: int
    season: int  # for seasonal features and the seasonal-naive baseline
    seasonal_features: bool
    bounds: dict  # {"val": first val target, "test": first test target, "first": first target}
    source: str
    train: Windows = field(init=False)
    val: Windows = field(init=False)
    test: Windows = field(init=False)
    clean: np.ndarray | None = None  # the noise-free signal of a synthetic series
    noise: dict | None = None  # its noise: {"kind", "factor"}
    note: str = ""

    def __post_init__(self):
        s = self.transform.encode(self.values)
        b = self.bounds
        for split, lo, hi in (("train", b["first"], b["val"]), ("val", b["val"], b["test"]),
                              ("test", b["test"], len(self.values))):
            t = np.arange(lo, hi)
            setattr(self, split, Windows(self.inputs(s, t), torch.tensor(s[t], dtype=torch.float32).view(-1, 1), t))

    # ---- windows
    def features(self, t: np.ndarray) -> np.ndarray:
        """Seasonal position of steps t as (sin, cos): month of year for monthly data."""
        angle = 2 * np.pi * (np.asarray(t) % self.season) / self.season
        return np.stack([np.sin(angle), np.cos(angle)], axis=-1)

    def inputs(self, s: np.ndarray, targets: np.ndarray) -> torch.Tensor:
        """The window of `look_back` encoded values before each target (plus seasonal features)."""
        steps = np.asarray(targets)[:, None] + np.arange(-self.look_back, 0)[None, :]  # N x L
        x = s[steps][..., None]
        if self.seasonal_features:
            x = np.concatenate([x, self.features(steps)], axis=-1)
        return torch.tensor(x, dtype=torch.float32)

    @property
    def in_shape(self) -> tuple[int, int]:
        return (self.look_back, 1 + 2 * self.seasonal_features)

    # ---- what the training loop uses
    def train_batches(self, batch_size: int, generator: torch.Generator, channels_last: bool = False
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.train), generator=generator)
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            yield self.train.x[index], self.train.y[index]

    def eval_batches(self, split: str, batch_size: int, channels_last: bool = False):
        w = getattr(self, split)
        for start in range(0, len(w), batch_size):
            yield w.x[start:start + batch_size], w.y[start:start + batch_size]

    def labels(self, split: str) -> torch.Tensor:
        return getattr(self, split).y

    def size(self, split: str) -> int:
        return len(getattr(self, split))

    def to(self, device) -> "SeriesData":
        for split in ("train", "val", "test"):
            w = getattr(self, split)
            setattr(self, split, Windows(w.x.to(device), w.y.to(device), w.t))
        return self

    # ---- original units
    def actual(self, split: str) -> np.ndarray:
        return self.values[getattr(self, split).t]

    def decode(self, split: str, outputs: torch.Tensor) -> np.ndarray:
        """One-step-ahead network outputs for a split -> forecasts in original units."""
        t = getattr(self, split).t
        base = self.transform.base(self.transform.level(self.values), t)
        return self.transform.decode(outputs.detach().cpu().double().view(-1).numpy(), base)

    def baselines(self, split: str) -> dict[str, np.ndarray]:
        """Forecasts that need no learning, for the same targets: the last value, and the value
        one season (12 months) before."""
        t = getattr(self, split).t

        def shifted(k):  # NaN where the series does not reach back k steps (early training targets)
            return np.where(t >= k, self.values[np.maximum(t - k, 0)], np.nan)
        return {"persistence": shifted(1), "seasonal_naive": shifted(self.season)}

    @torch.no_grad()
    def free_run(self, model: torch.nn.Module, start: int, steps: int) -> np.ndarray:
        """Forecast `steps` values from position `start` on, feeding each forecast back as the
        next input: only values before `start` are ever read."""
        device = next(model.parameters()).device
        n = start + steps
        y = np.concatenate([self.values[:start], np.zeros(max(0, n - start))])[:n]
        z = self.transform.level(np.where(np.arange(n) < start, y, 1.0))
        s = np.full(n, np.nan)
        s[:start] = self.transform.encode(self.values[:start])
        for t in range(start, n):
            out = model(self.inputs(s, np.array([t])).to(device)).item()
            s[t] = out
            y[t] = self.transform.decode(np.array([out]), self.transform.base(z, np.array([t])))[0]
            z[t] = self.transform.level(np.array([y[t]]))[0]
        return y[start:]

    def info(self) -> dict:
        return {
            "name": self.name, "unit": self.unit, "length": len(self.values), "in_shape": list(self.in_shape),
            "look_back": self.look_back, "season": self.season, "seasonal_features": self.seasonal_features,
            "transform": self.transform.info(), "bounds": self.bounds,
            "periods": {s: [self.times[getattr(self, s).t[0]], self.times[getattr(self, s).t[-1]]]
                        for s in ("train", "val", "test")},
            "sizes": {s: len(getattr(self, s)) for s in ("train", "val", "test")},
            "source": self.source, "noise": self.noise, "note": self.note,
        }


def make_series(name: str, values: np.ndarray, times: list[str], unit: str, source: str, *, look_back: int,
                test_fraction: float, n_val: int, season: int, log: bool, difference: tuple[int, ...],
                seasonal_features: bool, scaler: str, clean=None, noise=None, note="") -> SeriesData:
    n = len(values)
    if look_back < 1:
        raise ConfigError(f"data.look_back must be at least 1, got {look_back}")
    if any(lag < 1 for lag in difference) or season < 1:
        raise ConfigError(f"data.difference takes lags of at least 1 step (e.g. 12 or 1,12), got {difference}; "
                          f"data.season must be at least 1")
    if not 0 < test_fraction < 1:
        raise ConfigError(f"data.test_fraction must be between 0 and 1, got {test_fraction}")
    if n_val < 1:
        raise ConfigError("the validation period must hold at least one step (data.val_steps / data.val_fraction)")
    if log and (values <= 0).any():
        raise DataError(f"{source}: data.log needs positive values, but the series has {values.min():g}")
    test = int(n * (1 - test_fraction) + 1e-9)  # the seed's int(len * 0.67): 96 of 144 months
    val = test - n_val
    first = look_back + sum(difference)  # the first target whose window is complete
    if val - first < MIN_TRAIN_WINDOWS or test >= n or val < season:
        raise DataError(f"{source}: the series is too short: {n} values leave {max(0, val - first)} training windows "
                        f"(look_back {look_back}, differencing {list(difference)}), {n_val} validation and {n - test} test "
                        f"steps; need at least {MIN_TRAIN_WINDOWS} training windows and a training period of at "
                        f"least one season ({season} steps)")
    # the scaler and everything else fitted sees the training period only (no validation, no test)
    transform = fit_transform(values[:val], log, tuple(difference), scaler)
    return SeriesData(name, values, times, unit, transform, look_back, season, seasonal_features,
                      {"first": first, "val": val, "test": test}, source, clean=clean, noise=noise, note=note)


# ------------------------------------------------------------------------------ CSV files

def read_csv_column(path: Path, column: str) -> tuple[np.ndarray, list[str], str]:
    """(values, time labels, column name) from a CSV with a header row.  `column` "" takes the
    last column; the time labels come from the first column when it is another one."""
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a CSV file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if any(cell.strip() for cell in r)]
    except FileNotFoundError:
        raise DataError(f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a text CSV file (it does not decode as UTF-8)") from None
    except (OSError, csv.Error) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if not rows:
        raise DataError(f"{path} is empty")
    header = [h.strip() for h in rows[0]]
    if column:
        matches = [i for i, h in enumerate(header) if h == column] or \
                  [i for i, h in enumerate(header) if h.lower() == column.lower()]
        if not matches:
            raise ConfigError(f"{path} has no column {column!r}; its columns: {', '.join(header)} "
                              f"(choose one with --set data.column=NAME)")
        col = matches[0]
    else:
        col = len(header) - 1
    values, times = [], []
    for line, row in enumerate(rows[1:], start=2):
        cell = row[col].strip() if col < len(row) else ""
        try:
            value = float(cell)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise DataError(f"{path}, line {line}: column {header[col]!r} holds {cell!r}, not a number")
        values.append(value)
        times.append(row[0].strip() if col != 0 and row else str(line - 2))
    return np.asarray(values, dtype=np.float64), times, header[col]


def find_airline_csv(csv_option: str, root: Path) -> Path:
    if csv_option:
        path = Path(csv_option).expanduser()
        if not path.exists():
            raise DataError(f"data.csv: no such file: {path}")
        return path
    places = [Path(root) / AIRLINE_FILE] + ([EMBEDDED / AIRLINE_FILE] if packaged_data_allowed(root) else [])
    for place in places:
        if place.is_file():
            return place
    inside = " (nor inside the package)" if len(places) > 1 else \
        " (the copy inside the package serves only when no data root is named)"
    raise DataError(f"airline passengers: {AIRLINE_FILE} not found in the data root {root}{inside}; "
                    f"put it there or point to any CSV with --set data.csv=PATH data.column=NAME")


@register_dataset("airline_passengers")
def airline_passengers(ctx: DataContext, *, csv: UserPath = "", column: str = "", look_back: Size = 1,
                       test_fraction: Fraction = 0.33, val_steps: Size = 12, season: Size = 12, log: bool = False,
                       difference: Sizes = (), seasonal_features: bool = False,
                       scaler: Literal["minmax", "standard", "none"] = "minmax") -> SeriesData:
    """Monthly international airline passengers 1949-1960 (Box & Jenkins), or any CSV: `csv` a
    path (default: the data root's airline-passengers/airline-passengers.csv), `column` the
    numeric column (default: the last).  `val_steps`: months carved from the end of the
    training period for model selection."""
    path = find_airline_csv(csv, ctx.root)
    values, times, name = read_csv_column(path, column)
    data = make_series("airline_passengers" if not csv else path.stem, values, times,
                       "thousand passengers" if not csv else name, str(path),
                       look_back=look_back, test_fraction=test_fraction, n_val=val_steps, season=season, log=log,
                       difference=difference, seasonal_features=seasonal_features, scaler=scaler)
    return data.to(ctx.device)


# ------------------------------------------------------------------------------ the sine wave

def sine_wave(length: int, cycle: int, noise: float, kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean).  `phase` noise is the seed's: sin(2 pi t / cycle + noise * U(-1, 1));
    `additive`: sin(2 pi t / cycle) + noise * U(-1, 1)."""
    rng = np.random.default_rng(seed)
    angle = 2 * np.pi * np.arange(length) / cycle
    u = rng.uniform(-1.0, 1.0, length)
    clean = np.sin(angle)
    return (np.sin(angle + noise * u) if kind == "phase" else clean + noise * u), clean


def best_possible_mse(t: np.ndarray, cycle: int, noise: float, kind: str) -> float:
    """The expected squared error of the best possible forecaster, which knows the clean signal
    and the noise's law: the mean over targets of Var(y_t).  For additive U(-a, a) noise that is
    a^2/3; for phase noise, E sin^2(w + a u) - (sin(w) E cos(a u))^2 with E cos(a u) = sin(a)/a."""
    if noise == 0:
        return 0.0
    if kind == "additive":
        return noise ** 2 / 3
    w = 2 * np.pi * np.asarray(t) / cycle
    sinc1, sinc2 = math.sin(noise) / noise, math.sin(2 * noise) / (2 * noise)
    second_moment = 0.5 - 0.5 * np.cos(2 * w) * sinc2
    return float(np.mean(second_moment - (np.sin(w) * sinc1) ** 2))


@register_dataset("sine")
def sine(ctx: DataContext, *, length: Size = 25001, cycle: Size = 50, noise: Amount = 0.4,
         noise_kind: Literal["phase", "additive"] = "phase", look_back: Size = 10, test_fraction: Fraction = 0.25,
         val_fraction: Fraction = 0.1, seed: Count = 0) -> SeriesData:
    """A noisy sine wave: `length` steps, `cycle` steps per period, `noise` the noise factor
    (the seed's: 500 cycles of 50 steps, phase noise 0.4).  `val_fraction` of the training
    period, at its end, is held out for model selection."""
    if cycle < 2:
        raise ConfigError(f"data.cycle must be at least 2 steps, got {cycle}")
    if noise < 0:
        raise ConfigError(f"data.noise must be >= 0, got {noise}")
    if not 0 < val_fraction < 1:
        raise ConfigError(f"data.val_fraction must be between 0 and 1, got {val_fraction}")
    values, clean = sine_wave(length, cycle, noise, noise_kind, seed)
    n_train = int(length * (1 - test_fraction) + 1e-9)
    data = make_series("sine", values, [str(i) for i in range(length)], "", f"synthetic (data.seed={seed})",
                       look_back=look_back, test_fraction=test_fraction, n_val=max(1, round(n_train * val_fraction)),
                       season=cycle, log=False, difference=(), seasonal_features=False, scaler="none",
                       clean=clean, noise={"kind": noise_kind, "factor": noise, "cycle": cycle})
    return data.to(ctx.device)
