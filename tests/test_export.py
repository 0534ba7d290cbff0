"""`deepstudy export`: every kind of study trained in its smoke tier, exported in each format it
offers, and the file run again outside deepstudy's code (onnxruntime, torch.jit.load, numpy.load)
on real inputs.  The export itself keeps a file only when it reproduces the model within 1e-4 on
batches of the run's own validation split; these tests read those numbers back, check that a
failing check keeps nothing, and use the files the way a user would."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_handmade_root, real_data_present, SHARED
from deepstudy import api
from deepstudy.cli import main

KINDS = {  # kind: (recipe, extra options), smoke tier
    "image": ("lenet5-mnist", ["data.limit=2000"]),
    "transfer": ("catsdogs-cifar-scratch", []),
    "text-rnn": ("trec-lstm", []),  # bidirectional LSTM, last states: exported in its unpacked form
    "text-tanh-rnn": ("trec-rnn", []),  # a tanh RNN: exported as a GRU with its gates held open
    "text-attention": ("trec-attention", []),  # the same, attention over every word's output
    "text-transformer": ("trec-transformer", []),
    "text-cnn": ("trec-cnn", []),  # Kim's CNN: wide convolutions, masked max over time, any length
    "language-model": ("shakespeare-char-lstm", []),
    "forecast": ("airline-lstm", []),
    "numpy": ("scratch-mlp-toy", []),
}
FORMATS = {"numpy": ["npz"]}  # the others: onnx and torchscript
CASES = [(kind, f) for kind in KINDS for f in FORMATS.get(kind, ["onnx", "torchscript"])]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished smoke-tier run of every kind, on the real data when ../shared is there, else on
    the tests' hand-made copies."""
    base = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPSTUDY_OFFLINE", "1")
        mp.setenv("DEEPSTUDY_CACHE", str(base / "cache"))
        mp.delenv("DEEPSTUDY_DATA", raising=False)
        root = SHARED if real_data_present() else make_handmade_root(base)
        out = {}
        for kind, (recipe, options) in KINDS.items():
            argv = ["run", recipe, "--tier", "smoke", "--data-dir", str(root), "--out", str(base / kind),
                    "--threads", "1", "--no-progress"] + (["--set", *options] if options else [])
            assert main(argv) == 0, kind
            out[kind] = base / kind
    return out


def _needs(format: str) -> None:
    if format == "onnx":
        pytest.importorskip("onnxruntime", reason="the export extra (onnxruntime) is not installed")
        pytest.importorskip("onnxscript", reason="the export extra (onnxscript) is not installed")


@pytest.mark.parametrize("kind,format", CASES, ids=[f"{k}-{f}" for k, f in CASES])
def test_export_reproduces_the_model(runs, kind, format, capsys):
    _needs(format)
    run = runs[kind]
    assert main(["export", str(run), "--format", format]) == 0
    out = capsys.readouterr().out
    file = run / "export" / {"onnx": "model.onnx", "torchscript": "model.pt", "npz": "model.npz"}[format]
    assert file.is_file() and str(file) in out and "max abs difference" in out
    record = json.loads((file.parent / (file.name + ".json")).read_text())
    print(f"{KINDS[kind][0]} {format}: max abs diff {record['max_abs_diff']:.3g} on {record['inputs']['source']}")
    assert record["format"] == format and record["file"] == str(file) and record["bytes"] == file.stat().st_size
    assert 0 <= record["max_abs_diff"] <= 1e-4 and record["tolerance"] == 1e-4
    assert len(record["inputs"]["shapes"]) >= 2  # several batches, of different sizes
    sizes = {tuple(batch[record["inputs"]["names"][0]]) for batch in record["inputs"]["shapes"]}
    assert len(sizes) >= 2, sizes
    if format == "onnx":
        assert record["opset"] >= 17 and record["versions"]["onnxruntime"]


def _session(path: Path):
    import onnxruntime as ort
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_onnx_text_classifier_gives_what_predict_gives(runs, capsys):
    """A question typed by a user (not one of the checked batches, another length), encoded as
    predict encodes it, through the ONNX file: the same probabilities `deepstudy predict` prints."""
    _needs("onnx")
    from deepstudy.data.text import Vocab, encode_texts
    run = runs["text-rnn"]
    assert main(["export", str(run), "--format", "onnx", "--out", str(run / "q.onnx")]) == 0
    config = json.loads((run / "config.json").read_text())
    vocab = Vocab(json.loads((run / "vocab.json").read_text())["tokens"])
    questions = ["Who wrote Hamlet ?", "How many moons does Mars have and what are they called ?"]
    ids, lengths = encode_texts(questions, vocab, config["data"]["tokenizer"]["lowercase"])
    logits = _session(run / "q.onnx").run(None, {"ids": ids.numpy(), "lengths": lengths.numpy()})[0]
    probs = torch.softmax(torch.from_numpy(logits), 1)
    capsys.readouterr()
    assert main(["predict", str(run), *questions, "--json", "--top", "3"]) == 0
    predicted = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    classes = config["data"]["classes"]
    for row, p in zip(predicted, probs):
        for top in row["top"]:
            assert p[classes.index(top["class"])].item() == pytest.approx(top["probability"], abs=1e-5)


def test_onnx_language_model_generates_what_the_model_generates(runs):
    """Greedy generation, one character at a time, the ONNX file carrying its own state from step
    to step: the same text as the PyTorch model's."""
    _needs("onnx")
    run = runs["language-model"]
    record = api.export(run, format="onnx", out=run / "lm.onnx")
    assert record["max_abs_diff"] <= 1e-4
    import onnx
    logits = onnx.load(str(run / "lm.onnx")).graph.output[0]
    # the length is declared variable (the exporter wrote the example's), so onnxruntime runs
    # one character at a time without warning that the shape is not the declared one
    assert logits.name == "logits" and logits.type.tensor_type.shape.dim[1].dim_param
    model = api.load_run(run).load_model()
    session = _session(run / "lm.onnx")
    layers, hidden = model.lstm.num_layers, model.lstm.hidden_size
    state = {"h": np.zeros((layers, 1, hidden), np.float32), "c": np.zeros((layers, 1, hidden), np.float32)}
    ids = np.array([[1]], np.int64)
    onnx_out, torch_out = [], []
    torch_ids, torch_state = torch.tensor([[1]]), None
    with torch.no_grad():
        for _ in range(60):
            logits, h, c = session.run(None, {"ids": ids, **state})
            state = {"h": h, "c": c}
            ids = logits[:, -1].argmax(-1).reshape(1, 1).astype(np.int64)
            onnx_out.append(int(ids[0, 0]))
            t_logits, torch_state = model(torch_ids, torch_state)
            torch_ids = t_logits[:, -1].argmax(-1).view(1, 1)
            torch_out.append(int(torch_ids[0, 0]))
    assert onnx_out == torch_out and len(set(onnx_out)) > 1


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")  # see README, Export
def test_torchscript_image_classifier_runs_without_deepstudy(runs):
    """The TorchScript file, loaded by torch alone, classifies the run's test digits as the
    model does."""
    run = runs["image"]
    api.export(run, format="torchscript", out=run / "alone.pt")
    model = api.load_run(run).load_model()
    from deepstudy.data.idx import read_idx
    from deepstudy.data.root import EMBEDDED
    images = torch.from_numpy(read_idx(EMBEDDED / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz")[:500].copy())
    info = json.loads((run / "config.json").read_text())["data"]
    x = (images.float().unsqueeze(1) / 255 - info["mean"][0]) / info["std"][0]
    loaded = torch.jit.load(str(run / "alone.pt"))
    with torch.no_grad():
        assert torch.equal(loaded(x).argmax(1), model(x).argmax(1))
        assert (loaded(x) - model(x)).abs().max() <= 1e-4


def test_npz_weights_reproduce_the_numpy_network(runs):
    """The .npz holds every weight and the input encoding; a network built from it alone (plain
    NumPy, no deepstudy) predicts what `deepstudy predict` does."""
    run = runs["numpy"]
    api.export(run, format="npz")
    with np.load(run / "export" / "model.npz") as saved:
        arrays = dict(saved)
    point = np.array([[0.5, -0.25]])
    x = (point - arrays["input_mean"]) / arrays["input_std"]
    assert api.load_run(run).config["model"]["layers"].count("Sigmoid") == 2
    for i in (0, 2):  # Linear, Sigmoid, Linear, Sigmoid, Linear: the toy MLP
        x = 1 / (1 + np.exp(-(x @ arrays[f"{i}.W"] + arrays[f"{i}.b"])))
    logits = x @ arrays["4.W"] + arrays["4.b"]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    from deepstudy.rundir import RunDir
    from deepstudy.tasks import get_task
    row = get_task("scratch").predict(RunDir(run), ["0.5,-0.25"])[0]
    classes = api.load_run(run).config["data"]["classes"]
    assert probs[0, classes.index(row["top"][0]["class"])] == pytest.approx(row["top"][0]["probability"], abs=1e-5)


def test_a_failed_check_keeps_nothing(runs, monkeypatch, capsys, tmp_path):
    """With a tolerance no export can meet, the check fails: one line, exit 1, no file, no
    export/ folder, the run unchanged (so the check is a real one)."""
    from deepstudy import export
    monkeypatch.setattr(export, "TOLERANCE", -1.0)
    run = runs["forecast"]
    before = sorted(p for p in run.rglob("*"))
    assert main(["export", str(run), "--format", "torchscript", "--out", str(tmp_path / "sub" / "m.pt")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not match the model" in err[0] and "nothing was kept" in err[0]
    assert not (tmp_path / "sub").exists()
    assert sorted(p for p in run.rglob("*")) == before


def test_onnx_without_onnxruntime_is_refused_in_one_line(runs, monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    code = main(["export", str(runs["image"]), "--format", "onnx", "--out", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "onnxruntime" in err[0] and "deepstudy[export]" in err[0], err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "attention", "max"])
def test_unpacked_recurrent_classifier_computes_what_the_packed_one_does(cell, bidirectional, pooling):
    """The form a text RNN is exported in (no packed sequences) against the trained form, with
    two layers, on a batch whose sequences all end at different places."""
    from deepstudy.models import create_model
    torch.manual_seed(0)
    model = create_model("text_rnn", (50,), 6, cell=cell, hidden=16, embed_dim=8, layers=2,
                         bidirectional=bidirectional, pooling=pooling).eval()
    lengths = torch.tensor([7, 1, 4, 7, 2])
    ids = torch.randint(2, 50, (5, 7)).masked_fill(torch.arange(7) >= lengths.unsqueeze(1), 0)
    with torch.no_grad():
        assert (model.export_form()(ids, lengths) - model((ids, lengths))).abs().max() < 1e-5


def test_an_exporter_that_cannot_handle_the_model_fails_in_one_line(runs, monkeypatch, capsys, tmp_path):
    """An exporter's own failure (torch.export cannot trace a user's net, say) is one line and
    exit 1, names the other format, and writes nothing, not a traceback."""
    from deepstudy import export

    def cannot_trace(sample, path, reference):
        path.write_bytes(b"half a file")  # as if it had got partway
        raise RuntimeError("Could not guard on data-dependent expression\n  Eq(u0, 1)\n(see the docs)")
    monkeypatch.setitem(export.WRITERS, "torchscript", cannot_trace)
    run = runs["forecast"]
    before = sorted(p for p in run.rglob("*"))
    assert main(["export", str(run), "--format", "torchscript", "--out", str(tmp_path / "sub" / "m.pt")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "torchscript exporter failed" in err[0] and "RuntimeError" in err[0], err
    assert "data-dependent expression Eq(u0, 1)" in err[0] and "--format onnx" in err[0]
    assert not (tmp_path / "sub").exists()
    assert sorted(p for p in run.rglob("*")) == before
