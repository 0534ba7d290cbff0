"""Transfer learning: pretrained weights from local files and run directories, the offline
missing-weights message, freezing (parameters and BatchNorm statistics), cached features equal
to recomputed ones, and whole runs on an image folder down to `deepstudy predict`.

No test downloads anything: the weight files are real torchvision models, randomly
initialised here and saved the two ways people save them (torch state dict, safetensors)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from deepstudy import cli
from deepstudy.config import resolve as resolve_config
from deepstudy.data import ClassificationData
from deepstudy.data.features import cached_features, compute_features
from deepstudy.data.folders import seed_augment
from deepstudy.data.tensors import ImageTensors, Normalize
from deepstudy.models import create_model
from deepstudy.models.transfer import TransferNet, l2sp_penalty
from deepstudy.models.weights import WeightsError, hub_checkpoint, load_pretrained
from deepstudy.train.loop import Paths, fit


def quiet(msg):
    pass


def torchvision_resnet18():
    import torchvision

    torch.manual_seed(1)
    return torchvision.models.resnet18(weights=None)  # a real model, random weights: nothing downloaded


def assert_base_equals(model: TransferNet, reference: torch.nn.Module):
    theirs = reference.state_dict()
    for key, value in model.base.state_dict().items():
        assert torch.equal(value, theirs[key]), key


@pytest.fixture(scope="module")
def resnet_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("weights")
    ref = torchvision_resnet18()
    torch.save(ref.state_dict(), d / "resnet18.pth")
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(d / "resnet18.safetensors"))
    return ref, d


@pytest.mark.parametrize("name", ["resnet18.pth", "resnet18.safetensors"])
def test_weights_from_a_local_file(resnet_files, name):
    ref, d = resnet_files
    model = create_model("resnet18", (3, 32, 32), 2)
    got = load_pretrained(model, {"name": "resnet18"}, str(d / name), log=quiet)
    assert_base_equals(model, ref)  # every weight and BatchNorm statistic, from torchvision's key names
    assert got.mean == (0.485, 0.456, 0.406)  # torchvision weights: ImageNet normalisation


def test_weights_from_the_torch_hub_cache(resnet_files, tmp_path, monkeypatch):
    ref, d = resnet_files
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path, url = hub_checkpoint("resnet18")
    assert path.parent == tmp_path / "torch" / "hub" / "checkpoints" and path.name == url.rsplit("/", 1)[1]
    path.parent.mkdir(parents=True)
    path.write_bytes((d / "resnet18.pth").read_bytes())  # where torchvision's own download would leave it
    model = create_model("resnet18", (3, 32, 32), 2)
    got = load_pretrained(model, {"name": "resnet18"}, "imagenet", log=quiet)
    assert got.source == str(path)
    assert_base_equals(model, ref)


def test_offline_and_missing_weights_say_which_file_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    model = create_model("resnet18", (3, 32, 32), 2)
    with pytest.raises(WeightsError) as e:
        load_pretrained(model, {"name": "resnet18"}, "imagenet", log=quiet)
    msg = str(e.value)
    assert "resnet18-f37072fd.pth" in msg  # which file
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in msg  # where to put it
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg and "--weights" in msg  # how
    assert "\n" not in msg


def test_weights_that_do_not_fit_are_refused(resnet_files, tmp_path):
    _, d = resnet_files
    model = create_model("mobilenet_v3_small", (3, 32, 32), 2)
    with pytest.raises(WeightsError, match="does not hold this backbone's weights"):
        load_pretrained(model, {"name": "mobilenet_v3_small"}, str(d / "resnet18.pth"), log=quiet)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a state dict"):
        load_pretrained(model, {"name": "mobilenet_v3_small"}, str(junk), log=quiet)
    with pytest.raises(WeightsError, match="no such file"):
        load_pretrained(model, {"name": "mobilenet_v3_small"}, str(tmp_path / "absent.pth"), log=quiet)


# ------------------------------------------------------------------ freezing


def tiny_images(n=32, size=32, classes=2, seed=0) -> ImageTensors:
    """Learnable colour images: each class has its own tint under noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    images = torch.randint(0, 120, (n, 3, size, size), generator=g, dtype=torch.uint8)
    images[torch.arange(n), labels] += 100
    return ImageTensors(images, labels)


def tiny_data(augment=None) -> ClassificationData:
    train, val, test = tiny_images(32), tiny_images(16, seed=1), tiny_images(16, seed=2)
    return ClassificationData("tiny", train, val, test, ["a", "b"], Normalize.fit(train.images), "hand-made",
                              augment=augment)


def test_frozen_parameters_and_batchnorm_statistics_do_not_move(tmp_path):
    torch.manual_seed(0)
    model = create_model("resnet18", (3, 32, 32), 2)
    model.freeze(unfreeze_last=2)  # the last two residual blocks train, with the head
    units = model.units()
    frozen_names = {n for u in units[:-2] for n, _ in _named(model, u)}
    before = {k: v.clone() for k, v in model.state_dict().items()}

    cfg = resolve_config({"data": {"name": "x"}, "model": {"name": "y"}, "optim": {"name": "adam", "lr": 0.01},
                          "train": {"epochs": 1, "batch_size": 8}}, lambda n: {}, lambda n: {})
    fit(model, tiny_data(), cfg, Paths(tmp_path / "c.pt", tmp_path / "w.safetensors", tmp_path / "h.csv"),
        log=quiet, progress=False, params=model.param_groups(0.01, 0.01))

    after = model.state_dict()
    frozen_bn = [k for k in frozen_names if "running_" in k]
    assert frozen_bn and all(torch.equal(before[k], after[k]) for k in frozen_bn)
    assert all(torch.equal(before[k], after[k]) for k in frozen_names)  # weights, biases, statistics
    trained = [k for k in before if k.startswith("base.layer4.1.") or k.startswith("head.")]
    assert all(not torch.equal(before[k], after[k]) for k in trained if "num_batches" not in k)
    model.train()
    assert not model.base.bn1.training and model.base.layer4[1].bn1.training  # frozen BatchNorm stays in eval mode


def test_l2sp_is_the_squared_distance_to_the_pretrained_weights_and_holds_the_base_near_them(tmp_path):
    torch.manual_seed(0)
    model = create_model("resnet18", (3, 32, 32), 2)
    model.freeze(unfreeze_last=1)
    trained = [p for p in model.base.parameters() if p.requires_grad]
    penalty = l2sp_penalty(model, alpha=0.3)
    assert penalty().item() == 0.0
    with torch.no_grad():
        trained[0].add_(0.5)
    # against autograd's gradient: d/dw alpha/2 ||w - w0||^2 = alpha (w - w0)
    penalty().backward()
    assert torch.allclose(trained[0].grad, torch.full_like(trained[0], 0.3 * 0.5))
    assert torch.allclose(penalty(), torch.tensor(0.3 / 2 * 0.25 * trained[0].numel()))
    assert all(not p.grad.any() for p in trained[1:])  # the unmoved weights feel no pull

    def distance(alpha):  # how far one epoch of SGD moves the trained base, with and without the pull
        torch.manual_seed(0)
        m = create_model("resnet18", (3, 32, 32), 2)
        m.freeze(unfreeze_last=1)
        w0 = [p.detach().clone() for p in m.base.parameters()]
        cfg = resolve_config({"data": {"name": "x"}, "model": {"name": "y"}, "optim": {"name": "sgd", "lr": 0.05},
                              "train": {"epochs": 1, "batch_size": 8}}, lambda n: {}, lambda n: {})
        d = tmp_path / str(alpha)
        fit(m, tiny_data(), cfg, Paths(d / "c.pt", d / "w.safetensors", d / "h.csv"), log=quiet, progress=False,
            params=m.param_groups(0.05, 0.05), penalty=l2sp_penalty(m, alpha) if alpha else None)
        return sum(((p - q) ** 2).sum().item() for p, q in zip(m.base.parameters(), w0)) ** 0.5

    free, held = distance(0.0), distance(10.0)
    assert free > 0 and held < 0.8 * free


def _named(model, unit):
    ids = {id(p) for p in list(unit.parameters()) + list(unit.buffers())}
    return [(n, t) for n, t in list(model.named_parameters()) + list(model.named_buffers()) if id(t) in ids]


def test_units_follow_keras_layers():
    # the seed's "unfreeze VGG16's last 15 layers" counts convolutions and poolings: 13 + 5 = 18
    assert len(create_model("vgg16", (3, 32, 32), 2).units()) == 18
    model = create_model("vgg16_bn", (3, 32, 32), 2)
    model.freeze(unfreeze_last=15)
    block1_conv1, block2_conv1 = model.base.features[0], model.base.features[7]  # conv, BN, ReLU, conv, BN, ReLU, pool
    assert not block1_conv1.weight.requires_grad and block2_conv1.weight.requires_grad


# ------------------------------------------------------------------ feature cache


def test_cached_features_equal_recomputed_ones():
    torch.manual_seed(0)
    model = create_model("vgg_small_cifar", (3, 32, 32), 2, channels=(8, 16), convs_per_block=1).eval()
    data = tiny_data(augment=seed_augment(rotation=20, shift=0.1, zoom=0.1, flip=True))

    first, hit = cached_features(model, data, "train", view=0, log=quiet)
    again, hit_again = cached_features(model, data, "train", view=0, log=quiet)
    assert not hit and hit_again
    with torch.no_grad():
        direct = model.features(data.normalize(data.train.images))
    assert torch.allclose(again, direct, atol=1e-5) and torch.equal(first, again)

    view, _ = cached_features(model, data, "train", view=1, seed=3, log=quiet)
    cached_view, hit = cached_features(model, data, "train", view=1, seed=3, log=quiet)
    recomputed = compute_features(model, data, "train", view=1, seed=3)
    assert hit and torch.equal(view, cached_view) and torch.allclose(cached_view, recomputed, atol=1e-5)
    assert not torch.allclose(view, first)  # an augmented view is another view

    with torch.no_grad():  # other weights: other features, never the cached ones
        model.base[0].weight.add_(1)
    changed, hit = cached_features(model, data, "train", view=0, log=quiet)
    assert not hit and not torch.allclose(changed, first)


# ------------------------------------------------------------------ whole runs


def make_folder(root, n=24, size=40, classes=("cat", "dog")):
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            a = rng.integers(0, 120, (size + i % 5, size, 3)).astype(np.uint8)
            a[..., c] += 100
            Image.fromarray(a).save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


TINY = ["--set", "model.name=vgg_small_cifar", "model.channels=8,16", "model.convs_per_block=1", "data.name=image_folder",
        "data.size=32", "data.flip=true", "train.epochs=2", "train.batch_size=8", "transfer.finetune_epochs=1", "transfer.unfreeze=2"]


def run_cli(args, capsys):
    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def train_scratch(tmp_path, capsys):
    """A tiny catsdogs-cifar-scratch run on hand-made pets: (the image folder, the run folder)."""
    folder = make_folder(tmp_path / "pets")
    scratch = tmp_path / "scratch"
    code, _, err = run_cli(["run", "catsdogs-cifar-scratch", "--out", str(scratch), "--no-progress", *TINY,
                            f"data.path={folder}"], capsys)
    assert code == 0, err
    return folder, scratch


def test_scratch_then_features_and_finetune_from_that_run_then_predict(tmp_path, capsys):
    folder, scratch = train_scratch(tmp_path, capsys)
    finetune = tmp_path / "finetune"
    code, out, err = run_cli(["run", "catsdogs-cifar-finetune", "--out", str(finetune), "--no-progress",
                              "--weights", str(scratch), *TINY, f"data.path={folder}", "transfer.views=2"], capsys)
    assert code == 0, err
    m = json.loads((finetune / "metrics.json").read_text())
    assert set(m["val"]) == {"accuracy", "loss"} and {"accuracy", "loss", "per_class"} <= set(m["test"])
    assert [s["stage"] for s in m["transfer"]["stages"]] == ["head", "finetune"]
    assert m["transfer"]["weights"] == str(scratch)
    assert m["test"]["accuracy"] >= 0.9  # tinted images: the head learns them at once
    assert (finetune / "plots" / "curves.png").exists() and (finetune / "history.csv").exists()

    code, out, err = run_cli(["predict", str(finetune), str(folder / "dog" / "3.png"), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["top"][0]["class"] == "dog"

    # a backbone of other options is refused, naming the difference
    code, _, err = run_cli(["run", "catsdogs-cifar-features", "--out", str(tmp_path / "bad"), "--weights", str(scratch),
                            *TINY, f"data.path={folder}", "model.channels=8,32"], capsys)
    assert code == 2 and "model.channels" in err and len(err.strip().splitlines()) == 1


def test_missing_imagenet_weights_end_the_run_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = make_folder(tmp_path / "pets", n=4)
    code, _, err = run_cli(["run", "catsdogs-vgg16-features", "--out", str(tmp_path / "r"), "--set",
                            "data.name=image_folder", f"data.path={folder}"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "vgg16-397923af.pth" in err and "download.pytorch.org" in err
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_streamed_folder_gives_the_features_of_the_in_memory_one(tmp_path):
    folder = make_folder(tmp_path / "pets", n=10)
    from deepstudy.data import DataContext, load_dataset

    ctx = DataContext(root=tmp_path, log=quiet)
    memory = load_dataset("image_folder", ctx, path=str(folder), size=32)
    streamed = load_dataset("image_folder", ctx, path=str(folder), size=32, memory_mb=0)
    assert type(streamed).__name__ == "StreamingImageData"
    streamed.normalize = memory.normalize
    torch.manual_seed(0)
    model = create_model("vgg_small_cifar", (3, 32, 32), 2, channels=(8,), convs_per_block=1).eval()
    for split in ("train", "val", "test"):
        assert torch.equal(streamed.labels(split), memory.labels(split))
        assert torch.allclose(compute_features(model, streamed, split), compute_features(model, memory, split), atol=1e-5)


def test_a_trained_fastnet_serves_as_a_backbone_with_its_fitted_stem():
    """cifar8-fast's net: its whitening stem and conv groups become the TransferNet's base under
    the same names, so the trained weights (the fitted stem included) load as they are and the
    base computes exactly the trained net's feature maps; the stem is never refitted."""
    torch.manual_seed(0)
    opts = {"widths": (8, 16, 16)}
    trained = create_model("fastnet_cifar", (3, 32, 32), 8, **opts)
    trained.train()
    trained(torch.rand(16, 3, 32, 32))  # fits the stem on this first training batch
    for p in trained.parameters():
        p.data.add_(0.01 * torch.randn_like(p))  # as if trained: nothing left at its initial value
    model = create_model("fastnet_cifar", (3, 32, 32), 2, **opts)
    net = TransferNet(model.transfer_base(), (3, 32, 32), 2)
    assert not bool(net.base.whiten.fitted)
    from deepstudy.models.transfer import split_base
    from deepstudy.models.weights import load_base_state
    assert load_base_state(net, split_base(trained).state_dict(), "trained") == len(net.base.state_dict())
    assert_base_equals(net, split_base(trained))
    x = torch.rand(4, 3, 32, 32)
    trained.eval(), net.eval()  # (the 2x2 stem makes 31x31, then three poolings: 15, 7, 3)
    expected = trained.groups(trained.act(trained.whiten(x)))
    assert net.feature_shape == (16, 3, 3) and torch.allclose(net.features(x), expected)
    net.train()  # a training-mode step must not refit the loaded stem
    net(torch.rand(16, 3, 32, 32) * 5)
    assert torch.equal(net.base.whiten.weight, trained.whiten.weight)
    # frozen as the transfer task freezes it: 4 units (stem, three conv groups)
    net.freeze(0)
    assert len(net.units()) == 4 and not any(p.requires_grad for p in net.base.parameters())


@pytest.mark.parametrize("recipe", ["catsdogs-fast-features", "catsdogs-fast-finetune",
                                    "catsdogs-cifar-features", "catsdogs-cifar-finetune"])
def test_transfer_recipes_build_the_backbone_their_pretraining_recipe_trains(recipe):
    # weights=recipe:NAME is loaded only into a base of the same options (tasks/transfer.py):
    # a pretraining recipe changed without its transfer recipes would refuse its own backbone
    # (cifar8-fast kept whiten_fit=first_batch while cifar-fast, whose model the catsdogs-fast
    # recipes copied, moved to clean)
    from deepstudy.recipes import get_recipe
    from deepstudy.tasks import resolve
    from deepstudy.tasks.transfer import HEAD_OPTIONS

    r = get_recipe(recipe)
    cfg = resolve(r, r.default_tier, {})
    source = cfg.transfer.weights.split(":", 1)[1]
    assert cfg.transfer.weights.startswith("recipe:")
    pre = get_recipe(source)
    theirs = resolve(pre, pre.default_tier, {}).model.as_dict()
    ours = cfg.model.as_dict()
    assert {k: v for k, v in ours.items() if k not in HEAD_OPTIONS} == \
        {k: v for k, v in theirs.items() if k not in HEAD_OPTIONS}


def test_a_backbone_saved_before_an_option_existed_loads_with_that_option_at_its_default(tmp_path, capsys):
    # a run's config.json lists the model options of its day; one added later (here: any one of
    # the model's, dropped from the file) ran as its default, so the backbone still fits
    folder, scratch = train_scratch(tmp_path, capsys)
    saved = json.loads((scratch / "config.json").read_text())
    from deepstudy.models import model_options
    defaults = {k: o.default for k, o in model_options("vgg_small_cifar").items()}
    dropped = next(k for k, v in saved["config"]["model"].items() if k in defaults and v == defaults[k])
    del saved["config"]["model"][dropped]
    (scratch / "config.json").write_text(json.dumps(saved))
    code, _, err = run_cli(["run", "catsdogs-cifar-features", "--out", str(tmp_path / "features"), "--no-progress",
                            "--weights", str(scratch), *TINY, f"data.path={folder}"], capsys)
    assert code == 0, err


def test_recipe_backbone_is_the_newest_finished_run_named_either_way(tmp_path):
    """`recipe:NAME` weights: runs/NAME-<time> (the default) and runs/NAME (--out runs/NAME) both
    count; a smoke run, an unfinished run and another recipe's run never do."""
    import os

    from deepstudy.tasks.transfer import latest_run

    def fake(name, recipe, tier="quick", finished=True, age=0):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"recipe": recipe, "tier": tier}))
        (d / "model.safetensors").write_bytes(b"")
        if finished:
            (d / "metrics.json").write_text("{}")
            os.utime(d / "metrics.json", (1e9 + age, 1e9 + age))
        return d

    with pytest.raises(WeightsError, match="no finished run of cifar8-fast"):
        latest_run("cifar8-fast", tmp_path)
    older = fake("cifar8-fast-20261201-100000", "cifar8-fast", age=1)
    assert latest_run("cifar8-fast", tmp_path) == older
    bare = fake("cifar8-fast", "cifar8-fast", age=2)
    fake("cifar8-fast-smoke", "cifar8-fast", tier="smoke", age=9)
    fake("cifar8-fast-20261201-120000", "cifar8-fast", finished=False)
    fake("cifar8-fast-other", "cifar8-vgg-small", age=9)
    assert latest_run("cifar8-fast", tmp_path) == bare


def test_from_scratch_reports_the_best_validation_epoch_not_the_last(tmp_path, capsys):
    """A learning rate that grows 30x every epoch: the net learns the tinted images first, then
    blows up, so the best epoch is not the last, and the reported numbers must be those of the
    best epoch's saved weights (the ones `deepstudy eval` reads), not the last epoch's."""
    folder = make_folder(tmp_path / "pets", n=40)
    run = tmp_path / "scratch"
    code, _, err = run_cli(["run", "catsdogs-cifar-scratch", "--out", str(run), "--no-progress", *TINY,
                            f"data.path={folder}", "train.epochs=4", "optim.name=sgd", "optim.lr=0.003",
                            "schedule.name=step", "schedule.step_size=1", "schedule.gamma=30"], capsys)
    assert code == 0, err
    m = json.loads((run / "metrics.json").read_text())
    rows = list(csv.DictReader(open(run / "history.csv")))
    best = max(range(len(rows)), key=lambda i: float(rows[i]["val_accuracy"]))
    assert m["best_epoch"] == best + 1 < len(rows), "precondition: the best epoch is not the last"
    assert float(rows[-1]["val_accuracy"]) < float(rows[best]["val_accuracy"]), "precondition"
    assert m["val"]["accuracy"] == pytest.approx(float(rows[best]["val_accuracy"]))
    code, out, err = run_cli(["eval", str(run), "--split", "val"], capsys)
    assert code == 0, err
    assert f"{100 * m['val']['accuracy']:.2f}%" in out, out


def test_transfer_pool_max_reads_the_global_max_and_is_refused_where_the_model_pools_itself():
    """transfer.pool=max puts a global max-pool between a plain backbone and the head (what
    fastnet_cifar's own classifier reads); the torchvision/vgg_small TransferNets take model.pool,
    so transfer.pool there is refused in one ConfigError rather than silently ignored."""
    from deepstudy.errors import ConfigError
    from deepstudy.models.transfer import build_transfer_model

    torch.manual_seed(0)
    net = build_transfer_model({"name": "fastnet_cifar", "widths": (8, 16, 16)}, (3, 32, 32), 2, pool="max")
    net.eval()
    x = torch.rand(4, 3, 32, 32)
    assert net.feature_shape == (16, 1, 1)
    assert torch.equal(net.features(x), net.base(x).amax(dim=(2, 3), keepdim=True))
    assert net.head[1].in_features == 16
    with pytest.raises(ConfigError, match="model.pool"):
        build_transfer_model({"name": "vgg_small_cifar", "channels": (8,), "convs_per_block": 1}, (3, 32, 32), 2,
                             pool="max")
