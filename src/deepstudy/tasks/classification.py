"""Classification of images or of text: load the data, build the model, run the training loop,
then evaluate the validation-selected weights once on the test set and write the report.

Images and text share everything but three things, each in one place below: what an example
looks like in the report (an image grid, or a table of questions), how `predict` reads a
user's input (an image file, or a sentence), and the vocabulary a text run saves beside its
weights (vocab.json), which eval and predict read back."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..data.images import load_image
from ..data.tensors import Normalize
from ..data.text import TextClassificationData, Vocab, encode_texts
from ..errors import ConfigError, RunDirError, UserError
from ..models.summary import format_summary, summarize
from ..models.tta import has_views, view_count
from ..report.writers import (write_class_distribution, write_confusion, write_curves, write_per_class_accuracy,
                              write_prediction_grids, write_prediction_tables)
from ..rundir import RunDir
from ..train.checkpoint import load_weights
from ..train.loop import Paths, fit, predict_logits, uses_conv
from ..train.metrics import classification_report
from .base import Built, ExportSample, RunContext, Section, Task, predict_each, register_task, saved_config, shown
from .build import build_data, build_model, run_data, saved_vocab


@register_task
class Classification(Task):
    name = "classification"

    def build(self, ctx: RunContext) -> Built:
        cfg = ctx.cfg
        data = build_data(cfg, ctx.data_root, ctx.device, ctx.log, vocab=saved_vocab(ctx.run) if ctx.resume else None)
        if cfg.train.mixup and isinstance(data, TextClassificationData):
            raise ConfigError(f"train.mixup={cfg.train.mixup:g} blends inputs pixel by pixel; {data.name}'s inputs are "
                              f"token ids, which cannot be blended: leave train.mixup at 0")
        model = build_model(cfg, data.in_shape, len(data.classes)).to(ctx.device)
        # text: one real question (token ids and length); images: a zero image of in_shape will do
        example = data.example_input() if hasattr(data, "example_input") else None
        info = summarize(model, data.in_shape, ctx.device, example=example)
        unit = getattr(data, "unit", "images")
        title = f"{ctx.recipe.name}: {cfg.model.name} on {data.name}"
        intro = (f"{ctx.recipe.name} ({ctx.tier} tier) on {ctx.device}: {data.size('train'):,} training / "
                 f"{data.size('val'):,} validation / {data.size('test'):,} test {unit} from {data.source}; "
                 f"{info['trainable']:,} parameters, {info['flops'] / 1e6:.2f} MFLOPs per {unit[:-1]}")
        if has_views(model):  # the summary counts one view; evaluation runs the net on each
            intro += f" (x{view_count(model)} in evaluation: model.tta views)"
        if getattr(data, "note", ""):
            intro += f"\nnote: {data.note}"
        vocab = getattr(data, "vocab", None)
        return Built(data, model, format_summary(info, title), intro,
                     record={"data": data.info(), "model": {"trainable": info["trainable"],
                                                            "non_trainable": info["non_trainable"],
                                                            "flops_per_sample": info["flops"]}},
                     files={ctx.run.vocab: {"tokens": list(vocab.tokens)}} if vocab is not None else {})

    def fit(self, ctx: RunContext, built: Built):
        run = ctx.run
        return fit(built.model, built.data, ctx.cfg, Paths(run.checkpoint, run.weights, run.history),
                   resume=ctx.resume, log=ctx.log, progress=ctx.progress, world=ctx.world)

    def score(self, ctx: RunContext, built: Built, result) -> dict:
        # The weights chosen on validation meet the test set, once.  Their validation numbers
        # are already in the history: the best epoch was evaluated with them.
        # (With train.tta_every_epoch=false the epochs saw one view of each image: the kept
        # weights are validated again with the model's views, so val and test see one function.)
        model, data, t = built.model, built.data, ctx.cfg.train
        best = next(row for row in result.history if row["epoch"] == result.best_epoch)
        val = {"accuracy": best["val_accuracy"], "loss": best["val_loss"]}
        if not t.tta_every_epoch and has_views(model) and data.size("val"):
            again = evaluate_model(model, data, ctx.cfg, "val")
            val = {"accuracy": again["accuracy"], "loss": again["loss"], "views": view_count(model)}
            ctx.log(f"epoch {result.best_epoch}'s weights with the model's test-time views: "
                    f"val accuracy {100 * val['accuracy']:.2f}% (one view: {100 * best['val_accuracy']:.2f}%)")
        logits = predict_logits(model, data, "test", t.eval_batch_size, uses_conv(model), t.precision)
        report = classification_report(logits, data.labels("test"), data.classes)
        built.outputs.update(logits=logits, report=report)
        return {"val": val,
                "test": {"accuracy": report["accuracy"], "loss": report["loss"], "per_class": report["per_class"]}}

    def write_plots(self, ctx: RunContext, built: Built, result, metrics: dict) -> None:
        write_plots(ctx.run, result.history, built.outputs["report"], built.data, built.outputs["logits"],
                    recipe=ctx.recipe.name, kept=result.best_epoch, kept_val=kept_with_views(metrics))

    def headline(self, recipe, metrics: dict) -> str:
        return headline(recipe, metrics)

    def report_sections(self, saved: dict) -> list[Section]:
        return classification_sections(saved)

    def model_for(self, cfg, in_shape, num_classes: int) -> torch.nn.Module:
        """The network a finished run's settings describe (before its weights are loaded)."""
        return build_model(cfg, in_shape, num_classes)

    def load_model(self, run: RunDir, device="cpu"):
        saved = run.read_config()
        info = saved["data"]
        model = self.model_for(saved_config(self, saved), info["in_shape"], len(info["classes"])).to(device)
        load_weights(run.weights, model, device)
        model.eval()
        return model, saved

    def evaluate(self, run: RunDir, split: str, data_root, device, log=print) -> dict:
        model, saved = self.load_model(run, device)
        data = run_data(self, run, saved, data_root, log, device)
        return evaluate_model(model, data, saved_config(self, saved), split)

    def export_sample(self, run: RunDir, data_root, log=print) -> ExportSample:
        """Images: the default.  Text: the model takes (token ids, lengths), two inputs whose
        batch and length vary, and a recurrent one is exported in its unpacked form (checked
        against the trained, packed one)."""
        sample = dataclasses.replace(super().export_sample(run, data_root, log), output_names=["logits"])
        if run.read_config()["data"].get("kind") != "text":
            return sample
        trained = sample.model
        exported = trained.export_form() if hasattr(trained, "export_form") else _TupleInput(trained)
        return dataclasses.replace(sample, model=exported, reference=_TupleInput(trained),
                                   input_names=["ids", "lengths"], output_names=["logits"],
                                   dynamic=[{0: "batch", 1: "length"}, {0: "batch"}])

    def predict(self, run: RunDir, inputs: list[str], device="cpu", top: int = 3) -> list[dict]:
        """Image runs read image files; text runs read the inputs themselves as sentences."""
        model, saved = self.load_model(run, device)
        if saved["data"].get("kind") == "text":
            return predict_texts(model, saved, saved_vocab(run), inputs, device, top)
        return predict_images(model, saved, inputs, device, top)


def headline(recipe, metrics: dict) -> str:
    parts = [f"test accuracy {100 * metrics['test']['accuracy']:.2f}%"]
    if recipe.seed and recipe.seed.value is not None:
        parts.append(f"seed {100 * recipe.seed.value:.2f}%" + (f" ({recipe.seed.split})" if recipe.seed.split != "test" else ""))
    if recipe.published and recipe.published.value is not None:
        parts.append(f"published {100 * recipe.published.value:.2f}%")
    return parts[0] + ("  |  " + "  |  ".join(parts[1:]) if len(parts) > 1 else "")


def classification_sections(saved: dict) -> list[Section]:
    """What a classifier's report shows, in the order a reader asks: how training went, where it
    errs, on which classes, on which examples, and on what data."""
    text = saved.get("data", {}).get("kind") == "text"
    return [
        Section("Learning curves", ("plots/curves.png",)),
        Section("Confusion matrices", ("plots/confusion_matrix.png", "plots/confusion_matrix_normalized.png"),
                note="rows: the true class; columns: the predicted one (test split)"),
        Section("Per class", ("plots/per_class_accuracy.png",), table="test.per_class",
                note="test split; accuracy of a class is its recall"),
        # a text run's mistakes as a table: the questions whole (the picture cuts long ones), to read and copy
        Section("Most confident mistakes", ("plots/confident_mistakes.csv",), instead_of=("plots/confident_mistakes.png",))
        if text else Section("Most confident mistakes", ("plots/confident_mistakes.png",)),
        Section("Sample test predictions", ("plots/predictions.png", "plots/confidence.png")),
        Section("The data", ("plots/class_distribution.png",)),
    ]


def kept_with_views(metrics: dict) -> dict | None:
    """The kept weights' validation under the model's test-time views, when the epochs were
    validated on one view (train.tta_every_epoch=false): the curves' star (plots.curves)."""
    views = metrics.get("val", {}).get("views")
    return {**metrics["val"], "label": f"kept, {views} views"} if views else None


def write_plots(run: RunDir, history: list[dict], report: dict, data, logits: torch.Tensor,
                n_grid: int = 32, n_mistakes: int = 24, *, recipe: str = "", kept: int | None = None,
                kept_val: dict | None = None) -> None:
    classes = data.classes
    write_curves(run, history, recipe=recipe, kept=kept, kept_val=kept_val)
    write_confusion(run, report["confusion_matrix"], classes)
    write_per_class_accuracy(run, report, classes)
    probs = torch.softmax(logits.float(), 1).cpu().numpy()
    true = data.labels("test").cpu().numpy()
    if isinstance(data, TextClassificationData):
        write_prediction_tables(run, probs, true, data.test.texts, classes, n_grid, n_mistakes)
    else:
        write_prediction_grids(run, probs, true, _SplitImages(data, "test"), classes, n_grid, n_mistakes)
    counts = {s: torch.bincount(data.labels(s).cpu(), minlength=len(classes)).tolist() for s in ("train", "val", "test")}
    write_class_distribution(run, counts, classes, unit=getattr(data, "unit", "images"))


class _SplitImages:
    """A split's images, read only where the plots index them (a streamed dataset of image files
    is not in memory; the grids need a few dozen)."""

    def __init__(self, data, split: str):
        self.data, self.split = data, split

    def __getitem__(self, index) -> np.ndarray:
        return split_images(self.data, self.split, torch.as_tensor(index, dtype=torch.long))


def split_images(data, split: str, index: torch.Tensor) -> np.ndarray:
    """uint8 N x C x H x W images of a split, for the plots (a streamed dataset reads the files)."""
    if hasattr(data, "images"):
        return data.images(split, index).cpu().numpy()
    return getattr(data, split).images[index.to(data.labels(split).device)].cpu().numpy()


# ------------------------------------------------------------------ using a finished run

def evaluate_model(model: torch.nn.Module, data, cfg, split: str) -> dict:
    """A finished run's model (from any classification-like task) on one split of its data
    (tasks/build.run_data: as the model saw it); `cfg`: its settings."""
    logits = predict_logits(model, data, split, cfg.train.eval_batch_size, uses_conv(model), cfg.train.precision)
    report = classification_report(logits, data.labels(split), data.classes)
    return {"split": split, "count": data.size(split), "unit": getattr(data, "unit", "images"), "accuracy": report["accuracy"],
            "loss": report["loss"], "per_class": report["per_class"]}


@torch.inference_mode()
def predict_images(model: torch.nn.Module, saved: dict, inputs: list[str], device="cpu", top: int = 3) -> list[dict]:
    """Top classes for image files, each made into an input the way the run's data was made;
    a file that cannot be read gets its own error (predict_each)."""
    info = saved["data"]
    normalize = Normalize(tuple(info["mean"]), tuple(info["std"]))

    def read(path: str) -> torch.Tensor:
        return load_image(path, info["in_shape"], info.get("preprocess", "fit"), info.get("via", 0))

    def classify(images: list[torch.Tensor], names: list[str]) -> list[dict]:
        return top_classes(model(normalize(torch.stack(images).to(device))), names, "file", info["classes"], top)

    return predict_each(inputs, "file", read, classify)


def read_text(text: str) -> str:
    """A sentence to classify, refused on its own when it has no words or is not UTF-8."""
    if not text.strip():
        raise UserError("an empty text has no words to classify")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # bytes that were not UTF-8 reach Python as lone surrogates
        raise UserError(f"{shown(text)!r} is not valid UTF-8 text") from None
    return text


@torch.inference_mode()
def predict_texts(model: torch.nn.Module, saved: dict, vocab: list[str] | None, inputs: list[str], device="cpu",
                  top: int = 3) -> list[dict]:
    """Top classes for sentences, tokenised as the training questions were and looked up in
    the run's own vocabulary."""
    if not vocab:
        raise RunDirError("a text run without vocab.json: its inputs cannot be encoded")
    info = saved["data"]

    def classify(texts: list[str], shown_texts: list[str]) -> list[dict]:
        logits = model(encode_texts(texts, Vocab(vocab), info["tokenizer"]["lowercase"], device))
        return top_classes(logits, shown_texts, "text", info["classes"], top)

    return predict_each(inputs, "text", read_text, classify)


class _TupleInput(torch.nn.Module):
    """A text classifier, whose forward takes one (ids, lengths) pair, called with the two
    tensors as separate inputs, as exporters and exported files pass them."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model((ids, lengths))


def top_classes(logits: torch.Tensor, inputs: list[str], key: str, classes: list[str], top: int) -> list[dict]:
    probs = torch.softmax(logits.float(), 1).cpu()
    k = min(top, probs.shape[1])
    values, index = probs.topk(k, dim=1)
    return [{key: str(f), "top": [{"class": classes[i], "probability": round(float(p), 6)}
                                  for p, i in zip(values[n].tolist(), index[n].tolist())]}
            for n, f in enumerate(inputs)]
