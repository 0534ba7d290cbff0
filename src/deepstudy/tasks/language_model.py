"""Character-level language models: load the text, build the model, train it with truncated
BPTT (train/lm_loop.py), evaluate the validation-selected weights on validation and, once, on
test, and write samples at several temperatures.

metrics.json keeps the classification runs' shape: {"recipe", "val": {...}, "test": {...}},
with `loss` in nats per character and `bpc` in bits per character instead of accuracy.
"""

from __future__ import annotations

import math

import torch

from ..config import RunConfig
from ..data.text import Vocab
from ..errors import ConfigError, RunDirError, UserError
from ..io import write_json, write_text
from ..models.summary import format_summary, summarize
from ..report.writers import write_curves
from ..rundir import RunDir
from ..train.checkpoint import load_weights
from ..train.lm_loop import evaluate as evaluate_split, fit_language_model
from ..train.loop import Paths
from .base import EXPORT_SPLIT, Built, ExportSample, RunContext, Section, Task, register_task, saved_config
from .build import build_data, build_model, saved_vocab

REPORT_TEMPERATURES = (0.2, 0.5, 1.0, 1.2)
REPORT_LENGTH = 500
REPORT_SEED = 0


@register_task
class LanguageModel(Task):
    name = "language_model"
    verbs = ("generate",)

    def check(self, cfg: RunConfig) -> None:
        if cfg.train.monitor != "val_loss":
            raise ConfigError("a language model is selected on its validation loss: set train.monitor=val_loss")
        if cfg.train.mixup:
            raise ConfigError(f"train.mixup={cfg.train.mixup:g}: mixup blends images of two classes; "
                              f"a language model has none")

    def build(self, ctx: RunContext) -> Built:
        cfg = ctx.cfg
        data = build_data(cfg, ctx.data_root, ctx.device, ctx.log, vocab=saved_vocab(ctx.run) if ctx.resume else None)
        model = build_model(cfg, data.in_shape, len(data.vocab)).to(ctx.device)
        info = summarize(model, data.in_shape, ctx.device, example=data.example_input())
        intro = (f"{ctx.recipe.name} ({ctx.tier} tier) on {ctx.device}: {data.size('train'):,} training / "
                 f"{data.size('val'):,} validation / {data.size('test'):,} test characters from {data.source}; "
                 f"{len(data.vocab)} distinct characters; {info['trainable']:,} parameters")
        return Built(data, model, format_summary(info, f"{ctx.recipe.name}: {cfg.model.name} on {data.name}"), intro,
                     record={"data": data.info(), "model": {"trainable": info["trainable"],
                                                            "non_trainable": info["non_trainable"]}},
                     files={ctx.run.vocab: {"tokens": list(data.vocab.tokens)}})

    def fit(self, ctx: RunContext, built: Built):
        run = ctx.run
        return fit_language_model(built.model, built.data, ctx.cfg, Paths(run.checkpoint, run.weights, run.history),
                                  resume=ctx.resume, log=ctx.log, progress=ctx.progress, world=ctx.world)

    def score(self, ctx: RunContext, built: Built, result) -> dict:
        # The weights chosen on validation meet the test set, once.
        model, data, streams = built.model, built.data, ctx.cfg.train.eval_batch_size
        val = evaluate_split(model, data, "val", streams)
        test = evaluate_split(model, data, "test", streams) if data.size("test") > 1 else {}
        return {"val": val, "test": test,
                "chars_per_second": result.history[-1]["chars_per_second"] if result.history else None}

    def write_plots(self, ctx: RunContext, built: Built, result, metrics: dict) -> None:
        data = built.data
        samples = write_report(ctx.run, result.history, built.model, data.vocab, data.prompt, ctx.device,
                               recipe=ctx.recipe.name, kept=result.best_epoch)
        ctx.log(f"sample at temperature 0.5 (all four in {ctx.run.samples}):\n{data.prompt}{samples['0.5'][:300]}")

    def headline(self, recipe, metrics: dict) -> str:
        return headline(recipe, metrics)

    metric = "loss"

    def metric_label(self, metric: str, metrics: dict) -> str:
        return "loss (nats/char)" if metric == "loss" else metric

    def report_sections(self, saved: dict) -> list[Section]:
        return [Section("Learning curves", ("plots/curves.png",)),
                Section("Samples", ("samples.txt",),
                        note="the same prompt and seed at each temperature: low ones repeat the likeliest phrases, "
                             "high ones invent words")]

    def load_model(self, run: RunDir, device="cpu"):
        saved = run.read_config()
        info = saved["data"]
        model = build_model(saved_config(self, saved), info["in_shape"], info["vocab_size"]).to(device)
        load_weights(run.weights, model, device)
        model.eval()
        return model, saved

    def evaluate(self, run: RunDir, split: str, data_root, device, log=print) -> dict:
        model, saved = self.load_model(run, device)
        cfg = saved_config(self, saved)
        data = build_data(cfg, data_root, device, log, vocab=saved_vocab(run))
        out = evaluate_split(model, data, split, cfg.train.eval_batch_size)
        return {"split": split, "count": data.size(split), "unit": data.unit, **out}

    @torch.no_grad()  # not inference_mode: its tensors cannot be traced by the exporters
    def export_sample(self, run: RunDir, data_root, log=print) -> ExportSample:
        """The model takes the recurrent state beside the characters and gives back the state
        after them, as generation needs.  Inputs: two consecutive windows of the validation text
        (the second with the state the model carried out of the first: a real state, not zeros),
        then one character with one stream's state (a generation step)."""
        model, saved = self.load_model(run, "cpu")
        data = self.export_data(run, saved, data_root, log)
        step = _LanguageModelStep(model)
        streams = 8
        windows = data.windows(EXPORT_SPLIT, streams)
        first, second = next(windows)[0], next(windows)[0]
        h0, c0 = (torch.zeros(model.lstm.num_layers, streams, model.lstm.hidden_size) for _ in range(2))
        _, h, c = step(first, h0, c0)
        inputs = [(first, h0, c0), (second, h, c), (second[:1, :1], h[:, :1].clone(), c[:, :1].clone())]
        return ExportSample(step, inputs, ["ids", "h", "c"], ["logits", "h_out", "c_out"],
                            [{0: "batch", 1: "length"}, {1: "batch"}, {1: "batch"}],
                            f"{EXPORT_SPLIT} split: two consecutive windows of {streams} x {first.shape[1]} "
                            f"characters (the second with the state carried out of the first), one character")

    def format_evaluation(self, recipe: str, out: dict) -> str:
        return (f"{recipe} {out['split']}: loss {out['loss']:.4f}  ({out['bpc']:.3f} bits/char)  "
                f"({out['count']:,} {out['unit']})")

    def generate(self, run: RunDir, prompt: str, length: int, temperature: float, top_k: int = 0, seed: int = 0,
                 device="cpu") -> str:
        check_sampling(length, temperature, top_k)
        model, _ = self.load_model(run, device)
        tokens = saved_vocab(run)
        if tokens is None:
            raise RunDirError(f"{run.path} has no vocab.json: its characters cannot be encoded")
        return sample(model, Vocab(tokens), prompt, length, temperature, top_k, seed, device)


class _LanguageModelStep(torch.nn.Module):
    """The character LSTM with its state as plain tensors: (ids, h, c) -> (logits, h, c)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        logits, (h, c) = self.model(ids, (h, c))
        return logits, h, c


def headline(recipe, metrics: dict) -> str:
    val = metrics["val"]
    parts = [f"validation loss {val['loss']:.4f} nats/char ({val['bpc']:.3f} bits/char)"]
    if metrics["test"]:
        parts[0] += f", test {metrics['test']['loss']:.4f}"
    if recipe.published and recipe.published.value is not None:
        parts.append(f"published {recipe.published.value:.2f} ({recipe.published.split})")
    return "  |  ".join(parts)


def write_report(run: RunDir, history: list[dict], model, vocab: Vocab, prompt: str, device, *,
                 recipe: str = "", kept: int | None = None) -> dict[str, str]:
    """Loss curves, and samples from the same prompt and seed at each report temperature: low
    temperatures repeat the likeliest phrases, high ones invent words."""
    write_curves(run, history, "training and validation loss (nats per character)", recipe=recipe, kept=kept)
    try:
        samples = {str(t): sample(model, vocab, prompt, REPORT_LENGTH, t, seed=REPORT_SEED, device=device)
                   for t in REPORT_TEMPERATURES}
    except UserError as e:  # a diverged run still finishes: its numbers and curves say what happened
        samples = {str(t): f"[no sample: {e}]" for t in REPORT_TEMPERATURES}
    write_json(run.path / "samples.json", {"prompt": prompt, "length": REPORT_LENGTH, "seed": REPORT_SEED,
                                           "samples": samples})
    text = []
    for t, s in samples.items():
        text += [f"--- temperature {t}, prompt {prompt!r}, seed {REPORT_SEED} ---", prompt + s, ""]
    write_text(run.samples, "\n".join(text))
    return samples


# ------------------------------------------------------------------ using a finished run

MAX_LENGTH = 100_000  # characters per `generate`: a book chapter; more is a typo, and minutes of CPU


def check_sampling(length: int, temperature: float, top_k: int) -> None:
    """Refuse sampling settings before the model is loaded."""
    if not 0 <= length <= MAX_LENGTH:
        raise UserError(f"--length must be between 0 and {MAX_LENGTH:,} characters, got {length:,}")
    if not (math.isfinite(temperature) and temperature > 0):  # written so that NaN fails too
        raise UserError(f"--temperature must be a number above 0, got {temperature}")
    if top_k < 0:
        raise UserError(f"--top-k must be 0 (off) or more, got {top_k}")


@torch.inference_mode()
def sample(model, vocab: Vocab, prompt: str, length: int, temperature: float, top_k: int = 0, seed: int = 0,
           device="cpu") -> str:
    """`length` characters after `prompt`, each drawn from the model's next-character
    distribution divided by `temperature` (below 1: safer, above: wilder), restricted to the
    `top_k` likeliest when top_k > 0.  The same seed gives the same text."""
    check_sampling(length, temperature, top_k)
    unknown = sorted(set(prompt) - set(vocab.tokens))
    if unknown:
        raise UserError(f"the prompt has characters this model never saw: {''.join(unknown)!r}")
    # an empty prompt starts from a line break, as a play's next speech would
    primer = prompt or ("\n" if "\n" in vocab else vocab.tokens[0])
    generator = torch.Generator().manual_seed(seed)
    model.eval()
    logits, state = model(torch.tensor([vocab.encode(primer)], device=device))
    out = []
    for _ in range(length):
        scores = logits[0, -1].float().cpu() / temperature
        if not torch.isfinite(scores).all():  # weights that went to NaN or inf in training
            raise UserError("the model's outputs are not finite numbers (its training diverged; a lower optim.lr "
                            "helps): there is nothing to sample")
        if top_k:
            kth = scores.topk(min(top_k, len(scores))).values[-1]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        next_id = torch.multinomial(torch.softmax(scores, 0), 1, generator=generator)
        out.append(int(next_id))
        logits, state = model(next_id.view(1, 1).to(device), state)
    return "".join(vocab.decode(out))


