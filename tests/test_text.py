"""Text: the tokenizer and vocabulary, TREC's reader on the real files and their quirks, packing
(padding never changes a prediction), the character corpus's windows, truncated BPTT's carried
state, sampling, and the language model's resume."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from deepstudy import api
from deepstudy.data import DataContext, load_dataset
from deepstudy.data.text import PAD, UNK, TokenBatch, TokenSequences, Vocab, encode_texts, token_batches, tokenize
from deepstudy.errors import DataError, UserError
from deepstudy.train.loop import native_bf16
from deepstudy.models import create_model
from deepstudy.tasks.language_model import sample
from deepstudy.train import lm_loop

from conftest import make_shakespeare, make_trec, shared_or_skip


def quiet(msg):
    pass


# ------------------------------------------------------------------ tokenizer and vocabulary

def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("Who wrote Hamlet's play, \"The Mousetrap\"?") == \
        ["who", "wrote", "hamlet", "'s", "play", ",", '"', "the", "mousetrap", '"', "?"]
    assert tokenize("What is the full form of .com ?") == ["what", "is", "the", "full", "form", "of", ".", "com", "?"]
    assert tokenize("How far is it to NYC ?", lowercase=False)[-2] == "NYC"
    assert tokenize("sister\xf0city") == ["sister\xf0city"]  # TREC's raw 0xF0 byte stays inside its word


def test_vocabulary_min_freq_pad_unk_and_order():
    seqs = [["b", "a", "c"], ["a", "b"], ["a", "d"]]
    vocab = Vocab.build(seqs, min_freq=2)
    assert vocab.tokens == (PAD, UNK, "a", "b")  # most frequent first; c and d seen once
    assert vocab.encode(["a", "c", "b", "zebra"]) == [2, 1, 3, 1]
    assert Vocab.build(seqs, min_freq=1).tokens == (PAD, UNK, "a", "b", "c", "d")  # ties alphabetical
    with pytest.raises(KeyError):
        Vocab(("a", "b")).encode(["z"])  # a character vocabulary has no <unk>


def test_batches_are_cut_to_their_longest_sequence_and_shuffle_reproducibly():
    vocab = Vocab.build([["a", "b", "c"]])
    seqs = TokenSequences.encode([["a"], ["a", "b", "c"], ["b"], ["c", "c"]], [0, 1, 0, 1], ["a", "abc", "b", "cc"], vocab)
    assert seqs.ids.shape == (4, 3)
    (x1, y1), (x2, y2) = token_batches(seqs, 2)
    assert x1.ids.shape == (2, 3) and x2.ids.shape == (2, 2)  # the second batch has no 3-token question
    assert x2.lengths.tolist() == [1, 2] and y2.tolist() == [0, 1]
    order = [b[1].tolist() + b[0].lengths.tolist() for b in token_batches(seqs, 2, torch.Generator().manual_seed(3))]
    again = [b[1].tolist() + b[0].lengths.tolist() for b in token_batches(seqs, 2, torch.Generator().manual_seed(3))]
    assert order == again


# ------------------------------------------------------------------ TREC

def test_trec_real_files_keep_their_quirks_and_counts():
    root = shared_or_skip("trec").parent
    notes = []
    data = load_dataset("trec", DataContext(root=root, log=notes.append), val_fraction=0.1)
    assert data.classes == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert (data.size("train"), data.size("val"), data.size("test")) == (4907, 545, 500)
    # the dataset README's class counts: train (train + val together) and test
    train_counts = [a + b for a, b in zip(data.train.class_counts(6), data.val.class_counts(6))]
    assert train_counts == [86, 1162, 1250, 1223, 835, 896]
    assert data.test.class_counts(6) == [9, 138, 94, 65, 81, 113]
    assert not notes and data.info()["note"] == ""  # canonical bytes: no warning
    texts = data.train.texts + data.val.texts
    assert any("sister\xf0city" in t for t in texts)  # line 66's raw byte, as Latin-1
    assert any(t.endswith("for 1 , CD NNS IN NNP NNP NNP .") for t in texts)  # line 80's stray POS tags
    # the vocabulary comes from the training split only: some validation words are unknown to it
    assert 0.85 < data.info()["known_token_share"]["val"] < 1 and data.info()["known_token_share"]["train"] == 1

    fine = load_dataset("trec", DataContext(root=root), labels="fine")
    assert len(fine.classes) == 50 and "HUM:ind" in fine.classes and fine.name == "trec_fine"


def test_trec_missing_files_say_where_to_get_them(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("trec", DataContext(root=tmp_path))
    message = str(e.value)
    assert "train_5500.label" in message and str(tmp_path / "trec") in message and "cogcomp" in message


def test_trec_other_copies_are_used_with_a_note_and_bad_lines_named(tmp_path):
    folder = make_trec(tmp_path, n_train=60, n_test=20)
    notes = []
    data = load_dataset("trec", DataContext(root=tmp_path, log=notes.append))
    assert "not the canonical" in data.info()["note"] and notes
    (folder / "TREC_10.label").write_text("DESC:def What is an atom ?\nno label here\n", encoding="latin-1")
    with pytest.raises(DataError, match="TREC_10.label line 2"):
        load_dataset("trec", DataContext(root=tmp_path))


def test_a_saved_vocabulary_is_reused():
    root = shared_or_skip("trec").parent
    vocab = [PAD, UNK, "who", "?"]
    data = load_dataset("trec", DataContext(root=root, vocab=vocab), limit=50)
    assert data.vocab.tokens == tuple(vocab) and int(data.train.ids.max()) <= 3


# ------------------------------------------------------------------ packing

@pytest.mark.parametrize("options", [
    {"name": "text_rnn", "cell": "lstm"}, {"name": "text_rnn", "cell": "gru", "bidirectional": True, "pooling": "max"},
    {"name": "text_rnn", "cell": "rnn", "bidirectional": True, "pooling": "attention", "layers": 2},
    {"name": "text_transformer"}, {"name": "text_cnn"},
], ids=["lstm", "bigru-max", "birnn-attention", "transformer", "cnn"])
def test_padding_never_changes_a_prediction(options):
    options = dict(options)
    torch.manual_seed(0)
    model = create_model(options.pop("name"), (50,), 6, **options).eval()
    short = torch.tensor([[5, 9, 3]])
    alone = model(TokenBatch(short, torch.tensor([3])))
    # the same question padded to 8 and batched beside a longer one
    ids = torch.zeros(2, 8, dtype=torch.long)
    ids[0, :3] = short
    ids[1] = torch.randint(2, 50, (8,))
    together = model(TokenBatch(ids, torch.tensor([3, 8])))
    assert torch.allclose(alone[0], together[0], atol=1e-5)
    ids[0, 3:] = 7  # junk after the end: never read
    assert torch.allclose(alone[0], model(TokenBatch(ids, torch.tensor([3, 8])))[0], atol=1e-5)


def test_cnn_padding_and_batch_width_never_change_a_prediction():
    """Kim's CNN takes the max over time: windows of padding alone would add ReLU(bias) to it, in
    a number that depends on the batch; they are left out, and what lies past a sentence's end is
    never read."""
    torch.manual_seed(0)
    model = create_model("text_cnn", (50,), 6).eval()
    lengths = torch.tensor([4, 2, 7])
    ids = torch.zeros(3, 7, dtype=torch.long)
    for row, n in enumerate(lengths.tolist()):
        ids[row, :n] = torch.randint(2, 50, (n,))
    with torch.no_grad():
        tight = model(TokenBatch(ids, lengths))
        for extra in (1, 5, 30):
            padded = torch.cat([ids, torch.zeros(3, extra, dtype=torch.long)], dim=1)
            assert torch.allclose(tight, model(TokenBatch(padded, lengths)), atol=1e-5), extra
        alone = [model(TokenBatch(ids[row:row + 1, :n], lengths[row:row + 1]))
                 for row, n in enumerate(lengths.tolist())]
    assert torch.allclose(tight, torch.cat(alone), atol=1e-5)


def test_cnn_reads_a_one_word_question():
    """Shorter than every filter (widths 3, 4, 5): the wide convolutions still give each width
    windows that hold the word."""
    torch.manual_seed(0)
    model = create_model("text_cnn", (50,), 6).eval()
    with torch.no_grad():
        out = model(TokenBatch(torch.tensor([[7]]), torch.tensor([1])))
        other = model(TokenBatch(torch.tensor([[8]]), torch.tensor([1])))
    assert out.shape == (1, 6) and torch.isfinite(out).all()
    assert not torch.allclose(out, other)  # the word itself is read
    vocab = Vocab.build([["who", "?"]])
    assert model(encode_texts(["Who"], vocab)).shape == (1, 6)  # one token, as predict encodes it


def test_encode_texts_uses_the_runs_tokenizer():
    vocab = Vocab.build([["who", "wrote", "hamlet", "?"]])
    batch = encode_texts(["Who wrote Hamlet?", "Who?"], vocab)
    assert batch.lengths.tolist() == [4, 2]
    assert vocab.tokens[2:] == ("?", "hamlet", "who", "wrote")
    assert batch.ids.tolist() == [[4, 5, 3, 2], [4, 2, 0, 0]]


# ------------------------------------------------------------------ characters and truncated BPTT

def char_corpus(tmp_path, **options):
    make_shakespeare(tmp_path, chars=20_000)
    return load_dataset("tinyshakespeare", DataContext(root=tmp_path, log=quiet), **options)


def test_char_corpus_split_is_contiguous_and_windows_continue_each_stream(tmp_path):
    data = char_corpus(tmp_path, window=10)
    text = (tmp_path / "tinyshakespeare" / "input.txt").read_text()
    assert data.size("train") + data.size("val") + data.size("test") == len(text)
    joined = "".join(data.vocab.decode(torch.cat([data.train, data.val, data.test]).tolist()))
    assert joined == text  # in order, nothing shuffled or lost
    assert data.vocab.tokens == tuple(sorted(set(text[:data.size("train")])))
    windows = list(data.windows("val", 4))
    assert len(windows) == data.steps("val", 4)
    stream = torch.cat([x for x, _ in windows], dim=1)  # row b: stream b read in order
    targets = torch.cat([y for _, y in windows], dim=1)
    length = (data.size("val") - 1) // 4
    for b in range(4):
        assert torch.equal(stream[b], data.val[b * length:(b + 1) * length])
        assert torch.equal(targets[b], data.val[b * length + 1:(b + 1) * length + 1])


def test_carrying_the_state_across_windows_is_what_training_sees(tmp_path):
    """Evaluation reads windows with the state carried: the same loss as reading each stream
    in one go, which a reset state at every window would not give."""
    data = char_corpus(tmp_path, window=7)
    torch.manual_seed(0)
    model = create_model("char_lstm", data.in_shape, len(data.vocab), hidden=32).eval()
    carried = lm_loop.evaluate(model, data, "val", 2)["loss"]
    length = (data.size("val") - 1) // 2
    x = data.val[:2 * length].view(2, length)
    y = data.val[1:2 * length + 1].view(2, length)
    with torch.no_grad():
        whole = torch.nn.functional.cross_entropy(model(x)[0].flatten(0, 1), y.flatten()).item()
        reset = sum(torch.nn.functional.cross_entropy(model(xw)[0].flatten(0, 1), yw.flatten(), reduction="sum").item()
                    for xw, yw in data.windows("val", 2)) / y.numel()
    assert carried == pytest.approx(whole, rel=1e-5)
    assert abs(reset - whole) > 1e-4


def test_sampling_is_seeded_and_checks_its_arguments(tmp_path):
    data = char_corpus(tmp_path)
    torch.manual_seed(0)
    model = create_model("char_lstm", data.in_shape, len(data.vocab), hidden=16).eval()
    a = sample(model, data.vocab, "ROMEO:", 50, 1.0, seed=1)
    assert len(a) == 50 and a == sample(model, data.vocab, "ROMEO:", 50, 1.0, seed=1)
    assert a != sample(model, data.vocab, "ROMEO:", 50, 1.0, seed=2)
    # top-k 1 is greedy: the seed no longer matters
    assert sample(model, data.vocab, "ROMEO:", 30, 1.0, top_k=1, seed=1) == sample(model, data.vocab, "ROMEO:", 30, 1.0, top_k=1, seed=9)
    with pytest.raises(UserError, match="never saw"):
        sample(model, data.vocab, "ROMEO: ☃", 5, 1.0)
    with pytest.raises(UserError, match="temperature"):
        sample(model, data.vocab, "R", 5, 0.0)


def test_language_model_resume_ends_like_an_uninterrupted_run(tmp_path, monkeypatch):
    make_shakespeare(tmp_path / "data", chars=30_000)
    common = dict(tier="smoke", data_dir=tmp_path / "data", progress=False, log=quiet,
                  options={"data.limit": 0, "model.hidden": 32})
    full = api.run("shakespeare-char-lstm", out=tmp_path / "full", epochs=2, **common)

    real_evaluate = lm_loop.evaluate
    calls = {"n": 0}

    def crash_in_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(lm_loop, "evaluate", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        api.run("shakespeare-char-lstm", out=tmp_path / "cut", epochs=2, **common)
    monkeypatch.setattr(lm_loop, "evaluate", real_evaluate)
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["epoch"] == 1

    resumed = api.run("shakespeare-char-lstm", out=tmp_path / "cut", resume=True, data_dir=tmp_path / "data",
                      progress=False, log=quiet)
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("seconds", "chars_per_second")} for r in h]  # noqa: E731
    assert strip(resumed.history) == strip(full.history)
    assert resumed.metrics["val"] == full.metrics["val"] and resumed.metrics["test"] == full.metrics["test"]
    a, b = load_file(str(full.run_dir / "model.safetensors")), load_file(str(resumed.run_dir / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (full.run_dir / "samples.txt").read_text() == (resumed.run_dir / "samples.txt").read_text()
    saved = json.loads((full.run_dir / "vocab.json").read_text())["tokens"]
    assert saved == sorted(saved) and len(saved) == full.config["data"]["vocab_size"]
    assert math.isfinite(full.metrics["test"]["loss"])


@pytest.mark.skipif(not native_bf16(torch.device("cpu")),
                    reason="this CPU has no native bf16: oneDNN cannot run an LSTM in bf16 here (refused by "
                           "test_behaviour's precision tests)")
def test_bf16_autocast_trains_a_language_model_like_fp32(tmp_path):
    make_shakespeare(tmp_path / "data", chars=20_000)
    common = dict(tier="smoke", data_dir=tmp_path / "data", progress=False, log=quiet)
    runs = {p: api.run("shakespeare-char-lstm", out=tmp_path / p, options={"data.limit": 0, "model.hidden": 32,
                                                                           "train.precision": p}, **common)
            for p in ("fp32", "bf16")}
    fp32, bf16 = (runs[p].metrics["val"]["loss"] for p in ("fp32", "bf16"))
    assert bf16 < 0.8 * math.log(runs["bf16"].config["data"]["vocab_size"])  # it learns
    assert bf16 == pytest.approx(fp32, abs=0.1) and bf16 != fp32  # bf16 products: close, not identical
    assert load_file(str(runs["bf16"].run_dir / "model.safetensors"))["head.weight"].dtype == torch.float32


# ------------------------------------------------------------------ the command line

@pytest.fixture(scope="module")
def text_root(tmp_path_factory):
    from conftest import SHARED
    if (SHARED / "trec").exists() and (SHARED / "tinyshakespeare").exists():
        return SHARED
    root = tmp_path_factory.mktemp("data")
    make_trec(root)
    make_shakespeare(root)
    return root


@pytest.fixture(scope="module")
def trec_run(tmp_path_factory, text_root):
    return api.run("trec-lstm", tier="smoke", data_dir=text_root, out=tmp_path_factory.mktemp("runs") / "trec",
                   progress=False, log=quiet)


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory, text_root):
    return api.run("shakespeare-char-lstm", tier="smoke", data_dir=text_root,
                   out=tmp_path_factory.mktemp("runs") / "lm", progress=False, log=quiet)


def one_line_error(capsys, argv, *words):
    from deepstudy.cli import main
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


def test_predict_reads_questions_and_eval_reproduces_the_metrics(capsys, trec_run, text_root):
    from deepstudy.cli import main
    run = str(trec_run.run_dir)
    assert main(["predict", run, "Who invented the telephone ?", "What is the meaning of life?"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Who invented the telephone ?  ->  HUM ") and lines[0].count("%") == 3
    assert main(["predict", run, "Who invented the telephone ?", "--json", "--top", "6"]) == 0
    item = json.loads(capsys.readouterr().out)
    assert item["text"] == "Who invented the telephone ?" and len(item["top"]) == 6
    assert sum(t["probability"] for t in item["top"]) == pytest.approx(1, abs=1e-4)
    assert main(["eval", run, "--data-dir", str(text_root)]) == 0
    assert f"accuracy {100 * trec_run.metrics['test']['accuracy']:.2f}%" in capsys.readouterr().out
    saved = json.loads((trec_run.run_dir / "vocab.json").read_text())["tokens"]
    assert saved[:2] == [PAD, UNK] and len(saved) == trec_run.config["data"]["vocab_size"]
    rows = {p.name for p in (trec_run.run_dir / "plots").iterdir()}
    assert {"predictions.png", "predictions.csv", "confusion_matrix.png", "class_distribution.png"} <= rows
    assert "text" in (trec_run.run_dir / "plots" / "predictions.csv").read_text().splitlines()[0]
    assert trec_run.plot_predictions() is not None  # the notebook view of the same table


def test_text_run_mistakes(capsys, trec_run, lm_run):
    one_line_error(capsys, ["predict", trec_run.run_dir, "   "], "empty text")
    one_line_error(capsys, ["generate", trec_run.run_dir], "generate needs a language model")
    one_line_error(capsys, ["predict", lm_run.run_dir, "ROMEO:"], "deepstudy generate")
    one_line_error(capsys, ["generate", lm_run.run_dir, "--prompt", "ROMEO: ☃"], "never saw", "☃")
    one_line_error(capsys, ["generate", lm_run.run_dir, "--temperature", "0"], "temperature")


def test_generate_and_eval_a_language_model(capsys, lm_run, text_root):
    from deepstudy.cli import main
    run = str(lm_run.run_dir)
    args = ["generate", run, "--prompt", "ROMEO:", "--length", "80", "--temperature", "0.5", "--seed", "3"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 80 + 1  # and print's newline
    assert main(args) == 0 and capsys.readouterr().out == text  # same seed, same text
    assert main(args[:-1] + ["4", "--top-k", "5"]) == 0 and capsys.readouterr().out != text
    assert lm_run.generate("ROMEO:", length=80, temperature=0.5, seed=3) == text[len("ROMEO:"):-1]
    assert main(["eval", run, "--split", "val", "--data-dir", str(text_root)]) == 0
    out = capsys.readouterr().out
    assert f"loss {lm_run.metrics['val']['loss']:.4f}" in out and "bits/char" in out and "characters" in out
    samples = (lm_run.run_dir / "samples.txt").read_text()
    assert all(f"temperature {t}," in samples for t in (0.2, 0.5, 1.0, 1.2))


def test_missing_text_data_is_one_line(capsys, tmp_path):
    one_line_error(capsys, ["run", "trec-gru", "--tier", "smoke", "--data-dir", tmp_path, "--out", tmp_path / "a"],
                   "TREC not found", "cogcomp")
    one_line_error(capsys, ["run", "shakespeare-char-lstm", "--tier", "smoke", "--data-dir", tmp_path,
                            "--out", tmp_path / "b"], "tiny Shakespeare not found", "input.txt")
