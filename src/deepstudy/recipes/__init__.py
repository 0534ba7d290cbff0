"""The catalog.  A recipe is plain frozen data: which dataset, model, optimizer, schedule and
training settings, at which tier, and the numbers it should be compared with (the seed
notebook's and the best published), each with its source.

Tiers: `full` is the recipe's own configuration (the published or seed schedule); `quick`
and `smoke` are overrides on top of it: minutes on a laptop CPU with real data, and seconds on
a small subset for the test suite.

Measured numbers do not live in the code: `measured.json` holds what `tools/record.py`
copied from real run directories, with the tier, hardware and date they came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import config
from ..errors import ConfigError
from ..registry import Registry

TIERS = ("smoke", "quick", "full")
MEASURED_FILE = Path(__file__).with_name("measured.json")


@dataclass(frozen=True)
class Reference:
    """A number to compare with, and where it comes from."""

    value: float | None  # a fraction for accuracies
    source: str
    split: str = "test"  # which split the number is on: a seed notebook may only report training accuracy


@dataclass(frozen=True)
class Recipe:
    name: str
    study: str  # the family it belongs to, for grouping in `deepstudy list`
    description: str
    task: str  # which kind of study it is (tasks/<task>.py): "classification", ...
    config: dict  # {"data": {...}, "model": {...}, "optim": {...}, "schedule": {...}, "train": {...}}
    tiers: dict = field(default_factory=dict)  # tier -> {"dotted.key": value} on top of `config`
    metric: str = "accuracy"  # the headline metric: a key of metrics.json's "test" (or "val") section
    metric_split: str = "test"  # where the headline metric is read: "test", or "val" for language models
    seed: Reference | None = None  # the seed notebook's setting and result
    published: Reference | None = None  # the best published number for a comparable model
    target: dict = field(default_factory=dict)  # tier -> the number the tier must reach (issue's bar)
    default_tier: str = "quick"
    # what a learner sees in this study, in a few words (`deepstudy list` prints it beside the name)
    shows: str = ""

    @property
    def dataset(self) -> str:
        return self.config["data"]["name"]

    @property
    def model(self) -> str:
        return self.config["model"]["name"]

    def raw_config(self, tier: str) -> dict:
        if tier not in TIERS:
            raise ConfigError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")
        return config.merge(self.config, self.tiers.get(tier, {}))


RECIPES: Registry[Recipe] = Registry("recipe", __name__, hint="`deepstudy list` shows the catalog")


def register_recipe(recipe: Recipe) -> Recipe:
    return RECIPES.add(recipe.name, recipe)


def list_recipes(pattern: str = "*") -> list[Recipe]:
    return [RECIPES.get(name) for name in RECIPES.names(pattern)]


def get_recipe(name: str) -> Recipe:
    return RECIPES.get(name)


def measured() -> dict:
    """{recipe: {tier: {...}}} as recorded from real runs."""
    if not MEASURED_FILE.exists():
        return {}
    return json.loads(MEASURED_FILE.read_text(encoding="utf-8"))
