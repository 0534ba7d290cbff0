"""Optimizers and schedules: the learning rate follows the curve each schedule promises."""

import math

import pytest
import torch

from deepstudy.config import OptimConfig, ScheduleConfig
from deepstudy.errors import ConfigError
from deepstudy.train.optim import make_optimizer, make_scheduler


def lrs(schedule: dict, steps_per_epoch=10, epochs=5, lr=0.1, scores=None):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = make_optimizer([p], OptimConfig(name="sgd", lr=lr))
    sched, interval = make_scheduler(opt, ScheduleConfig(**schedule), steps_per_epoch, epochs)
    out = []
    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            if sched is not None and interval == "step":
                sched.step()
        if sched is not None and interval == "epoch":
            sched.step(scores[epoch])
    return out, interval


@pytest.mark.parametrize("name, cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                       ("adamw", torch.optim.AdamW), ("rmsprop", torch.optim.RMSprop)])
def test_optimizers(name, cls):
    opt = make_optimizer([torch.nn.Parameter(torch.zeros(1))],
                         OptimConfig(name=name, lr=0.01, weight_decay=1e-4, nesterov=name == "sgd"))
    assert isinstance(opt, cls)
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[0]["weight_decay"] == 1e-4


def test_constant():
    out, _ = lrs({"name": "none"})
    assert set(out) == {0.1}


def test_step_decays_every_step_size_epochs():
    out, _ = lrs({"name": "step", "step_size": 2, "gamma": 0.1})
    assert out[0] == pytest.approx(0.1) and out[19] == pytest.approx(0.1)
    assert out[20] == pytest.approx(0.01) and out[40] == pytest.approx(0.001)


def test_multistep():
    out, _ = lrs({"name": "multistep", "milestones": (1, 3), "gamma": 0.5})
    assert out[9] == pytest.approx(0.1) and out[10] == pytest.approx(0.05) and out[30] == pytest.approx(0.025)


def test_cosine_is_smooth_and_ends_near_min_lr():
    out, interval = lrs({"name": "cosine", "min_lr": 0.001})
    assert interval == "step"
    assert out[0] == pytest.approx(0.1)
    assert out[25] == pytest.approx(0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * 25 / 50)) / 2)
    assert all(a >= b for a, b in zip(out, out[1:]))


def test_warmup_then_cosine():
    out, _ = lrs({"name": "cosine", "warmup_epochs": 1})
    assert out[0] == pytest.approx(0.001)  # lr/100
    assert all(a < b for a, b in zip(out[:10], out[1:11]))
    assert out[10] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(out[10:], out[11:]))


def test_warmup_from_a_chosen_start_then_linear_decay_to_min_lr():
    # airbench's triangle: from 0.2 lr up to lr over the warm-up, then a straight line down to min_lr
    out, _ = lrs({"name": "linear", "warmup_epochs": 1, "warmup_start": 0.2, "min_lr": 0.007})
    assert out[0] == pytest.approx(0.02)
    assert out[5] == pytest.approx(0.1 * (0.2 + 0.8 * 5 / 10))
    assert out[10] == pytest.approx(0.1)
    assert out[30] == pytest.approx(0.1 + (0.007 - 0.1) * 20 / 40)
    steps = [b - a for a, b in zip(out[10:], out[11:])]
    assert steps == pytest.approx([steps[0]] * len(steps))  # a straight line
    assert out[-1] == pytest.approx(0.1 + (0.007 - 0.1) * 39 / 40)


def test_onecycle_rises_then_falls():
    out, _ = lrs({"name": "onecycle", "pct_start": 0.3})
    peak = max(range(len(out)), key=out.__getitem__)
    assert out[peak] == pytest.approx(0.1) and 10 <= peak <= 20
    assert out[0] < 0.01 and out[-1] < 1e-3


def test_plateau_decays_after_patience_without_improvement():
    out, interval = lrs({"name": "plateau", "patience": 1, "factor": 0.5}, scores=[1.0, 0.9, 0.95, 0.96, 0.97])
    assert interval == "epoch"
    per_epoch = out[::10]
    assert per_epoch[:3] == [0.1, 0.1, 0.1] and per_epoch[4] == pytest.approx(0.05)


def test_conflicting_schedule_settings_are_refused():
    with pytest.raises(ConfigError, match="plateau"):
        lrs({"name": "plateau", "warmup_epochs": 1}, scores=[0] * 5)
    with pytest.raises(ConfigError, match="onecycle"):
        lrs({"name": "onecycle", "warmup_epochs": 1})
