"""The NumPy-from-scratch code (deepstudy.scratch): every layer, loss and optimizer step against
PyTorch autograd / torch.optim on identical float64 inputs (torch only as the oracle), finite
differences, a deliberately wrong backward caught, and the recipes' runs, eval and predict."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from deepstudy import api
from deepstudy.cli import main
from deepstudy.data.root import EMBEDDED
from deepstudy.scratch import GELU, MSE, SGD, Adam, Linear, ReLU, Sequential, Sigmoid, SoftmaxCrossEntropy, Tanh
from deepstudy.scratch import gradcheck, special
from deepstudy.scratch.data import PixelScaler, Source, load_dataset
from deepstudy.scratch.models import create_model

RTOL = 1e-6  # the bar; float64 agreement is in fact ~1e-15


def quiet(msg):
    pass


def assert_close(ours: np.ndarray, oracle: torch.Tensor):
    # atol only for exact zeros and tails far below the values' scale (e.g. GELU(-9) ~ 1e-19)
    np.testing.assert_allclose(ours, oracle.detach().numpy(), rtol=RTOL, atol=1e-14)


def rng(seed=0):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------ torch-free

def test_importing_and_training_never_imports_torch():
    code = """
import sys
import numpy as np
import deepstudy.scratch
from deepstudy.scratch import data, models, train, gradcheck, optim
from pathlib import Path
embedded = Path(deepstudy.scratch.__file__).parents[1] / "data" / "embedded"  # the MNIST in the package
d = data.load_dataset("mnist", data.Source(embedded, 0, lambda m: None), limit=300)
m = models.create_model("mlp", d.in_features, 10, np.random.default_rng(0), hidden=(16,))
train.fit(m, train.loss_for(d), optim.SGD(0.1), d, epochs=1, batch_size=50, rng=np.random.default_rng(0),
          log=lambda m: None)
gradcheck.check_all()
print(sorted(k for k in sys.modules if k.split(".")[0] in ("torch", "torchvision", "torchmetrics")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


# ------------------------------------------------------------------ against torch autograd

ACTIVATIONS = [
    (Sigmoid, torch.sigmoid),
    (Tanh, torch.tanh),
    (ReLU, torch.relu),
    (GELU, lambda x: F.gelu(x)),
    (lambda: GELU("tanh"), lambda x: F.gelu(x, approximate="tanh")),
]


@pytest.mark.parametrize("ours,theirs", ACTIVATIONS, ids=["sigmoid", "tanh", "relu", "gelu", "gelu_tanh"])
def test_activation_matches_autograd(ours, theirs):
    # wide inputs, including far tails where a naive sigmoid overflows
    x = np.concatenate([rng().standard_normal((6, 7)) * 3, [[-60.0, -30, -8, 0.5, 8, 30, 60]]])
    g = rng(1).standard_normal(x.shape)
    layer = ours()
    y = layer.forward(x)
    dx = layer.backward(g)
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    yt.backward(torch.tensor(g))
    assert y.dtype == dx.dtype == np.float64
    assert_close(y, yt)
    assert_close(dx, xt.grad)


def test_linear_matches_autograd():
    layer = Linear(5, 3, rng(), np.float64)
    x, g = rng(1).standard_normal((4, 5)), rng(2).standard_normal((4, 3))
    y = layer.forward(x)
    dx = layer.backward(g)
    lin = torch.nn.Linear(5, 3).double()
    with torch.no_grad():  # nn.Linear stores W transposed: (out, in)
        lin.weight.copy_(torch.tensor(layer.W.T))
        lin.bias.copy_(torch.tensor(layer.b))
    xt = torch.tensor(x, requires_grad=True)
    yt = lin(xt)
    yt.backward(torch.tensor(g))
    assert_close(y, yt)
    assert_close(dx, xt.grad)
    assert_close(layer.grads["W"], lin.weight.grad.T)
    assert_close(layer.grads["b"], lin.bias.grad)


@pytest.mark.parametrize("scale", [1.0, 1000.0], ids=["ordinary", "huge-logits"])
def test_softmax_cross_entropy_matches_autograd(scale):
    logits = rng().standard_normal((8, 10)) * scale  # 1000: e^z overflows unless the max is subtracted
    labels = rng(1).integers(0, 10, 8)
    loss_fn = SoftmaxCrossEntropy()
    loss = loss_fn.forward(logits, labels)
    grad = loss_fn.backward()
    zt = torch.tensor(logits, requires_grad=True)
    lt = F.cross_entropy(zt, torch.tensor(labels))
    lt.backward()
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(lt.item(), rel=RTOL)
    assert_close(grad, zt.grad)
    assert_close(SoftmaxCrossEntropy.probabilities(logits), torch.softmax(zt, 1))


def test_mse_matches_autograd():
    pred, target = rng().standard_normal((8, 3)), rng(1).standard_normal((8, 3))
    loss_fn = MSE()
    loss = loss_fn.forward(pred, target)
    grad = loss_fn.backward()
    pt = torch.tensor(pred, requires_grad=True)
    lt = F.mse_loss(pt, torch.tensor(target))
    lt.backward()
    assert loss == pytest.approx(lt.item(), rel=RTOL)
    assert_close(grad, pt.grad)


def test_network_matches_autograd():
    """Layers chained: the same MLP in NumPy and in torch, every parameter's gradient."""
    net = create_model("mlp", 6, 4, rng(), hidden=(8, 5), activation="gelu", dtype="float64")
    torch_net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.GELU(), torch.nn.Linear(8, 5), torch.nn.GELU(),
                                    torch.nn.Linear(5, 4)).double()
    with torch.no_grad():
        for ours, theirs in zip([l for l in net.layers if isinstance(l, Linear)],
                                [m for m in torch_net if isinstance(m, torch.nn.Linear)]):
            theirs.weight.copy_(torch.tensor(ours.W.T))
            theirs.bias.copy_(torch.tensor(ours.b))
    x, y = rng(1).standard_normal((10, 6)), rng(2).integers(0, 4, 10)
    loss_fn = SoftmaxCrossEntropy()
    loss = loss_fn.forward(net.forward(x), y)
    net.backward(loss_fn.backward())
    lt = F.cross_entropy(torch_net(torch.tensor(x)), torch.tensor(y))
    lt.backward()
    assert loss == pytest.approx(lt.item(), rel=RTOL)
    grads = net.grads
    for i, m in enumerate(torch_net):
        if isinstance(m, torch.nn.Linear):
            assert_close(grads[f"{i}.W"], m.weight.grad.T)
            assert_close(grads[f"{i}.b"], m.bias.grad)


OPTIMIZERS = {
    "sgd": (lambda: SGD(0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "sgd-momentum": (lambda: SGD(0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    "sgd-nesterov-wd": (lambda: SGD(0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
                        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    "adam": (lambda: Adam(0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    "adam-betas-wd": (lambda: Adam(0.003, betas=(0.8, 0.99), weight_decay=0.1),
                      lambda p: torch.optim.Adam(p, lr=0.003, betas=(0.8, 0.99), weight_decay=0.1)),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_steps_match_torch_optim(name):
    ours_factory, torch_factory = OPTIMIZERS[name]
    params = {"W": rng().standard_normal((4, 3)), "b": rng(1).standard_normal(3)}
    torch_params = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    ours, theirs = ours_factory(), torch_factory(list(torch_params.values()))
    for step in range(6):  # momentum and Adam's moments only show after a few steps
        grads = {k: rng(10 + step).standard_normal(v.shape) * (step + 1) for k, v in params.items()}
        for k, t in torch_params.items():
            t.grad = torch.tensor(grads[k])
        ours.step(params, grads)
        theirs.step()
        for k in params:
            assert_close(params[k], torch_params[k])


# ------------------------------------------------------------------ finite differences

def test_every_gradient_passes_the_finite_difference_check():
    checks = gradcheck.check_all()
    assert {c.name for c in checks} >= {"Linear(5->3)", "Sigmoid", "Tanh", "ReLU", "GELU", "GELU(tanh)",
                                         "SoftmaxCrossEntropy", "MSE"}
    assert all(c.ok for c in checks), gradcheck.format_checks(checks)
    assert max(c.error for c in checks) < 1e-7


class SigmoidForgotOneMinus(Sigmoid):
    def backward(self, g):
        return g * self.y  # should be g * y * (1 - y)


class GeluTanhWithoutCubicTerm(GELU):
    def __init__(self):
        super().__init__("tanh")

    def backward(self, g):
        # the derivative of u = C(x + A x^3) taken as C: a plausible slip, small for small x
        x, t = self.x, self.t
        return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * self.C)


class LinearBiasNotSummed(Linear):
    def backward(self, g):
        dx = super().backward(g)
        self.db = g.mean(axis=0)  # mean instead of sum over the batch
        return dx


@pytest.mark.parametrize("broken", [SigmoidForgotOneMinus, GeluTanhWithoutCubicTerm,
                                    lambda: LinearBiasNotSummed(5, 3, rng(), np.float64)],
                         ids=["sigmoid", "gelu-tanh", "linear-bias"])
def test_a_wrong_backward_is_caught(broken):
    x = rng(3).standard_normal((4, 5)) * 2
    checks = gradcheck.check_layer(broken(), x)
    assert not all(c.ok for c in checks), gradcheck.format_checks(checks)
    assert max(c.error for c in checks) > 1e-3


def test_gradcheck_refuses_float32():
    with pytest.raises(ValueError, match="float64"):
        gradcheck.check_layer(Tanh(), np.ones((2, 2), np.float32))


def test_gradcheck_command(capsys):
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    for name in ("Linear(5->3)", "Sigmoid", "Tanh", "ReLU", "GELU(tanh)", "SoftmaxCrossEntropy", "MSE", "MLP"):
        assert name in out
    assert "FAILED" not in out and "16 of 16 gradients ok" in out


# ------------------------------------------------------------------ numerics and dtypes

def test_normal_cdf_is_accurate_in_both_tails():
    x = np.linspace(-37, 9, 4601)
    ref = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    assert np.max(np.abs(special.normal_cdf(x) - ref) / ref) < 1e-12
    z = np.linspace(-5, 26, 3101)
    ref = np.array([math.erfc(v) for v in z])
    assert np.max(np.abs(special.erfc(z) - ref) / ref) < 1e-12
    x32 = x.astype(np.float32)[x > -13]  # float32 underflows below Φ(-13) ~ 1e-38
    ref32 = np.array([0.5 * math.erfc(-float(v) / math.sqrt(2)) for v in x32])
    assert special.normal_cdf(x32).dtype == np.float32
    assert np.max(np.abs(special.normal_cdf(x32) - ref32) / ref32) < 2e-5  # exp(-z^2) in float32


@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh", "sigmoid", "tanh"])
def test_float32_stays_float32(activation):
    net = create_model("mlp", 5, 3, rng(), hidden=(4,), activation=activation)
    x, y = rng(1).standard_normal((6, 5)).astype(np.float32), rng(2).integers(0, 3, 6)
    loss_fn = SoftmaxCrossEntropy()
    out = net.forward(x)
    loss_fn.forward(out, y)
    dx = net.backward(loss_fn.backward())
    for opt in (SGD(0.1, momentum=0.9), Adam(0.01)):
        opt.step(net.params, net.grads)
    assert out.dtype == dx.dtype == np.float32
    assert all(v.dtype == np.float32 for v in (*net.params.values(), *net.grads.values()))


# ------------------------------------------------------------------ data

def test_batches_cover_each_example_once_in_a_seeded_order(tmp_path):
    data = load_dataset("toy2d", Source(tmp_path, seed=3), problem="xor", n=103)
    ids = {tuple(row) for row in data.train.x}
    first = [y for _, y in data.batches("train", 10, np.float32, np.random.default_rng(5))]
    again = [y for _, y in data.batches("train", 10, np.float32, np.random.default_rng(5))]
    assert [len(y) for y in first] == [10] * (len(data.train) // 10) + [len(data.train) % 10]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    xs = np.concatenate([x for x, _ in data.batches("train", 10, np.float64, np.random.default_rng(6))])
    assert len(xs) == len(ids) == len(data.train)  # a permutation: every example, once
    assert sum(map(len, (data.train, data.val, data.test))) == 103
    assert not ({tuple(r) for r in data.test.x} & ids)


def test_pixel_scaler_statistics_and_table():
    images = rng().integers(0, 256, (50, 28, 28)).astype(np.uint8)
    scale = PixelScaler.fit(images)
    x = images.astype(np.float64) / 255
    assert scale.mean == pytest.approx(x.mean(), rel=1e-12) and scale.std == pytest.approx(x.std(ddof=1), rel=1e-12)
    out = scale(images[:3], np.float32)
    assert out.shape == (3, 784) and out.dtype == np.float32
    np.testing.assert_allclose(out, ((x[:3] - scale.mean) / scale.std).reshape(3, -1), rtol=1e-6)


# ------------------------------------------------------------------ recipes: run, eval, predict

def test_linreg_recovers_the_formula(tmp_path, capsys):
    r = api.run("scratch-linreg", out=tmp_path / "run", progress=False, log=quiet)
    fitted = r.metrics["fitted"]
    assert abs(fitted["w"] - 1.8) < 0.01 and abs(fitted["b"] - 32) < 0.01
    assert r.metrics["test"]["rmse"] < 0.01
    assert (r.run_dir / "plots" / "fit.png").exists() and (r.run_dir / "plots" / "curves.png").exists()
    assert main(["predict", str(r.run_dir), "100", "-40", "36.6"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [float(line.split()[1]) for line in lines] == pytest.approx([212, -40, 97.88], abs=0.01)
    assert main(["eval", str(r.run_dir)]) == 0
    assert "rmse" in capsys.readouterr().out
    assert main(["predict", str(r.run_dir), "warm"]) == 2
    assert "'warm' is not a number" in capsys.readouterr().err


def test_linreg_with_noise_fits_but_not_exactly(tmp_path):
    r = api.run("scratch-linreg", options={"data.noise": 5.0}, out=tmp_path / "run", progress=False, log=quiet)
    w, b = r.metrics["fitted"]["w"], r.metrics["fitted"]["b"]
    assert abs(w - 1.8) < 0.1 and abs(b - 32) < 3 and (w, b) != pytest.approx((1.8, 32), abs=1e-3)
    assert 3 < r.metrics["test"]["rmse"] < 8  # about the noise's 5 F


def test_toy_decision_boundary_and_predict(tmp_path, capsys):
    r = api.run("scratch-mlp-toy", tier="smoke", epochs=60, out=tmp_path / "run", progress=False, log=quiet)
    assert r.metrics["test"]["accuracy"] > 0.85 and set(r.metrics["test"]["per_class"]) == {"upper moon", "lower moon"}
    boundary = json.loads((r.run_dir / "plots" / "decision_boundary.json").read_text())
    assert np.asarray(boundary["probability"]).shape == (len(boundary["y"]), len(boundary["x"]))
    assert (r.run_dir / "plots" / "decision_boundary.png").exists()
    # the middle of each moon
    assert main(["predict", str(r.run_dir), "--json", "0,1", "1,-0.5"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["top"][0]["class"] for row in rows] == ["upper moon", "lower moon"]


def write_digits(folder, n=20):
    arrays = load_dataset("mnist", Source(EMBEDDED, 0), limit=4 * n)  # the MNIST inside the package
    files = []
    for i, (img, label) in enumerate(zip(arrays.test.x[:n], arrays.test.y[:n])):
        path = folder / f"{i}.png"
        Image.fromarray(255 - img).resize((112, 112)).save(path)  # dark ink on white, 4x larger
        files.append(str(path))
    return files, arrays.test.y[:n]


def test_softmax_mnist_learns_and_serves_eval_and_predict(tmp_path, capsys):
    """Two real epochs of the seed's softmax regression; then eval reproduces metrics.json and
    predict reads photos of digits, through the same commands as the PyTorch runs."""
    r = api.run("scratch-softmax-mnist", epochs=2, out=tmp_path / "run", progress=False, log=quiet)
    m = r.metrics
    assert m["test"]["accuracy"] > 0.9 and len(m["test"]["per_class"]) == 10
    assert set(m["val"]) == {"accuracy", "loss"} and {"accuracy", "loss", "per_class"} <= set(m["test"])
    for name in ("curves", "confusion_matrix", "predictions", "confident_mistakes", "class_distribution"):
        assert (r.run_dir / "plots" / f"{name}.png").exists(), name
    assert main(["eval", str(r.run_dir)]) == 0
    assert f"{100 * m['test']['accuracy']:.2f}%" in capsys.readouterr().out
    files, labels = write_digits(tmp_path)
    assert main(["predict", str(r.run_dir), *files, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    correct = sum(int(row["top"][0]["class"]) == int(y) for row, y in zip(rows, labels))
    assert correct >= 16, f"only {correct}/20"
    model = r.load_model()
    assert isinstance(model, Sequential) and model.params["0.W"].shape == (784, 10)
    assert r.plot_predictions() is not None


def test_same_seed_same_run_other_seed_other_run(tmp_path):
    def go(out, seed):
        return api.run("scratch-mlp-toy", tier="smoke", epochs=3, seed=seed, out=tmp_path / out, progress=False,
                       log=quiet)
    a, b, c = go("a", 1), go("b", 1), go("c", 2)
    assert a.metrics["test"] == b.metrics["test"] and [r["train_loss"] for r in a.history] == \
        [r["train_loss"] for r in b.history]
    assert (a.run_dir / "model.safetensors").read_bytes() == (b.run_dir / "model.safetensors").read_bytes()
    assert a.history[0]["train_loss"] != c.history[0]["train_loss"]


def fails_cleanly(capsys, argv, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    for w in words:
        assert w in err, err


def test_unsupported_settings_are_refused(tmp_path, capsys):
    out = str(tmp_path / "r")
    fails_cleanly(capsys, ["run", "scratch-mlp-mnist", "--set", "train.label_smoothing=0.1", "--out", out],
                  "train.label_smoothing")
    fails_cleanly(capsys, ["run", "scratch-mlp-mnist", "--set", "optim.name=rmsprop", "--out", out], "sgd and adam")
    fails_cleanly(capsys, ["run", "scratch-mlp-mnist", "--set", "schedule.name=onecycle", "--out", out], "cosine")
    fails_cleanly(capsys, ["run", "scratch-mlp-mnist", "--set", "model.activation=swish"], "model.activation")
    fails_cleanly(capsys, ["run", "scratch-linreg", "--set", "train.monitor=val_accuracy", "--out", out], "val_loss")
    fails_cleanly(capsys, ["run", "scratch-linreg", "--resume", "--out", out], "nothing to resume")
