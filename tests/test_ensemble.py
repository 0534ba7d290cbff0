"""models/ensemble.py and the loop's side of it: members trained as if alone, averaged when they predict."""

import json
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from deepstudy import api
from deepstudy.config import TrainConfig
from deepstudy.models import create_model
from deepstudy.models.ensemble import Ensemble
from deepstudy.data.text import TokenBatch
from deepstudy.train.loop import Supervised


def questions(vocab=50, batch=6, length=7):
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, length + 1, (batch,), generator=g)
    ids = torch.randint(2, vocab, (batch, length), generator=g)
    ids[torch.arange(length) >= lengths.unsqueeze(1)] = 0
    return TokenBatch(ids, lengths)


def test_one_member_is_the_plain_net():
    # members=1 builds no wrapper: the weights keep their names, so earlier runs still load
    plain = create_model("text_cnn", (50,), 6)
    assert not isinstance(plain, Ensemble) and "embed.weight" in plain.state_dict()


def test_members_start_apart_and_eval_averages_their_probabilities():
    torch.manual_seed(0)
    model = create_model("text_cnn", (50,), 6, members=3, embed_dim=16, maps=8)
    single = create_model("text_cnn", (50,), 6, embed_dim=16, maps=8)
    assert sum(p.numel() for p in model.parameters()) == 3 * sum(p.numel() for p in single.parameters())
    a, b = model.members[0].embed.weight, model.members[1].embed.weight
    assert not torch.equal(a, b)
    x = questions()
    model.train()
    stacked = model(x)
    assert stacked.shape == (3, 6, 6)
    model.eval()
    out = model(x)
    assert out.shape == (6, 6)
    mean = torch.stack([F.softmax(m(x), dim=-1) for m in model.members]).mean(0)
    torch.testing.assert_close(out.exp(), mean)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(6))


@pytest.mark.parametrize("mixup", [0.0, 0.4])
def test_each_member_gets_the_gradient_it_would_get_alone(mixup):
    # the loop's loss for the ensemble = the sum of the members' own losses: each member's
    # gradient must equal the one its loss alone gives it (torch autograd, member by member)
    torch.manual_seed(0)
    members = [nn.Linear(5, 3) for _ in range(3)]
    model = Ensemble(members).train()
    objective = Supervised(model, None, TrainConfig(mixup=mixup, label_smoothing=0.1))
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    loss, sums = objective.loss(model, (x, y), torch.Generator().manual_seed(1))
    loss.backward()
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    g = torch.Generator().manual_seed(1)
    if mixup:  # the same blend the loop drew, from a generator in the same state
        from deepstudy.train.loop import mix
        x, y2, lam = mix(x, y, mixup, g)
    alone_losses = []
    for member in members:
        copy = nn.Linear(5, 3)
        copy.load_state_dict(member.state_dict())
        out = copy(x)
        alone = criterion(out, y) if not mixup else lam * criterion(out, y) + (1 - lam) * criterion(out, y2)
        alone.backward()
        alone_losses.append(alone.item())
        torch.testing.assert_close(member.weight.grad, copy.weight.grad)
        torch.testing.assert_close(member.bias.grad, copy.bias.grad)
    # the reported loss is the members' mean (summed over the batch), not their sum
    assert math.isclose(sums["loss"].item() / 8, sum(alone_losses) / 3, rel_tol=1e-5)


def test_an_ensemble_recipe_trains_predicts_and_reloads(tmp_path, capsys):
    from conftest import make_trec
    from deepstudy.cli import main

    make_trec(tmp_path / "data")
    r = api.run("trec-cnn", tier="smoke", data_dir=tmp_path / "data", out=tmp_path / "run", progress=False,
                log=lambda _: None, options={"model.members": 2})
    assert r.metrics["test"]["accuracy"] > 0.5  # 6 classes: chance is 1/6
    assert 0 < r.history[-1]["train_loss"] < math.log(6) + 1  # a mean of members' losses, not a sum
    # the saved ensemble reloads and predicts as one classifier, with probabilities that sum to 1
    capsys.readouterr()
    assert main(["predict", str(r.run_dir), "Who wrote Hamlet ?", "--json", "--top", "6"]) == 0
    item = json.loads(capsys.readouterr().out)
    assert sum(t["probability"] for t in item["top"]) == pytest.approx(1, abs=1e-4)
    assert main(["eval", str(r.run_dir), "--data-dir", str(tmp_path / "data")]) == 0
    assert f"accuracy {100 * r.metrics['test']['accuracy']:.2f}%" in capsys.readouterr().out
