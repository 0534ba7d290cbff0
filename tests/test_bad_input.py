"""Every command walked through wrong values and wrong files.  Each case must end in exit code 2
and exactly one line on stderr, no traceback; must leave no new file or folder behind; and must
not change a byte of the finished runs it was pointed at.

The cases are a table: (id, the command line, words the error line must hold).  `{image}`,
`{text}`, `{lm}`, `{series}`, `{linreg}`, `{toy}` stand for finished smoke-tier runs of each
kind, `{tmp}` for this case's own empty folder, `{bad}` for a folder of damaged copies and
hostile files (made once, below)."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepstudy import api
from deepstudy.cli import main
from deepstudy.errors import shown

from conftest import assert_one_line_refusal, make_handmade_root, snapshot

KINDS = {  # (recipe, extra options): smoke tier, the smallest run of each kind
    "image": ("lenet5-mnist", {"data.limit": 2000}),
    "text": ("trec-lstm", {}),
    "lm": ("shakespeare-char-lstm", {}),
    "series": ("airline-lstm", {}),
    "linreg": ("scratch-linreg", {}),
    "toy": ("scratch-mlp-toy", {}),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Finished runs of every kind, on hand-made data (the same on every machine), and a folder
    of bad files."""
    base = tmp_path_factory.mktemp("bad_input")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPSTUDY_OFFLINE", "1")
        mp.setenv("DEEPSTUDY_CACHE", str(base / "cache"))
        mp.delenv("DEEPSTUDY_DATA", raising=False)
        root = make_handmade_root(base)
        runs = {kind: api.run(recipe, tier="smoke", options=options, data_dir=root, out=base / "runs" / kind,
                              threads=1, progress=False, log=lambda m: None).run_dir
                for kind, (recipe, options) in KINDS.items()}
    bad = base / "bad"
    bad.mkdir()
    good = bad / "digit.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(good)
    (bad / "notes.png").write_text("this is text, not a picture")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(bad / "cut.jpg")
    (bad / "cut.jpg").write_bytes((bad / "cut.jpg").read_bytes()[:2000])
    (bad / "empty.png").write_bytes(b"")
    (bad / "a_file").write_text("not a folder")
    (bad / "empty_dir").mkdir()
    with open(bad / "plain.pkl", "wb") as f:  # a pickle that is not a state dict
        pickle.dump({"weights": [1, 2, 3]}, f)
    (bad / "cut.safetensors").write_bytes((runs["image"] / "model.safetensors").read_bytes()[:500])
    # damaged copies of finished runs: a truncated weights file, a damaged config.json, weights of
    # another model, a truncated checkpoint
    for name, source, damage in (
            ("cut_weights", "image", lambda d: _truncate(d / "model.safetensors", 300)),
            ("cut_config", "image", lambda d: (d / "config.json").write_text('{"recipe": "lenet5-mni')),
            ("wrong_weights", "image", lambda d: shutil.copy(runs["text"] / "model.safetensors", d / "model.safetensors")),
            ("cut_checkpoint", "image", lambda d: _truncate(d / "checkpoint.pt", 5000)),
            ("cut_lm_weights", "lm", lambda d: _truncate(d / "model.safetensors", 300)),
            ("no_vocab", "text", lambda d: (d / "vocab.json").unlink()),
            # a run that stopped after an epoch: weights and a checkpoint, no metrics.json
            ("unfinished", "image", lambda d: (d / "metrics.json").unlink())):
        shutil.copytree(runs[source], bad / name)
        damage(bad / name)
    # settings files (--config) that are wrong in every way a hand-written file can be
    for name, content in (("unknown_key.toml", "[train]\nepochs = 2\n[model]\nwidths = 3\n"),
                          ("type_error.toml", '[train]\nepochs = "many"\n'),
                          ("syntax.toml", "[train\nepochs =\n"),
                          ("other_recipe.toml", 'recipe = "trec-lstm"\n[train]\nepochs = 1\n'),
                          ("no_section.toml", "epochs = 3\n"),
                          ("list.yaml", "- train.epochs: 3\n"),
                          ("range.yaml", "train:\n  batch_size: 0\n")):
        (bad / name).write_text(content)
    (bad / "binary.toml").write_bytes(bytes(range(256)))
    # MNIST whose training labels were cut short (a download that stopped)
    raw = bad / "data_cut" / "MNIST" / "raw"
    shutil.copytree(root / "MNIST" / "raw", raw)
    _truncate(raw / "train-labels-idx1-ubyte.gz", 1000)
    return {**{k: str(v) for k, v in runs.items()}, "bad": str(bad), "root": str(root)}


def _truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


R = "--tier smoke --out {tmp}/out"  # a new run's common tail
CASES = [
    # ---- run: numbers out of range or not numbers
    ("batch-size 0", "run lenet5-mnist --batch-size 0 " + R, ["train.batch_size", "at least 1"]),
    ("batch-size negative", "run lenet5-mnist --batch-size -3 " + R, ["train.batch_size"]),
    ("batch-size not a number", "run lenet5-mnist --batch-size many " + R, ["--batch-size", "invalid int"]),
    ("epochs 0", "run lenet5-mnist --epochs 0 " + R, ["train.epochs", "at least 1"]),
    ("epochs negative", "run lenet5-mnist --epochs -1 " + R, ["train.epochs", "at least 1"]),
    ("epochs not a number", "run lenet5-mnist --epochs ten " + R, ["--epochs", "invalid int"]),
    ("lr negative", "run lenet5-mnist --lr -0.1 " + R, ["optim.lr"]),
    ("lr nan", "run lenet5-mnist --lr nan " + R, ["optim.lr"]),
    ("lr infinite", "run lenet5-mnist --lr 1e999 " + R, ["optim.lr"]),
    ("threads negative", "run lenet5-mnist --threads -1 " + R, ["train.threads"]),
    ("threads huge", "run lenet5-mnist --threads 100000 " + R, ["train.threads"]),
    ("seed negative", "run lenet5-mnist --seed -1 " + R, ["train.seed"]),
    ("tier unknown", "run lenet5-mnist --tier medium", ["invalid choice"]),
    ("set: unknown key", "run lenet5-mnist --set model.widths=3 " + R, ["unknown option model.widths"]),
    ("set: unknown section", "run lenet5-mnist --set nothing.here=1 " + R, ["nothing.here"]),
    ("set: no value", "run lenet5-mnist --set lr " + R, ["key=value"]),
    ("set: wrong type", "run mnist-mlp --set train.epochs=ten " + R, ["train.epochs", "an integer"]),
    ("set: unknown choice", "run mnist-mlp --set model.activation=swish " + R, ["one of relu"]),
    ("set: optimizer unknown", "run lenet5-mnist --set optim.name=adamw2 " + R, ["optim.name"]),
    ("set: precision unknown", "run lenet5-mnist --set train.precision=fp8 " + R, ["train.precision"]),
    ("set: list of words", "run mnist-mlp --set model.hidden=abc " + R, ["model.hidden"]),
    ("set: fraction above 1", "run lenet5-mnist --set data.val_fraction=1.5 " + R, ["data.val_fraction"]),
    ("set: fraction negative", "run lenet5-mnist --set data.val_fraction=-0.1 " + R, ["data.val_fraction"]),
    ("set: patience negative", "run lenet5-mnist --set train.patience=-2 " + R, ["train.patience"]),
    ("set: weight decay negative", "run lenet5-mnist --set optim.weight_decay=-1 " + R, ["optim.weight_decay"]),
    ("set: mixup on a language model", "run shakespeare-char-lstm --set train.mixup=0.2 " + R, ["mixup"]),
    ("unknown recipe", "run lenet-mnist " + R, ["unknown recipe", "lenet5-mnist"]),
    # ---- run: data and folders
    ("data-dir missing", "run lenet5-mnist --data-dir {tmp}/nonexistent " + R, ["--data-dir", "no such folder"]),
    ("data-dir is a file", "run lenet5-mnist --data-dir {bad}/a_file " + R, ["--data-dir", "no such folder"]),
    ("data-dir without the dataset", "run fashion-cnn --data-dir {bad}/empty_dir " + R, ["FashionMNIST not found"]),
    ("data-dir without MNIST: no quiet fallback", "run lenet5-mnist --data-dir {bad}/empty_dir " + R,
     ["MNIST not found", "only when no data root is named"]),
    ("data file cut short", "run lenet5-mnist --data-dir {bad}/data_cut " + R, ["train-labels-idx1-ubyte.gz"]),
    ("out is a file", "run lenet5-mnist --tier smoke --out {bad}/a_file", ["not a folder"]),
    ("out holds a run", "run lenet5-mnist --tier smoke --out {image}", ["already holds a run"]),
    ("device unknown", "run lenet5-mnist --device tpu " + R, ["tpu"]),
    # ---- run --resume
    ("resume without out", "run lenet5-mnist --resume", ["--resume needs --out"]),
    ("resume of a folder that is not a run", "run lenet5-mnist --resume --out {bad}/empty_dir", ["nothing to resume"]),
    ("resume of another recipe's run", "run mnist-mlp --resume --out {image}", ["lenet5-mnist"]),
    ("resume with a changed setting", "run lenet5-mnist --resume --out {image} --lr 0.5", ["cannot change optim.lr"]),
    ("resume with a truncated checkpoint", "run lenet5-mnist --resume --out {bad}/cut_checkpoint",
     ["checkpoint.pt", "truncated"]),
    ("resume of a NumPy run", "run scratch-linreg --resume --out {linreg}", ["nothing to resume"]),
    # ---- run --config FILE
    ("config: no such file", "run lenet5-mnist --config {tmp}/nope.toml " + R, ["nope.toml", "no such file"]),
    ("config: unknown key", "run lenet5-mnist --config {bad}/unknown_key.toml " + R, ["model.widths"]),
    ("config: type error", "run lenet5-mnist --config {bad}/type_error.toml " + R, ["train.epochs", "integer"]),
    ("config: not TOML", "run lenet5-mnist --config {bad}/syntax.toml " + R, ["not valid TOML", "line"]),
    ("config: another recipe's file", "run lenet5-mnist --config {bad}/other_recipe.toml " + R, ["trec-lstm"]),
    ("config: a key outside the sections", "run --config {bad}/no_section.toml " + R, ["'epochs'", "[train]"]),
    ("config: not text", "run --config {bad}/binary.toml " + R, ["UTF-8"]),
    ("config: YAML that is a list", "run --config {bad}/list.yaml " + R, ["[train] epochs = 5"]),
    ("config: YAML out of range", "run --config {bad}/range.yaml " + R, ["train.batch_size", "at least 1"]),
    # ---- run --from RUN_DIR
    ("from: a folder that is not a run", "run --from {bad}/empty_dir " + R, ["not a deepstudy run directory"]),
    ("from: a file", "run --from {bad}/a_file " + R, ["not a deepstudy run directory"]),
    ("from: a damaged config.json", "run --from {bad}/cut_config " + R, ["config.json"]),
    ("from: another recipe named", "run trec-lstm --from {image} " + R, ["lenet5-mnist", "leave the name out"]),
    ("from: with --resume", "run --from {image} --resume --out {tmp}/out", ["--resume cannot go with it"]),
    ("from: a changed setting out of range", "run --from {image} --set train.batch_size=0 " + R,
     ["train.batch_size", "at least 1"]),
    # ---- run: transfer weights
    ("weights missing", "run catsdogs-cifar-features --weights {tmp}/nope.pth " + R, ["nope.pth"]),
    ("weights a plain pickle", "run catsdogs-cifar-features --data-dir {root} --weights {bad}/plain.pkl " + R,
     ["plain.pkl", "not a state dict"]),
    ("weights truncated", "run catsdogs-cifar-features --data-dir {root} --weights {bad}/cut.safetensors " + R,
     ["cut.safetensors"]),
    ("weights on a recipe without a backbone", "run lenet5-mnist --weights {bad}/plain.pkl " + R, ["transfer"]),
    # ---- eval
    ("eval: not a run", "eval {bad}/empty_dir", ["not a deepstudy run directory"]),
    ("eval: no such folder", "eval {tmp}/nope", ["not a folder"]),
    ("eval: split unknown", "eval {image} --split train", ["invalid choice"]),
    ("eval: damaged config.json", "eval {bad}/cut_config", ["config.json is damaged"]),
    ("eval: truncated weights", "eval {bad}/cut_weights", ["model.safetensors", "damaged"]),
    ("eval: another model's weights", "eval {bad}/wrong_weights", ["do not fit"]),
    ("eval: data-dir missing", "eval {image} --data-dir {tmp}/nonexistent", ["no such folder"]),
    # ---- predict
    ("predict: missing file", "predict {image} {tmp}/absent.jpg", ["absent.jpg", "no such file"]),
    ("predict: not an image", "predict {image} {bad}/notes.png", ["notes.png", "not an image"]),
    ("predict: truncated image", "predict {image} {bad}/cut.jpg", ["cut.jpg", "not an image"]),
    ("predict: empty file", "predict {image} {bad}/empty.png", ["empty.png"]),
    ("predict: top 0", "predict {image} {bad}/digit.png --top 0", ["--top"]),
    ("predict: truncated weights", "predict {bad}/cut_weights {bad}/digit.png", ["damaged"]),
    ("predict: empty text", "predict {text} ''", ["empty text"]),
    ("predict: text run without its vocabulary", "predict {bad}/no_vocab 'Who wrote Hamlet?'", ["vocab.json"]),
    ("predict: not a number", "predict {linreg} abc", ["'abc'", "not a number"]),
    ("predict: nan", "predict {linreg} nan", ["'nan'"]),
    ("predict: three numbers for a point", "predict {toy} 1,2,3", ["'1,2,3'", "point"]),
    ("predict on a language model", "predict {lm} hello", ["generate"]),
    ("predict on a forecast", "predict {series} 1", ["forecast"]),
    # ---- generate
    ("generate on an image run", "generate {image}", ["language model"]),
    ("generate: length negative", "generate {lm} --length -5", ["--length"]),
    ("generate: length huge", "generate {lm} --length 1000000000", ["--length"]),
    ("generate: temperature 0", "generate {lm} --temperature 0", ["--temperature"]),
    ("generate: temperature nan", "generate {lm} --temperature nan", ["--temperature"]),
    ("generate: top-k negative", "generate {lm} --top-k -1", ["--top-k"]),
    ("generate: unseen characters", "generate {lm} --prompt 'h€llo'", ["never saw"]),
    ("generate: truncated weights", "generate {bad}/cut_lm_weights", ["damaged"]),
    # ---- forecast
    ("forecast: steps 0", "forecast {series} --steps 0", ["--steps"]),
    ("forecast: steps huge", "forecast {series} --steps 100000", ["--steps", "10,000"]),
    ("forecast: steps not a number", "forecast {series} --steps many", ["invalid int"]),
    ("forecast on an image run", "forecast {image}", ["forecasting run"]),
    # ---- export
    ("export: not a run", "export {bad}/empty_dir", ["not a deepstudy run directory"]),
    ("export: no such folder", "export {tmp}/nope", ["not a folder"]),
    ("export: unfinished run", "export {bad}/unfinished --format torchscript", ["unfinished run", "--resume"]),
    ("export: truncated weights", "export {bad}/cut_weights --format torchscript", ["model.safetensors", "damaged"]),
    ("export: truncated language-model weights", "export {bad}/cut_lm_weights --format torchscript", ["damaged"]),
    ("export: damaged config.json", "export {bad}/cut_config", ["config.json is damaged"]),
    ("export: unknown format", "export {image} --format tflite", ["'tflite'", "onnx, torchscript, npz"]),
    ("export: npz of a PyTorch run", "export {image} --format npz", ["PyTorch run", "onnx or torchscript"]),
    ("export: onnx of a NumPy run", "export {toy} --format onnx", ["NumPy run", "npz"]),
    ("export: torchscript of a NumPy run", "export {linreg} --format torchscript", ["NumPy run", "npz"]),
    ("export: out is a folder", "export {image} --format torchscript --out {tmp}", ["is a folder"]),
    ("export: data-dir missing", "export {image} --format torchscript --data-dir {tmp}/nonexistent", ["no such folder"]),
    # ---- the others
    ("gradcheck: seed not a number", "gradcheck --seed x", ["invalid int"]),
    ("gradcheck: seed negative", "gradcheck --seed -1", ["--seed"]),
    ("list: nothing matches", "list no-such-thing", ["no recipe matches"]),
    ("show: unknown recipe", "show lenet-mnist", ["unknown recipe"]),
    ("show: unknown key", "show lenet5-mnist --set model.widths=3", ["unknown option"]),
    ("no command", "", ["command"]),
]


def _argv(line: str, world: dict, tmp: Path) -> list[str]:
    import shlex
    return [a.format(tmp=tmp, **world) for a in shlex.split(line)]


@pytest.mark.parametrize("line,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_mistake_ends_in_one_line_and_changes_nothing(world, tmp_path, capsys, line, words):
    case = tmp_path / "case"
    case.mkdir()
    saved = {kind: snapshot(Path(world[kind])) for kind in KINDS}
    bad_before = snapshot(Path(world["bad"]))

    code = main(_argv(line, world, case))

    assert_one_line_refusal(code, *capsys.readouterr(), words)
    assert list(case.iterdir()) == [], "a refused command left files behind"
    for kind in KINDS:
        assert snapshot(Path(world[kind])) == saved[kind], f"the {kind} run was changed"
    assert snapshot(Path(world["bad"])) == bad_before


def test_there_are_at_least_sixty_cases():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


# ------------------------------------------------------------------ mixes of good and bad inputs

def test_predict_keeps_every_good_input_and_reports_each_bad_one(world, tmp_path, capsys):
    bad = Path(world["bad"])
    files = [str(bad / "digit.png"), str(tmp_path / "absent.png"), str(bad / "digit.png"), str(bad / "notes.png")]
    assert main(["predict", world["image"], *files]) == 2
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2 and all(line.startswith(files[0]) for line in out.splitlines())
    errors = err.strip().splitlines()
    assert len(errors) == 2 and "absent.png" in errors[0] and "notes.png" in errors[1]

    assert main(["predict", world["image"], *files, "--json"]) == 2
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["file"] for r in rows] == files  # in the order given, bad ones in their place
    assert ["error" in r for r in rows] == [False, True, False, True]
    assert all(len(r["top"]) == 3 for r in rows if "error" not in r)
    assert len(err.strip().splitlines()) == 1 and "2 of 4" in err


def test_text_that_is_not_utf8_is_refused_on_its_own_and_never_printed_raw(world, capsys):
    not_utf8 = b"caf\xe9 au lait?".decode("utf-8", "surrogateescape")  # what Python makes of Latin-1 argv
    assert main(["predict", world["text"], "Who wrote Hamlet?", not_utf8, "--json"]) == 2
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert "top" in rows[0] and "error" in rows[1]
    assert "not valid UTF-8" in rows[1]["error"] and rows[1]["text"] == shown(not_utf8)
    out.encode("utf-8")  # no lone surrogate reached the output
    assert "\\xe9" in out


# ------------------------------------------------------------------ what a failure leaves behind

def test_a_run_that_fails_after_making_its_folder_removes_it(world, tmp_path, capsys):
    """Data that fails its checksum is found only once the run has started: the folder it made
    goes again, and a folder the user made beforehand is left, empty, as it was."""
    out = tmp_path / "new" / "run"
    assert main(["run", "lenet5-mnist", "--tier", "smoke", "--data-dir", f"{world['bad']}/data_cut",
                 "--out", str(out)]) == 2
    assert not out.exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    assert main(["run", "lenet5-mnist", "--tier", "smoke", "--data-dir", f"{world['bad']}/data_cut",
                 "--out", str(mine)]) == 2
    assert mine.is_dir() and list(mine.iterdir()) == []
    capsys.readouterr()


def test_resume_removes_what_an_interrupted_write_left(world, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(world["image"], run)
    leftover = run / ".checkpoint.pt.abc123.tmp"
    leftover.write_bytes(b"half a checkpoint")
    api.run("lenet5-mnist", out=run, resume=True, progress=False, log=lambda m: None)
    assert not leftover.exists()


def test_every_file_of_a_run_is_readable_by_others(world):
    """model.safetensors once came out 0600 while the rest were 0644."""
    import os
    umask = os.umask(0)
    os.umask(umask)
    for path in Path(world["image"]).rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


def test_a_runaway_forecast_is_said_plainly(world, tmp_path, capsys, monkeypatch):
    """A free-running forecast whose values leave any plausible range for the series gets one
    warning line, and overflowing values are written as null, not as invalid JSON."""
    from deepstudy.data.series import SeriesData

    run = tmp_path / "run"
    shutil.copytree(world["series"], run)
    monkeypatch.setattr(SeriesData, "free_run", lambda self, model, start, steps: np.array(
        [400.0, 4e9, np.inf][:steps] + [np.inf] * max(0, steps - 3)))
    assert main(["forecast", str(run), "--steps", "4", "--json"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["forecast"] for r in rows] == [400.0, 4e9, None, None]
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "from step 2" in warnings[0]
    assert (run / "plots" / "forecast.png").stat().st_size > 0


def test_forecast_prints_every_value_with_the_same_decimals(world, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(world["series"], run)
    assert main(["forecast", str(run), "--steps", "6"]) == 0
    values = [line.split()[-1] for line in capsys.readouterr().out.splitlines()[:6]]
    assert len({len(v.split(".")[1]) if "." in v else 0 for v in values}) == 1, values
