"""Classification of images or of text: load the data, build the model, run the training loop,
then evaluate the validation-selected weights once on the test set and write the report.

Images and text share everything but three things, each in one place below: what an example
looks like in the report (an image grid, or a table of questions), how `predict` reads a
user's input (an image file, or a sentence), and the vocabulary a text run saves beside its
weights (vocab.json), which eval and predict read back."""

from __future__ import annotations

import time

import numpy as np
import torch

from ..data.images import load_image
from ..data.tensors import Normalize
from ..data.text import TextClassificationData, Vocab, encode_texts
from ..errors import RunDirError, UserError
from ..io import read_json, write_csv, write_json, write_text
from ..models.summary import format_summary, summarize
from ..report import plots
from ..machine import hardware
from ..rundir import RunDir, versions
from ..train.checkpoint import load_weights
from ..train.loop import Paths, fit, predict_logits, uses_conv
from ..train.metrics import classification_report
from . import RunContext, build_data, build_model  # noqa: F401  (api.py imports build_data from here)


def saved_vocab(run: RunDir) -> list[str] | None:
    """The tokens of a text run's vocab.json (None for image runs)."""
    if not run.vocab.is_file():
        return None
    try:
        return list(read_json(run.vocab)["tokens"])
    except (ValueError, KeyError, TypeError) as e:
        raise RunDirError(f"{run.vocab} is damaged ({type(e).__name__}: {e})") from None


def train(ctx: RunContext) -> dict:
    started = time.time()
    cfg, run, log, world = ctx.cfg, ctx.run, ctx.log, ctx.world
    torch.manual_seed(cfg["train"]["seed"])  # the model's initial weights
    data = build_data(cfg, ctx.data_root, ctx.device, log, vocab=saved_vocab(run) if ctx.resume else None)
    model = build_model(cfg, data.in_shape, len(data.classes)).to(ctx.device)
    if world.distributed:
        torch.manual_seed(cfg["train"]["seed"] + world.rank)  # each rank its own dropout masks

    # text: one real question (token ids and length); images: a zero image of in_shape will do
    example = data.example_input() if hasattr(data, "example_input") else None
    info = summarize(model, data.in_shape, ctx.device, example=example)
    unit = getattr(data, "unit", "images")
    title = f"{ctx.recipe.name}: {cfg['model']['name']} on {data.name}"
    if world.main:
        write_text(run.summary, format_summary(info, title))
    if ctx.show_summary:
        log(format_summary(info, title))
    if not ctx.resume and world.main:
        write_json(run.config, {
            "recipe": ctx.recipe.name, "tier": ctx.tier, "task": ctx.recipe.task, "config": cfg,
            "data": data.info(), "model": {"trainable": info["trainable"], "non_trainable": info["non_trainable"],
                                           "flops_per_sample": info["flops"]},
            "device": str(ctx.device), "processes": world.size,
            "data_root": str(ctx.data_root), "hardware": hardware(), "versions": versions(), **ctx.meta,
        })
        if getattr(data, "vocab", None) is not None:
            write_json(run.vocab, {"tokens": list(data.vocab.tokens)})
    log(f"{ctx.recipe.name} ({ctx.tier} tier) on {ctx.device}" + (f" x {world.size} processes" if world.distributed else "")
        + f": {data.size('train'):,} training / {data.size('val'):,} validation / {data.size('test'):,} test {unit} "
        f"from {data.source}; {info['trainable']:,} parameters, {info['flops'] / 1e6:.2f} MFLOPs per {unit[:-1]}")
    if getattr(data, "note", ""):
        log(f"note: {data.note}")

    result = fit(model, data, cfg, Paths(run.checkpoint, run.weights, run.history),
                 resume=ctx.resume, log=log, progress=ctx.progress, world=world)
    if not world.main:
        return {}  # rank 0 evaluates and reports

    # The weights chosen on validation are the ones that meet the test set, once.  Their
    # validation numbers are already in the history: the best epoch was evaluated with them.
    load_weights(run.weights, model, ctx.device)
    bs, cl, precision = cfg["train"]["eval_batch_size"], uses_conv(model), cfg["train"]["precision"]
    best = next(row for row in result.history if row["epoch"] == result.best_epoch)
    val = {"accuracy": best["val_accuracy"], "loss": best["val_loss"]}
    logits = predict_logits(model, data, "test", bs, cl, precision)
    report = classification_report(logits, data.labels("test"), data.classes)
    metrics = {
        "recipe": ctx.recipe.name, "tier": ctx.tier, "task": "classification",
        "val": {"accuracy": val["accuracy"], "loss": val["loss"]},
        "test": {"accuracy": report["accuracy"], "loss": report["loss"], "per_class": report["per_class"]},
        "best_epoch": result.best_epoch, "epochs_run": len(result.history), "stopped_early": result.stopped_early,
        "train_seconds": sum(r["seconds"] for r in result.history),
        "data": data.name, "data_source": data.source, "data_note": data.note, "device": str(ctx.device),
        "processes": world.size, "hardware": hardware(),
    }
    write_plots(run, result.history, report, data, logits)
    # written last: a run directory with metrics.json is a finished one
    metrics["wall_seconds"] = time.time() - started
    write_json(run.metrics, metrics)
    log(headline(ctx.recipe, metrics))
    return metrics


def headline(recipe, metrics: dict) -> str:
    parts = [f"test accuracy {100 * metrics['test']['accuracy']:.2f}%"]
    if recipe.seed and recipe.seed.value is not None:
        parts.append(f"seed {100 * recipe.seed.value:.2f}%" + (f" ({recipe.seed.split})" if recipe.seed.split != "test" else ""))
    if recipe.published and recipe.published.value is not None:
        parts.append(f"published {100 * recipe.published.value:.2f}%")
    return parts[0] + ("  |  " + "  |  ".join(parts[1:]) if len(parts) > 1 else "")


def write_plots(run: RunDir, history: list[dict], report: dict, data, logits: torch.Tensor,
                n_grid: int = 32, n_mistakes: int = 24) -> None:
    classes = data.classes
    write_curves(run, history)
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


# Each writer below takes plain arrays, so the NumPy recipes (tasks/scratch.py) draw the same plots.

def write_curves(run: RunDir, history: list[dict], title: str = "training and validation", **options) -> None:
    plots.save(plots.curves(history, title, **options), run.plots / "curves.png")
    write_csv(run.plots / "curves.csv", history)


def write_confusion(run: RunDir, confusion_matrix, classes: list[str]) -> None:
    cm = np.asarray(confusion_matrix)
    for normalized, stem in ((False, "confusion_matrix"), (True, "confusion_matrix_normalized")):
        plots.save(plots.confusion(cm, classes, normalized), run.plots / f"{stem}.png")
        values = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalized else cm
        write_csv(run.plots / f"{stem}.csv", [{"true": c, **{p: round(float(v), 6) if normalized else int(v)
                                                             for p, v in zip(classes, row)}}
                                              for c, row in zip(classes, values)], ["true", *classes])


def write_per_class_accuracy(run: RunDir, report: dict, classes: list[str]) -> None:
    """Each class's test accuracy (its recall), worst first in the plot, beside the overall."""
    recall = [report["per_class"][c]["recall"] for c in classes]
    plots.save(plots.per_class_accuracy(recall, classes, report["accuracy"]), run.plots / "per_class_accuracy.png")
    write_csv(run.plots / "per_class_accuracy.csv",
              [{"class": c, "accuracy": round(a, 6), "support": report["per_class"][c]["support"]}
               for c, a in zip(classes, recall)], ["class", "accuracy", "support"])


def write_prediction_grids(run: RunDir, probs: np.ndarray, true: np.ndarray, images: np.ndarray, classes: list[str],
                           n_grid: int = 32, n_mistakes: int = 24) -> None:
    """The first test images with their predictions, and the most confident mistakes.
    probs: N x classes; true: N labels; images: N x C x H x W uint8."""
    def figure(index, t, p, c, title):
        return plots.image_grid(images[index], t, p, c, classes, title)
    _write_predictions(run, probs, true, classes, figure, n_grid, n_mistakes)


def write_prediction_tables(run: RunDir, probs: np.ndarray, true: np.ndarray, texts: list[str], classes: list[str],
                            n_grid: int = 32, n_mistakes: int = 24) -> None:
    """The text counterpart of the grids: tables of test questions with their predictions
    (the CSVs carry the questions too)."""
    def figure(index, t, p, c, title):
        return plots.text_table([texts[i] for i in index], t, p, c, classes, title)
    _write_predictions(run, probs, true, classes, figure, n_grid, n_mistakes, texts)


def _write_predictions(run: RunDir, probs: np.ndarray, true: np.ndarray, classes: list[str], figure, n_grid: int,
                       n_mistakes: int, texts: list[str] | None = None) -> None:
    d = run.plots
    confidence, pred = probs.max(1), probs.argmax(1)
    fields = ["index", "true", "predicted", "confidence"] + (["text"] if texts is not None else [])

    def rows(index):
        return [{"index": int(i), "true": classes[true[i]], "predicted": classes[pred[i]],
                 "confidence": round(float(confidence[i]), 6), **({"text": texts[i]} if texts is not None else {})}
                for i in index]

    def show(index, title):
        return figure(index, true[index].tolist(), pred[index].tolist(), confidence[index].tolist(), title)

    grid = np.arange(min(n_grid, len(true)))
    plots.save(show(grid, "test predictions (red: mistakes)"), d / "predictions.png")
    write_csv(d / "predictions.csv", rows(grid.tolist()), fields)

    # every test image's prediction and confidence, and how confidence splits right from wrong
    write_csv(d / "confidence.csv", rows(range(len(true))), fields)
    plots.save(plots.confidence_histogram(confidence, pred == true), d / "confidence.png")

    wrong = np.flatnonzero(pred != true)
    worst = wrong[np.argsort(-confidence[wrong], kind="stable")][:n_mistakes]
    if len(worst):
        plots.save(show(worst, "most confident mistakes"), d / "confident_mistakes.png")
    write_csv(d / "confident_mistakes.csv", rows(worst.tolist()), fields)


def write_class_distribution(run: RunDir, counts: dict[str, list[int]], classes: list[str],
                             unit: str = "images") -> None:
    plots.save(plots.class_distribution(counts, classes, unit=unit), run.plots / "class_distribution.png")
    write_json(run.plots / "class_distribution.json", {"classes": classes, **counts})


def split_images(data, split: str, index: torch.Tensor) -> np.ndarray:
    """uint8 N x C x H x W images of a split, for the plots (a streamed dataset reads the files)."""
    if hasattr(data, "images"):
        return data.images(split, index).cpu().numpy()
    return getattr(data, split).images[index.to(data.labels(split).device)].cpu().numpy()


# ------------------------------------------------------------------ using a finished run

def load_model(run: RunDir, device="cpu") -> tuple[torch.nn.Module, dict]:
    saved = run.read_config()
    info = saved["data"]
    model = build_model(saved["config"], info["in_shape"], len(info["classes"])).to(device)
    load_weights(run.weights, model, device)
    model.eval()
    return model, saved


def evaluate(run: RunDir, split: str, data_root, device, log=print) -> dict:
    model, saved = load_model(run, device)
    return evaluate_model(model, saved, split, data_root, device, log, vocab=saved_vocab(run))


def evaluate_model(model: torch.nn.Module, saved: dict, split: str, data_root, device, log=print,
                   vocab: list[str] | None = None) -> dict:
    """A finished run's model (from any classification-like task) on one split of its data;
    `vocab`: a text run's own vocabulary (its vocab.json)."""
    data = build_data(saved["config"], data_root, device, log, vocab=vocab)
    if "mean" in saved["data"]:
        # the inputs the model was trained on: the run's own normalisation (a pretrained backbone's
        # may differ from the statistics the dataset would fit)
        data.normalize = Normalize(tuple(saved["data"]["mean"]), tuple(saved["data"]["std"]))
    train_cfg = saved["config"]["train"]
    logits = predict_logits(model, data, split, train_cfg["eval_batch_size"], uses_conv(model),
                            train_cfg.get("precision", "fp32"))
    report = classification_report(logits, data.labels(split), data.classes)
    return {"split": split, "count": data.size(split), "unit": getattr(data, "unit", "images"), "accuracy": report["accuracy"],
            "loss": report["loss"], "per_class": report["per_class"]}


def predict(run: RunDir, inputs: list[str], device="cpu", top: int = 3) -> list[dict]:
    """Image runs read image files; text runs read the inputs themselves as sentences."""
    model, saved = load_model(run, device)
    if saved["data"].get("kind") == "text":
        return predict_texts(model, saved, saved_vocab(run), inputs, device, top)
    return predict_images(model, saved, inputs, device, top)


@torch.inference_mode()
def predict_images(model: torch.nn.Module, saved: dict, inputs: list[str], device="cpu", top: int = 3) -> list[dict]:
    """Top classes for image files, each made into an input the way the run's data was made."""
    info = saved["data"]
    normalize = Normalize(tuple(info["mean"]), tuple(info["std"]))
    x = torch.stack([load_image(f, info["in_shape"], info.get("preprocess", "fit"), info.get("via", 0))
                     for f in inputs]).to(device)
    return top_classes(model(normalize(x)), inputs, "file", info["classes"], top)


@torch.inference_mode()
def predict_texts(model: torch.nn.Module, saved: dict, vocab: list[str] | None, inputs: list[str], device="cpu",
                  top: int = 3) -> list[dict]:
    """Top classes for sentences, tokenised as the training questions were and looked up in
    the run's own vocabulary."""
    if any(not t.strip() for t in inputs):
        raise UserError("an empty text has no words to classify")
    if not vocab:
        raise RunDirError("a text run without vocab.json: its inputs cannot be encoded")
    info = saved["data"]
    logits = model(encode_texts(inputs, Vocab(vocab), info["tokenizer"]["lowercase"], device))
    return top_classes(logits, inputs, "text", info["classes"], top)


def top_classes(logits: torch.Tensor, inputs: list[str], key: str, classes: list[str], top: int) -> list[dict]:
    probs = torch.softmax(logits.float(), 1).cpu()
    k = min(top, probs.shape[1])
    values, index = probs.topk(k, dim=1)
    return [{key: str(f), "top": [{"class": classes[i], "probability": round(float(p), 6)}
                                  for p, i in zip(values[n].tolist(), index[n].tolist())]}
            for n, f in enumerate(inputs)]
