"""fastnet_cifar's tricks do what their comments claim: the stem whitens, the fitted stem survives
saving and loading, test-time augmentation is mirror-invariant, the scaled BN shift trains at
bias_scale**2 the learning rate, and bf16 autocast trains it through the standard loop; airbench's
other parts (whitening bias frozen after N epochs, alternating flips, lookahead) do what airbench does."""


import pytest
import torch
import torch.nn.functional as F

from deepstudy.config import Choice, OptimConfig, RunConfig, ScheduleConfig, TrainConfig
from deepstudy.models import create_model
from deepstudy.models.fastnet_cifar import ShiftOnlyBatchNorm


def images(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    # correlated channels and neighbouring pixels, as in photographs: a grey level shared by the
    # whole image plus smooth noise, and some pixel noise so that no direction has near-zero variance
    smooth = 3 * F.avg_pool2d(torch.randn(n, 3, 35, 35, generator=g), 4, stride=1)
    return torch.randn(n, 1, 1, 1, generator=g) + smooth + torch.randn(n, 3, 32, 32, generator=g)


def toy_data(n=256):
    """Two classes a net tells apart in a step or two: dark images and ones with a bright top half."""
    from deepstudy.data import ClassificationData
    from deepstudy.data.tensors import ImageTensors, Normalize

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (n,), generator=g)
    pixels = torch.randint(0, 100, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    pixels[labels == 1, :, :16] += 120  # class 1: a bright top half
    ds = ImageTensors(pixels, labels)
    return ClassificationData("toy", ds, ds.subset(slice(0, 64)), ds.subset(slice(0, 64)), ["dark", "bright"],
                              Normalize.fit(pixels), "hand-made")


def test_stem_whitens_the_patches_of_the_first_training_batch():
    model = create_model("fastnet_cifar", (3, 32, 32), 10, widths=(8, 8, 8))
    x = images()
    raw = x.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
    assert (raw.T @ raw / len(raw) - torch.eye(12)).abs().max() > 0.5  # far from white to begin with
    model.train()
    model(x)
    assert bool(model.whiten.fitted)
    half = model.whiten.weight[:12]  # the other 12 filters are the negatives
    out = F.conv2d(x, half).permute(0, 2, 3, 1).reshape(-1, 12)
    covariance = out.T @ out / len(out)
    assert covariance == pytest.approx(torch.eye(12), abs=2e-3)  # eps=5e-4 keeps it a little under 1
    assert torch.equal(model.whiten.weight[12:], -half)


def test_fitted_stem_is_saved_and_never_refitted():
    a = create_model("fastnet_cifar", (3, 32, 32), 10, widths=(8, 8, 8)).train()
    a(images(seed=1))
    b = create_model("fastnet_cifar", (3, 32, 32), 10, widths=(8, 8, 8)).train()
    b.load_state_dict(a.state_dict())
    b(images(seed=2))  # other images: a refit would change the filters
    assert torch.equal(a.whiten.weight, b.whiten.weight)
    fresh = create_model("fastnet_cifar", (3, 32, 32), 10, widths=(8, 8, 8)).eval()
    fresh(images())  # eval mode never fits: only training images may set the filters
    assert not bool(fresh.whiten.fitted)


def trained(**options):
    model = create_model("fastnet_cifar", (3, 32, 32), 10, widths=(8, 16, 16), **options).train()
    model(images())  # fits the stem and moves the BN statistics
    return model.eval()


@torch.no_grad()
def test_flip_tta_is_mirror_invariant_and_really_averages():
    model = trained(tta="flip")
    x = images(8, seed=3)
    assert torch.allclose(model(x), model(x.flip(-1)), atol=1e-5)
    plain = model.logits(x)
    assert not torch.allclose(model(x), plain, atol=1e-3)
    model.tta = "none"
    assert torch.equal(model(x), plain)


@torch.no_grad()
def test_flip_translate_tta_weights_its_six_views_as_airbench():
    model = trained(tta="flip_translate")
    x = images(8, seed=4)
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")

    def mirrored(v):
        return 0.5 * (model.logits(v) + model.logits(v.flip(-1)))

    expected = 0.5 * mirrored(x) + 0.25 * mirrored(padded[..., :32, :32]) + 0.25 * mirrored(padded[..., 2:, 2:])
    assert torch.allclose(model(x), expected, atol=1e-5)


def test_scaled_shift_trains_at_bias_scale_squared_the_learning_rate():
    torch.manual_seed(0)
    x = torch.randn(16, 4, 5, 5)
    target = torch.randn(16, 4, 5, 5)
    moved = {}
    for scale in (1.0, 8.0):
        bn = ShiftOnlyBatchNorm(4, momentum=0.1, bias_scale=scale)
        opt = torch.optim.SGD(bn.parameters(), lr=1e-3)
        F.mse_loss(bn(x), target).backward()
        opt.step()
        moved[scale] = bn.shift.detach() * scale  # the shift the layer adds
    assert moved[8.0] == pytest.approx(64 * moved[1.0], rel=1e-5)
    assert moved[1.0].abs().min() > 0


def test_bf16_autocast_trains_the_net_in_the_standard_loop(tmp_path):
    from deepstudy.train.loop import Paths, fit

    data = toy_data()
    model = create_model("fastnet_cifar", (3, 32, 32), 2, widths=(8, 16, 16))
    cfg = RunConfig(Choice("toy"), Choice("fastnet_cifar"), train=TrainConfig(epochs=2, batch_size=64, eval_batch_size=64,
                                                                              precision="bf16"),
                    optim=OptimConfig(name="sgd", lr=0.2, momentum=0.85, nesterov=True), schedule=ScheduleConfig())
    seen = []
    model.head.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    result = fit(model, data, cfg, Paths(tmp_path / "c.pt", tmp_path / "w.safetensors", tmp_path / "h.csv"),
                 log=lambda m: None, progress=False)
    assert seen[0] == torch.bfloat16  # autocast really was on
    assert result.history[-1]["val_accuracy"] > 0.9


def test_loop_fits_the_stem_on_clean_training_images_not_the_first_augmented_batch(tmp_path):
    from deepstudy.data.augment import random_translate
    from deepstudy.train.loop import Paths, fit

    data = toy_data()
    data.augment = lambda x, g: random_translate(x, 4, g)  # zero borders: a batch unlike the clean images
    cfg = RunConfig(Choice("toy"), Choice("fastnet_cifar"), train=TrainConfig(epochs=1, batch_size=64, eval_batch_size=64),
                    optim=OptimConfig(name="sgd", lr=0.0), schedule=ScheduleConfig())
    fitted = {}
    for how in ("clean", "first_batch"):
        model = create_model("fastnet_cifar", (3, 32, 32), 2, widths=(8, 8, 8), whiten_fit=how)
        fit(model, data, cfg, Paths(tmp_path / f"{how}.pt", tmp_path / f"{how}.safetensors", tmp_path / f"{how}.csv"),
            log=lambda m: None, progress=False)
        fitted[how] = model.whiten.weight
    reference = create_model("fastnet_cifar", (3, 32, 32), 2, widths=(8, 8, 8))
    reference.whiten.fit(data.normalize(data.train.images))  # all 256 clean training images
    assert torch.allclose(fitted["clean"], reference.whiten.weight, atol=1e-5)
    assert not torch.allclose(fitted["first_batch"], reference.whiten.weight, atol=1e-2)


# ------------------------------------------------------------------ airbench's other parts (issue 20)

def test_whitening_bias_trains_for_its_epochs_then_stays_put(tmp_path):
    # whiten_bias_epochs=1: the bias moves in epoch 1 and not after, while the rest keeps training
    # (with momentum, a bias whose gradient were merely zero would still drift)
    from deepstudy.train.loop import Paths, fit

    data = toy_data()
    cfg = RunConfig(Choice("toy"), Choice("fastnet_cifar"), train=TrainConfig(epochs=3, batch_size=64, eval_batch_size=64),
                    optim=OptimConfig(name="sgd", lr=0.2, momentum=0.85, nesterov=True), schedule=ScheduleConfig())
    model = create_model("fastnet_cifar", (3, 32, 32), 2, widths=(8, 8, 8), whiten_bias_epochs=1)
    seen = []  # (epoch, whitening bias, a conv weight) at the start of each epoch
    real = model.start_epoch

    def record(epoch):
        seen.append((epoch, model.whiten.bias.detach().clone(), model.head.weight.detach().clone()))
        real(epoch)
    model.start_epoch = record
    fit(model, data, cfg, Paths(tmp_path / "c.pt", tmp_path / "w.safetensors", tmp_path / "h.csv"),
        log=lambda m: None, progress=False)
    (_, b1, w1), (_, b2, w2), (_, b3, w3) = seen
    assert [e for e, _, _ in seen] == [1, 2, 3]
    assert not torch.equal(b1, b2)  # trained in epoch 1
    assert torch.equal(b2, b3) and torch.equal(b3, model.whiten.bias.detach())  # frozen from epoch 2 on
    assert not torch.equal(w2, w3) and not torch.equal(w3, model.head.weight.detach())
    assert not model.whiten.bias.requires_grad


def test_alternating_flips_show_each_image_both_ways_in_two_epochs(tmp_path):
    from conftest import make_cifar_jpeg
    from deepstudy.data import DataContext, load_dataset
    from deepstudy.errors import ConfigError

    make_cifar_jpeg(tmp_path)

    def load(**options):
        return load_dataset("cifar10", DataContext(root=tmp_path), variant="jpeg", crop=0, **options)
    plain, alternating = load(flip=False), load(flip=True, alternate_flip=True)
    same = (alternating.train.images == plain.train.images).flatten(1).all(1)
    mirrored = (alternating.train.images == plain.train.images.flip(3)).flatten(1).all(1)
    assert (same | mirrored).all() and 0.3 < mirrored.float().mean() < 0.7  # a random half, mirrored once
    views = {}
    for epoch in (1, 2, 3):
        alternating.start_epoch(epoch)
        views[epoch], _ = next(alternating.train_batches(10**6, torch.Generator().manual_seed(0)))
    torch.testing.assert_close(views[2], views[1].flip(3))  # every image the other way round
    torch.testing.assert_close(views[3], views[1])
    with pytest.raises(ConfigError, match="data.flip=true"):
        load(flip=False, alternate_flip=True)


def test_lookahead_matches_airbench_formula():
    # an independent transcription of airbench94's LookaheadState, step by step, against ours
    from deepstudy.train.lookahead import Lookahead

    torch.manual_seed(0)
    ours, theirs = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    theirs.load_state_dict(ours.state_dict())
    opt_a, opt_b = (torch.optim.SGD(m.parameters(), lr=0.5, momentum=0.9) for m in (ours, theirs))
    total, every = 12, 5
    look = Lookahead(ours, every, total)
    ema = {k: v.clone() for k, v in theirs.state_dict().items()}
    alpha = 0.95 ** 5 * (torch.arange(total + 1) / total) ** 3
    x, y = torch.randn(8, 4), torch.randn(8, 3)
    for step in range(1, total + 1):
        for model, opt in ((ours, opt_a), (theirs, opt_b)):
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            opt.step()
        look.step()
        if step % every == 0:
            with torch.no_grad():
                for k, v in theirs.state_dict().items():
                    ema[k].lerp_(v, 1 - alpha[step].item())
                    v.copy_(ema[k])
        for k, v in theirs.state_dict().items():
            torch.testing.assert_close(ours.state_dict()[k], v)
    look.finish()
    with torch.no_grad():
        for k, v in theirs.state_dict().items():
            v.copy_(ema[k])
    for k, v in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[k], v)
    assert not torch.equal(ours.weight, ema["weight"] * 0)  # a real net, not zeros


def test_cifar_fast_runs_with_every_airbench_part_on(tmp_path):
    # the options as a user sets them, through the recipe: checked, trained, recorded, resumable
    from conftest import make_cifar_jpeg
    from deepstudy import api

    make_cifar_jpeg(tmp_path / "data")
    options = {"data.alternate_flip": True, "model.whiten_bias_epochs": 1, "train.lookahead": 5,
               "model.tta": "flip_translate"}
    r = api.run("cifar-fast", tier="smoke", data_dir=tmp_path / "data", out=tmp_path / "run", progress=False,
                log=lambda m: None, options=options)
    saved = r.config["config"]
    assert saved["data"]["alternate_flip"] and saved["model"]["whiten_bias_epochs"] == 1
    assert saved["train"]["lookahead"] == 5
    assert torch.load(r.run_dir / "checkpoint.pt", weights_only=True)["lookahead"]["step_count"] > 5
    assert 0 <= r.metrics["test"]["accuracy"] <= 1 and len(r.history) == 2


def test_lookahead_is_cifar_fast_default_and_not_the_transfer_backbones():
    # cifar-fast takes the validation ablation's winner (lookahead) in every tier; cifar8-fast
    # keeps what its measured backbone was trained with, or the transfer table could not be re-run
    from deepstudy.recipes import get_recipe

    for tier in ("smoke", "quick", "full"):
        cfg = get_recipe("cifar-fast").raw_config(tier)
        assert cfg["train"]["lookahead"] == 5, tier
        assert not cfg["data"].get("alternate_flip") and not cfg["model"].get("whiten_bias_epochs"), tier
    backbone = get_recipe("cifar8-fast").raw_config("full")
    assert backbone["train"]["lookahead"] == 0
    assert (backbone["data"]["pad"], backbone["model"]["whiten_fit"]) == ("zeros", "first_batch")
