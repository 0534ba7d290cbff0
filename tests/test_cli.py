"""The command line: the happy paths, and every user mistake ending in one clear line on
stderr with exit code 2 and no traceback."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from deepstudy import api
from deepstudy.tasks import resolve
from deepstudy.cli import main
from deepstudy.data.root import EMBEDDED
from deepstudy.data.vision import load_idx_family
from deepstudy.data import DataContext

from conftest import make_idx_family


def quiet(msg):
    pass


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """LeNet-5 on 20,000 real MNIST images for 2 epochs: good enough to read digits (~97%)."""
    out = tmp_path_factory.mktemp("runs") / "lenet"
    return api.run("lenet5-mnist", tier="smoke", epochs=2, options={"data.limit": 20000}, out=out,
                   progress=False, log=quiet)


def fails_cleanly(capsys, argv, *words):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("deepstudy 0.")


def test_list(capsys):
    from deepstudy.recipes import list_recipes

    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [r.name for r in list_recipes()]
    for name in names:  # one line each, starting with the name
        assert sum(line.split(" ", 1)[0] == name for line in lines) == 1, name
    assert max(map(len, lines)) <= 100, max(lines, key=len)  # fits a terminal
    headers = [line for line in lines if line.startswith("-- ")]
    assert len(headers) == len(set(headers)) == len({r.study for r in list_recipes()})  # each study once
    lenet = next(line for line in lines if line.startswith("lenet5-mnist "))
    assert "99.05%" in lenet  # the published LeNet-5 number beside ours
    assert main(["list", "fashion-*", "--markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("| study | recipe |") and "fashion-cnn" in md and "lenet5" not in md


def test_list_matches_part_of_a_name_or_a_glob(capsys):
    assert main(["list", "trec"]) == 0
    found = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:] if not line.startswith("--")]
    assert found == ["trec-attention", "trec-cnn", "trec-gru", "trec-lstm", "trec-rnn", "trec-transformer"]
    assert main(["list", "cifar-*-mini"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]] == ["cifar-alexnet-mini"]
    fails_cleanly(capsys, ["list", "nothing-like-this"], "no recipe matches")


def test_show_resolves_settings_without_training(capsys, monkeypatch):
    from deepstudy import recipes
    from deepstudy.tasks import classification

    # the name lenet5-mnist's task calls.  (Patching train.loop.fit instead, when this test ran
    # first, let classification's first import bind the stand-in for good: later tests failed.)
    monkeypatch.setattr(classification, "fit", lambda *a, **k: pytest.fail("show must not train"))
    assert main(["show", "lenet5-mnist", "--tier", "smoke", "--set", "optim.lr=0.02"]) == 0
    out = capsys.readouterr().out
    assert "published: 99.05%" in out and "seed: 99.03%" in out
    assert "  optim.lr = 0.02" in out and "  data.limit = 2000" in out and "  train.threads = 0" in out
    assert main(["show", "lenet5-mnist", "--json", "--set", "train.epochs=3"]) == 0
    shown = json.loads(capsys.readouterr().out)
    expected = resolve(recipes.get_recipe("lenet5-mnist"), "quick", {"train.epochs": "3"}).as_dict()
    assert shown == json.loads(json.dumps(expected)) and shown["train"]["epochs"] == 3
    fails_cleanly(capsys, ["show", "lenet5-mnist", "--set", "optim.lrr=1"], "optim.lrr", "did you mean optim.lr")
    fails_cleanly(capsys, ["show", "lenet5"], "unknown recipe", "lenet5-mnist")


def test_run_eval_predict(tmp_path, capsys, trained):
    out = tmp_path / "r"
    assert main(["run", "mnist-mlp", "--tier", "smoke", "--epochs", "1", "--set", "model.hidden=32",
                 "train.batch_size=64", "--out", str(out), "--no-progress", "--summary"]) == 0
    printed = capsys.readouterr().out
    assert f"run directory: {out}" in printed and "trainable parameters" in printed and "test accuracy" in printed
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["model"]["hidden"] == [32] and cfg["config"]["train"]["batch_size"] == 64

    assert main(["eval", str(trained.run_dir)]) == 0
    line = capsys.readouterr().out.strip()
    assert f"{100 * trained.metrics['test']['accuracy']:.2f}%" in line  # eval reproduces metrics.json
    assert main(["eval", str(trained.run_dir), "--split", "val"]) == 0
    assert f"{100 * trained.metrics['val']['accuracy']:.2f}%" in capsys.readouterr().out


def mnist_test_digits(n):
    arrays, _ = load_idx_family("mnist", DataContext(root=EMBEDDED))  # the copy inside the package
    return arrays["t10k-images-idx3-ubyte"][:n], arrays["t10k-labels-idx1-ubyte"][:n]


def test_predict_reads_photos_of_any_size_and_mode(tmp_path, capsys, trained):
    images, labels = mnist_test_digits(20)
    files = []
    for i, (img, label) in enumerate(zip(images, labels)):
        # as a user would have it: dark ink on a larger sheet of white paper, off centre, in
        # various formats and modes
        ink = Image.fromarray(255 - img).resize((28 * 6, 28 * 6), Image.BICUBIC)
        paper = Image.new("L", (240 + 5 * i, 200), 255)
        paper.paste(ink, (10 + 3 * i, 12))
        kind = i % 4
        if kind == 0:
            path = tmp_path / f"{i}.jpg"
            paper.convert("RGB").save(path, quality=90)
        elif kind == 1:
            path = tmp_path / f"{i}.png"
            rgba = Image.new("RGBA", paper.size, (0, 0, 0, 0))  # transparent background, ink only
            rgba.putalpha(Image.fromarray(255 - np.asarray(paper)))
            rgba.save(path)
        elif kind == 2:
            path = tmp_path / f"{i}.bmp"
            paper.convert("P").save(path)
        else:
            path = tmp_path / f"{i}.png"
            Image.fromarray(np.asarray(paper).astype(np.uint16) * 257).save(path)  # 16-bit greyscale
        files.append(str(path))
    assert main(["predict", str(trained.run_dir), *files, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["file"] for r in rows] == files
    for r in rows:
        assert len(r["top"]) == 3
        probs = [t["probability"] for t in r["top"]]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001
    correct = sum(int(r["top"][0]["class"]) == int(y) for r, y in zip(rows, labels))
    assert correct >= 17, f"only {correct}/20 photos of test digits read correctly"

    assert main(["predict", str(trained.run_dir), files[0]]) == 0
    assert capsys.readouterr().out.startswith(f"{files[0]}: ")


# ---------------------------------------------------------------------------- bad input

def test_unknown_recipe_suggests(capsys):
    fails_cleanly(capsys, ["run", "lenet-mnist"], "unknown recipe", "lenet5-mnist")


def test_unknown_set_key_lists_valid_ones(capsys):
    line = fails_cleanly(capsys, ["run", "mnist-mlp", "--set", "model.widths=3"], "unknown option model.widths")
    assert "model.hidden" in line and "model.activation" in line


def test_wrong_type(capsys):
    fails_cleanly(capsys, ["run", "mnist-mlp", "--set", "train.epochs=ten"], "train.epochs", "an integer")
    fails_cleanly(capsys, ["run", "mnist-mlp", "--set", "model.activation=swish"], "one of relu")
    fails_cleanly(capsys, ["run", "mnist-mlp", "--epochs", "ten"], "--epochs", "invalid int")


def test_bad_option_and_missing_argument(capsys):
    fails_cleanly(capsys, ["run", "mnist-mlp", "--tier", "medium"], "invalid choice")
    fails_cleanly(capsys, ["eval"], "run_dir")
    fails_cleanly(capsys, ["run", "mnist-mlp", "--set", "lr"], "key=value")


def test_missing_data(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    line = fails_cleanly(capsys, ["run", "fashion-cnn", "--tier", "smoke", "--data-dir", str(tmp_path / "empty"),
                                  "--out", str(tmp_path / "r")], "FashionMNIST not found", "train-images-idx3-ubyte.gz")
    assert str(tmp_path / "empty") in line


def test_corrupt_data_file(tmp_path, capsys):
    raw = tmp_path / "data" / "MNIST" / "raw"
    shutil.copytree(EMBEDDED / "MNIST" / "raw", raw)
    gz = raw / "train-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:1000])  # a download cut short
    fails_cleanly(capsys, ["run", "mnist-mlp", "--tier", "smoke", "--data-dir", str(tmp_path / "data"),
                           "--out", str(tmp_path / "r")], "train-labels-idx1-ubyte.gz", "checksum")


def test_corrupt_unpacked_file(tmp_path, capsys):
    raw = make_idx_family(tmp_path / "data", "FashionMNIST", n_train=50, n_test=20)
    path = raw / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:3000])  # a copy cut short
    fails_cleanly(capsys, ["run", "fashion-cnn", "--tier", "smoke", "--data-dir", str(tmp_path / "data"),
                           "--out", str(tmp_path / "r")], "t10k-images-idx3-ubyte", "truncated")


def test_predict_on_a_file_that_is_not_an_image(tmp_path, capsys, trained):
    bad = tmp_path / "notes.png"
    bad.write_text("this is text, not a picture")
    fails_cleanly(capsys, ["predict", str(trained.run_dir), str(bad)], "notes.png", "not an image")
    fails_cleanly(capsys, ["predict", str(trained.run_dir), str(tmp_path / "absent.jpg")], "no such file")


def test_predict_on_a_truncated_image(tmp_path, capsys, trained):
    path = tmp_path / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:2000])
    fails_cleanly(capsys, ["predict", str(trained.run_dir), str(path)], "cut.jpg", "not an image")


def test_eval_and_predict_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    fails_cleanly(capsys, ["eval", str(tmp_path)], "not a deepstudy run directory")
    fails_cleanly(capsys, ["predict", str(tmp_path), "x.png"], "not a deepstudy run directory")
    fails_cleanly(capsys, ["eval", str(tmp_path / "nope")], "not a folder")


def test_damaged_config_json(tmp_path, capsys, trained):
    run = tmp_path / "copy"
    shutil.copytree(trained.run_dir, run)
    (run / "config.json").write_text('{"recipe": "lenet5-mni')
    fails_cleanly(capsys, ["eval", str(run)], "config.json is damaged")


def test_resume_on_a_truncated_checkpoint(tmp_path, capsys, trained):
    run = tmp_path / "copy"
    shutil.copytree(trained.run_dir, run)
    ck = run / "checkpoint.pt"
    ck.write_bytes(ck.read_bytes()[:5000])
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    fails_cleanly(capsys, ["run", "lenet5-mnist", "--out", str(run), "--resume"], "checkpoint.pt", "truncated")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_resume_needs_out_and_a_run(tmp_path, capsys):
    fails_cleanly(capsys, ["run", "lenet5-mnist", "--resume"], "--resume needs --out")
    fails_cleanly(capsys, ["run", "lenet5-mnist", "--resume", "--out", str(tmp_path)], "nothing to resume")


def test_cuda_asked_for_without_cuda(tmp_path, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    fails_cleanly(capsys, ["run", "lenet5-mnist", "--tier", "smoke", "--device", "cuda", "--out", str(tmp_path / "r")],
                  "no CUDA device")


def test_the_installed_command_prints_one_line_and_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "deepstudy", "run", "no-such-recipe"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("deepstudy: error: unknown recipe 'no-such-recipe'")
