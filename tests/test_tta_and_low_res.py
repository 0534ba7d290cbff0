"""Two options the CIFAR ResNets' quick tiers use, each written once for every model or image
set that opts in: test-time flips (models/tta.py) and progressive resizing (data.low_res)."""

import pytest
import torch

from deepstudy.errors import ConfigError
from deepstudy.models import create_model


def trained_resnet(**options):
    torch.manual_seed(0)
    model = create_model("resnet20_cifar", (3, 32, 32), 10, width=4, **options).train()
    model(torch.randn(16, 3, 32, 32))  # moves the BN running statistics off their initial values
    return model.eval()


@torch.no_grad()
def test_resnet_flip_tta_averages_the_image_and_its_mirror_in_eval_only():
    model = trained_resnet(tta="flip")
    x = torch.randn(6, 3, 32, 32)
    expected = 0.5 * (model.logits(x) + model.logits(x.flip(-1)))
    torch.testing.assert_close(model(x), expected)
    torch.testing.assert_close(model(x), model(x.flip(-1)))  # a mirror image gets the same answer
    assert not torch.allclose(model(x), model.logits(x), atol=1e-4)  # and it is not the single view
    model.train()
    torch.manual_seed(1)
    a = model(x)
    model.tta = "none"
    torch.manual_seed(1)
    assert torch.equal(a, model(x))  # training never sees the views


def test_tta_leaves_the_weights_as_they_were():
    # a run saved without tta loads into a model with it (and back): the option adds no parameter
    plain, flipped = trained_resnet(), trained_resnet(tta="flip_translate")
    assert plain.state_dict().keys() == flipped.state_dict().keys()
    flipped.load_state_dict(plain.state_dict())


def test_unknown_tta_is_a_config_error():
    from deepstudy import recipes
    from deepstudy.tasks import resolve

    assert resolve(recipes.get_recipe("cifar-resnet"), "quick", {"model.tta": "flip"}).model.options["tta"] == "flip"
    with pytest.raises(ConfigError, match="tta"):
        resolve(recipes.get_recipe("cifar-resnet"), "quick", {"model.tta": "mirror"})


def cifar(tmp_path, **options):
    from conftest import make_cifar_jpeg
    from deepstudy.data import DataContext, load_dataset

    make_cifar_jpeg(tmp_path)
    return load_dataset("cifar10", DataContext(root=tmp_path), variant="jpeg", **options)


def test_low_res_epochs_train_on_smaller_images_and_then_full_size(tmp_path):
    data = cifar(tmp_path, low_res=24, low_res_epochs=2)
    sizes = {}
    for epoch in (1, 2, 3):
        data.start_epoch(epoch)
        x, _ = next(data.train_batches(8, torch.Generator().manual_seed(0)))
        sizes[epoch] = tuple(x.shape[-2:])
        assert x.dtype == torch.float32 and x.abs().max() < 10  # still normalised after the resize
    assert sizes == {1: (24, 24), 2: (24, 24), 3: (32, 32)}
    data.start_epoch(1)
    x, _ = next(data.eval_batches("val", 8))
    assert tuple(x.shape[-2:]) == (32, 32)  # validation (and test) always see full-size images


@torch.no_grad()
def test_downscale_averages_pixels_rather_than_picking_them():
    from deepstudy.data.augment import downscale

    x = torch.zeros(1, 1, 32, 32, dtype=torch.uint8)
    x[..., ::2] = 200  # one-pixel stripes: picking every other pixel would give all 200 or all 0
    small = downscale(x, 16)
    assert small.shape == (1, 1, 16, 16) and small.dtype == torch.uint8
    assert (small[..., 1:-1].float() - 100).abs().max() <= 1  # grey inside (the edge columns see one side)


@pytest.mark.parametrize("options", [{"low_res": 24}, {"low_res_epochs": 3}, {"low_res": 32, "low_res_epochs": 3}])
def test_low_res_needs_both_settings_and_a_smaller_size(tmp_path, options):
    with pytest.raises(ConfigError, match="low_res"):
        cifar(tmp_path, **options)


def test_a_resnet_trains_through_low_res_epochs_with_tta(tmp_path):
    # the options as a user sets them, through the recipe: trained, recorded, evaluated
    from conftest import make_cifar_jpeg
    from deepstudy import api

    make_cifar_jpeg(tmp_path / "data")
    r = api.run("cifar-resnet", tier="smoke", epochs=2, data_dir=tmp_path / "data", out=tmp_path / "run",
                progress=False, log=lambda m: None,
                options={"data.low_res": 16, "data.low_res_epochs": 1, "model.tta": "flip"})
    saved = r.config["config"]
    assert (saved["data"]["low_res"], saved["data"]["low_res_epochs"], saved["model"]["tta"]) == (16, 1, "flip")
    assert len(r.history) == 2 and 0 <= r.metrics["test"]["accuracy"] <= 1
    assert all(row["train_loss"] == row["train_loss"] for row in r.history)  # no NaN


def test_low_res_with_a_model_that_needs_full_size_images_is_one_clear_error(tmp_path):
    # cnn_bn flattens its last feature map into a linear layer: 24x24 inputs cannot pass
    from conftest import make_cifar_jpeg
    from deepstudy import api

    make_cifar_jpeg(tmp_path / "data")
    with pytest.raises(ConfigError, match="data.low_res=24: this model cannot take 24x24 images"):
        api.run("cifar-cnn-bn", tier="smoke", data_dir=tmp_path / "data", out=tmp_path / "run", progress=False,
                log=lambda m: None, options={"data.low_res": 24, "data.low_res_epochs": 1})


def test_single_view_switches_the_views_off_inside_the_block_only():
    from deepstudy.models.tta import has_views, single_view

    model = torch.nn.Sequential(trained_resnet(tta="flip_translate"))
    assert has_views(model) and not has_views(trained_resnet())
    with pytest.raises(RuntimeError, match="inside"):
        with single_view(model):
            assert model[0].tta == "none" and not has_views(model)
            raise RuntimeError("inside")
    assert model[0].tta == "flip_translate"  # restored, even after an error in the block


def test_epochs_validate_one_view_and_the_kept_weights_all_of_them(tmp_path):
    # train.tta_every_epoch=false: history.csv holds the one-view validation of each epoch,
    # metrics.json the kept weights' validation under the model's views, as the test is read
    from conftest import make_cifar_jpeg
    from deepstudy import api
    from deepstudy.tasks import get_task
    from deepstudy.tasks.base import saved_config
    from deepstudy.tasks.build import build_data
    from deepstudy.tasks.classification import evaluate_model

    make_cifar_jpeg(tmp_path / "data")
    r = api.run("cifar-resnet", tier="smoke", epochs=2, data_dir=tmp_path / "data", out=tmp_path / "run",
                progress=False, log=lambda m: None, options={"model.tta": "flip", "train.tta_every_epoch": False})
    model = r.load_model()
    cfg = saved_config(get_task("classification"), r.config)
    data = build_data(cfg, tmp_path / "data", torch.device("cpu"), log=lambda m: None)
    flipped = evaluate_model(model, data, cfg, "val")
    model.tta = "none"
    one = evaluate_model(model, data, cfg, "val")
    kept = next(row for row in r.history if row["epoch"] == r.metrics["best_epoch"])
    assert kept["val_loss"] == pytest.approx(one["loss"], rel=1e-5)
    assert r.metrics["val"]["loss"] == pytest.approx(flipped["loss"], rel=1e-5)
    assert flipped["loss"] != pytest.approx(one["loss"], rel=1e-5)  # the two really differ
    assert r.metrics["val"]["views"] == 2
    # the curves (one view per epoch) carry a star at the kept epoch: metrics.json's validation
    stars = [line for ax in r.plot_curves().axes for line in ax.get_lines() if line.get_label() == "kept, 2 views"]
    assert [tuple(s.get_xydata()[0]) for s in stars] == [(kept["epoch"], pytest.approx(flipped["loss"], rel=1e-5)),
                                                        (kept["epoch"], pytest.approx(flipped["accuracy"]))]


def test_the_summary_describes_one_view_of_a_net_with_views():
    # the views run the same layers again on copies of the image: the summary lists each layer
    # once and counts the FLOPs of one view, as for the same net without them
    from deepstudy.models.summary import summarize
    from deepstudy.models.tta import view_count

    plain, six = trained_resnet(), trained_resnet(tta="flip_translate")
    a, b = summarize(plain, (3, 32, 32)), summarize(six, (3, 32, 32))
    assert [r["layer"] for r in a["rows"]] == [r["layer"] for r in b["rows"]]
    assert a["flops"] == b["flops"] > 0
    assert (view_count(plain), view_count(six), six.tta) == (1, 6, "flip_translate")
