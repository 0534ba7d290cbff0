"""Time series: the CSV reader and its errors, the split and the scaler (training period only),
the transforms and their inverse, the naive baselines by hand, free-running forecasts that never
read the future, the gradient study against a hand-derived 1-unit RNN, and the forecast and
sine runs end to end (plots beside their numbers, resume, the `forecast` command)."""

import hashlib

import numpy as np
import pytest
import torch

from deepstudy import api
from deepstudy.analysis.gradient_flow import hidden_gradient_norms, scaled_tanh_rnn
from deepstudy.cli import main
from deepstudy.data import DataContext, load_dataset
from deepstudy.data.root import EMBEDDED
from deepstudy.data.series import AIRLINE_FILE, Transform, best_possible_mse, sine_wave
from deepstudy.errors import DataError
from deepstudy.io import read_csv
from deepstudy.models import create_model
from deepstudy.train import loop

from conftest import shared_or_skip
from test_cli import fails_cleanly
from test_models import check_forward_backward


def quiet(msg):
    pass


def ctx(root=None):
    return DataContext(root=root or EMBEDDED, log=quiet)  # by default, the copies inside the package


def write_csv(path, values, header="Month,Sales"):
    lines = [header] + [f"{1950 + i // 12}-{i % 12 + 1:02d},{v}" for i, v in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------ reading

def test_airline_csv_crlf_without_final_newline():
    raw = (EMBEDDED / AIRLINE_FILE).read_bytes()
    assert raw.count(b"\r\n") == 144 and not raw.endswith(b"\n")
    data = load_dataset("airline_passengers", ctx())
    assert len(data.values) == 144 and data.values[0] == 112 and data.values[-1] == 432
    assert data.times[0] == "1949-01" and data.times[-1] == "1960-12"
    assert data.unit == "thousand passengers"


def test_the_packaged_copy_is_the_shared_one():
    shared = shared_or_skip("airline-passengers", "airline-passengers.csv")
    assert hashlib.sha256((EMBEDDED / AIRLINE_FILE).read_bytes()).digest() == hashlib.sha256(shared.read_bytes()).digest()


def test_any_csv_and_column(tmp_path):
    path = tmp_path / "sales.csv"
    values = 100 + np.arange(60) + 10 * np.sin(np.arange(60) * 2 * np.pi / 12)
    path.write_text("Month,Other,Sales\n" + "\n".join(f"{i},{7},{v}" for i, v in enumerate(values)))
    data = load_dataset("airline_passengers", ctx(), csv=str(path), column="sales", test_fraction=0.2)
    np.testing.assert_allclose(data.values, values)
    assert data.unit == "Sales" and data.name == "sales"
    assert (len(data.train), len(data.val), len(data.test)) == (48 - 12 - 1, 12, 12)


@pytest.mark.parametrize("content, option, words", [
    (None, {}, ["no such file", "nowhere.csv"]),
    ("Month,Sales\n2000-01,1\n", {"data.column": "Passengers"}, ["no column 'Passengers'", "Month, Sales"]),
    ("Month,Sales\n" + "2000-01,5\n" * 40 + "2000-02,n/a\n", {}, ["line 42", "'n/a'", "not a number"]),
    ("Month,Sales\n" + "2000-01,5\n" * 40 + "2000-02,\n", {}, ["line 42", "not a number"]),
    ("Month,Sales\n" + "2000-01,5\n" * 20, {}, ["too short", "20 values"]),
    ("", {}, ["empty"]),
])
def test_bad_csv_is_one_clear_line(tmp_path, capsys, content, option, words):
    path = tmp_path / ("nowhere.csv" if content is None else "data.csv")
    if content is not None:
        path.write_text(content)
    sets = [f"data.csv={path}"] + [f"{k}={v}" for k, v in option.items()]
    fails_cleanly(capsys, ["run", "airline-lstm", "--tier", "smoke", "--out", str(tmp_path / "run"), "--no-progress",
                           "--set", *sets], *words)


def test_log_of_a_non_positive_series_is_refused(tmp_path):
    path = write_csv(tmp_path / "s.csv", [5.0] * 30 + [0.0] * 30)
    with pytest.raises(DataError, match="positive"):
        load_dataset("airline_passengers", ctx(), csv=str(path), log=True)


# ------------------------------------------------------------------ split, scaler, transforms

def test_periods_and_a_scaler_that_never_sees_validation_or_test(tmp_path):
    # the last third is ten times larger: a scaler fitted on it would have a far larger range
    values = np.r_[np.arange(1, 97) % 12 + 10.0, np.full(48, 500.0)]
    data = load_dataset("airline_passengers", ctx(), csv=str(write_csv(tmp_path / "s.csv", values)), look_back=3)
    assert data.bounds == {"first": 3, "val": 84, "test": 96}
    assert data.train.t[0] == 3 and data.train.t[-1] == 83
    assert list(data.val.t) == list(range(84, 96)) and list(data.test.t) == list(range(96, 144))
    assert (data.transform.offset, data.transform.scale) == (10.0, 11.0)  # min and range of months 0..83
    # the first test window is the three months before it; its target is the first test month
    np.testing.assert_allclose(data.test.x[0, :, 0].numpy(), (values[93:96] - 10) / 11, rtol=1e-6)
    assert data.test.y[0].item() == pytest.approx((500 - 10) / 11)
    assert data.train.y.max().item() <= 1.0  # no test value leaked into training targets


@pytest.mark.parametrize("lags", [(), (1,), (12,), (1, 12)])
@pytest.mark.parametrize("log", [False, True])
def test_transform_round_trip(lags, log):
    y = np.random.default_rng(0).uniform(100, 500, 60)
    tr = Transform(log, lags, 0.3, 2.0)
    s = tr.encode(y)
    assert np.isnan(s[:tr.span]).all() and not np.isnan(s[tr.span:]).any()
    t = np.arange(tr.span, 60)
    np.testing.assert_allclose(tr.decode(s[t], tr.base(tr.level(y), t)), y[t], rtol=1e-12)


def test_box_jenkins_differencing_by_hand():
    z = np.log(np.arange(1.0, 31.0))
    s = Transform(True, (1, 12), 0.0, 1.0).encode(np.arange(1.0, 31.0))
    t = 20
    assert s[t] == pytest.approx((z[t] - z[t - 1]) - (z[t - 12] - z[t - 13]))


def test_baselines_by_hand(tmp_path):
    values = np.arange(100.0, 160.0) + np.tile([0, 5, 9, 3], 15)
    data = load_dataset("airline_passengers", ctx(), csv=str(write_csv(tmp_path / "s.csv", values)), season=4)
    base = data.baselines("test")
    t = data.test.t
    np.testing.assert_array_equal(base["persistence"], values[t - 1])
    np.testing.assert_array_equal(base["seasonal_naive"], values[t - 4])
    early = data.baselines("train")["seasonal_naive"]  # the first training targets have no season before them
    assert np.isnan(early[data.train.t < 4]).all() and early[data.train.t == 4][0] == values[0]


def test_free_running_never_reads_the_future(tmp_path):
    values = 200 + 50 * np.sin(np.arange(72) * 2 * np.pi / 12) + np.arange(72)
    path = write_csv(tmp_path / "s.csv", values)
    data = load_dataset("airline_passengers", ctx(), csv=str(path), look_back=12, log=True, difference=(1, 12),
                        seasonal_features=True)
    torch.manual_seed(0)
    model = create_model("series_rnn", data.in_shape, 1, hidden=4)
    start = data.bounds["test"]
    before = data.free_run(model, start, 10)
    data.values[start:] = 1e6  # what happens after `start` must not matter
    np.testing.assert_array_equal(before, data.free_run(model, start, 10))
    # one step of a free run is the one-step-ahead forecast
    from deepstudy.tasks.forecast import one_step
    data.values[:] = values
    assert before[0] == pytest.approx(one_step(model, data, "test")[0])


# ------------------------------------------------------------------ the sine wave

def test_sine_noise_floor():
    noisy, clean = sine_wave(200_000, 50, 0.4, "phase", 0)
    t = np.arange(200_000)
    # the best forecaster's error is the variance of y_t given t, averaged: check it by simulation
    best = np.sin(2 * np.pi * t / 50) * np.sin(0.4) / 0.4
    assert np.mean((noisy - best) ** 2) == pytest.approx(best_possible_mse(t, 50, 0.4, "phase"), rel=0.02)
    noisy, clean = sine_wave(200_000, 50, 0.3, "additive", 0)
    assert np.var(noisy - clean) == pytest.approx(0.09 / 3, rel=0.02)


# ------------------------------------------------------------------ gradient flow

def test_hidden_gradient_norms_match_a_hand_derived_one_unit_rnn():
    rnn, head = scaled_tanh_rnn(1, 0.8, seed=0)
    x = torch.linspace(-1, 1, 12, dtype=torch.float64).view(-1, 1)
    y = torch.tensor([0.3], dtype=torch.float64)
    norms = hidden_gradient_norms(rnn, head, x, y)
    w_ih, w_hh = rnn.weight_ih_l0.item(), rnn.weight_hh_l0.item()
    b = rnn.bias_ih_l0.item() + rnn.bias_hh_l0.item()
    h, hs = 0.0, []
    for xt in x.view(-1).tolist():
        h = np.tanh(w_ih * xt + w_hh * h + b)
        hs.append(h)
    a, c = head.weight.item(), head.bias.item()
    g = 2 * (a * hs[-1] + c - 0.3) * a  # dL/dh_T
    expected = [abs(g)]
    for t in range(len(hs) - 1, 0, -1):  # dL/dh_{t-1} = dL/dh_t * (1 - h_t^2) * w_hh
        g = g * (1 - hs[t] ** 2) * w_hh
        expected.append(abs(g))
    np.testing.assert_allclose(norms, expected[::-1], rtol=1e-10)


def test_below_one_vanishes_above_one_explodes():
    x = torch.tensor(sine_wave(201, 50, 0.4, "phase", 0)[0], dtype=torch.float64).view(-1, 1)
    small = hidden_gradient_norms(*scaled_tanh_rnn(32, 0.5, 0), x[:200], x[200])
    large = hidden_gradient_norms(*scaled_tanh_rnn(32, 2.0, 0), x[:200], x[200])
    assert small[0] < 1e-30 * small[-1]
    assert large[0] > 1e6 * large[-1]


# ------------------------------------------------------------------ runs

@pytest.fixture(scope="module")
def sine_run(tmp_path_factory):
    return api.run("sine-rnn", tier="smoke", out=tmp_path_factory.mktemp("runs") / "sine", progress=False, log=quiet)


@pytest.fixture(scope="module")
def airline_run(tmp_path_factory):
    return api.run("airline-lstm-seasonal", tier="smoke", out=tmp_path_factory.mktemp("runs") / "air",
                   progress=False, log=quiet)


def test_sine_run_shows_noise_floor_gradients_and_clipping(sine_run):
    m, d = sine_run.metrics, sine_run.run_dir / "plots"
    assert {"rmse", "mae", "mse", "noise_floor", "best_possible_mse"} <= set(m["test"])
    assert 0.02 < m["test"]["noise_floor"] < 0.035  # phase noise 0.4: 1 - sin(0.4)/0.4 = 0.026 on average
    assert set(m["baselines"]) == {"persistence", "seasonal_naive"}
    for stem, ext in (("predictions", "csv"), ("gradient_norms", "csv"), ("clipping", "json"), ("curves", "csv")):
        assert (d / f"{stem}.png").stat().st_size > 5000 and (d / f"{stem}.{ext}").exists(), stem
    g = m["gradients"]
    assert g["tanh RNN, W_hh scaled to 0.5"]["growth_per_step"] < 0.6
    assert g["tanh RNN, W_hh scaled to 2"]["growth_per_step"] > 1.05
    assert any(name.startswith("this run's trained tanh RNN (1 unit)") for name in g)
    rows = read_csv(d / "gradient_norms.csv")
    assert len(rows) == 300 and rows[0]["t"] == 1
    c = m["clipping"]
    assert c["no clipping"]["diverged"] and not c["clipped at norm 1"]["diverged"]
    assert c["clipped at norm 1"]["final_loss"] < 0.5


def test_forecast_run_metrics_plots_and_commands(airline_run, capsys, tmp_path):
    m, run = airline_run.metrics, airline_run.run_dir
    assert m["task"] == "forecast" and m["unit"] == "thousand passengers"
    for split in ("val", "test"):
        assert {"rmse", "mae"} <= set(m[split]) and np.isfinite(m[split]["rmse"])
    assert set(m["baselines"]) == {"persistence", "seasonal_naive"}
    assert m["baselines"]["seasonal_naive"]["rmse"] == pytest.approx(41.8537, abs=1e-3)  # by hand: numpy
    assert m["baselines"]["persistence"]["rmse"] == pytest.approx(48.0412, abs=1e-3)
    assert m["test"]["n"] == 48 and m["val"]["n"] == 12
    for stem in ("fit", "free_running", "curves"):
        assert (run / "plots" / f"{stem}.png").stat().st_size > 5000 and (run / "plots" / f"{stem}.csv").exists()
    fit = read_csv(run / "plots" / "fit.csv")
    assert len(fit) == 144 and [r["period"] for r in fit].count("test") == 48

    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert "RMSE" in out and "persistence RMSE 48.04" in out and "seasonal-naive RMSE 41.85" in out

    assert main(["forecast", str(run), "--steps", "24"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("1961-01 ") and lines[23].startswith("1962-12 ") and "forecast.png" in lines[24]
    rows = read_csv(run / "plots" / "forecast.csv")
    assert len(rows) == 24 and all(100 < r["forecast"] < 2000 for r in rows)
    assert (run / "plots" / "forecast.png").stat().st_size > 5000

    fails_cleanly(capsys, ["forecast", str(run), "--steps", "0"], "--steps")
    fails_cleanly(capsys, ["predict", str(run), "x.png"], "forecast")


def test_forecast_on_a_changed_csv_is_refused(tmp_path, capsys):
    path = write_csv(tmp_path / "s.csv", 100 + np.arange(60.0))
    run = api.run("airline-lstm", tier="smoke", epochs=1, options={"data.csv": str(path)}, out=tmp_path / "r",
                  progress=False, log=quiet)
    assert main(["forecast", str(run.run_dir), "--steps", "3"]) == 0
    capsys.readouterr()
    write_csv(path, 100 + np.arange(60.0) * 2)
    fails_cleanly(capsys, ["forecast", str(run.run_dir)], "not the one this run was trained on")


def test_forecast_resume_ends_like_an_uninterrupted_run(tmp_path, monkeypatch):
    def go(out, **kw):
        return api.run("airline-lstm", tier="smoke", epochs=3, out=out, progress=False, log=quiet, **kw)

    full = go(tmp_path / "full")
    real_evaluate, calls = loop.evaluate, {"n": 0}

    def crash_in_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(loop, "evaluate", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        go(tmp_path / "cut")
    monkeypatch.setattr(loop, "evaluate", real_evaluate)
    assert not (tmp_path / "cut" / "metrics.json").exists()
    resumed = api.run("airline-lstm", out=tmp_path / "cut", resume=True, progress=False, log=quiet)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(resumed.history) == strip(full.history)
    assert resumed.metrics["test"] == full.metrics["test"]


def test_forecasting_models_options():
    for options in ({"cell": "rnn", "hidden": 1}, {"cell": "gru", "layers": 2, "dropout": 0.1}, {"cell": "lstm"}):
        check_forward_backward(create_model("series_rnn", (12, 3), 1, **options), (12, 3), num_classes=1)
    assert sum(p.numel() for p in create_model("series_rnn", (10, 1), 1, cell="rnn", hidden=1).parameters()) == 6


def test_catalog_shows_rmse_and_mse(capsys):
    assert main(["list", "airline-*"]) == 0
    out = capsys.readouterr().out
    assert "airline-lstm-seasonal" in out and " rmse" in out and "sine" not in out
    assert main(["show", "airline-lstm"]) == 0
    assert "seed: 50.21 rmse" in capsys.readouterr().out  # the seed's number, in its own units
