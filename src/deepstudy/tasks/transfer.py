"""Transfer learning: a backbone trained elsewhere, a new head trained here.  Three modes
(`transfer.mode`), run the same way on the same split so that they can be compared:

  scratch    the same network from random weights, every layer trained on the images
  features   the pretrained base frozen; its features computed once per split and cached
             (augmentation as K cached views, data/features.py); the head trained on them
  finetune   features, then the last `transfer.unfreeze` layers/blocks of the base trained
             together with the head on the (augmented) images at a low learning rate
             (`transfer.finetune_lr`, the head at `transfer.head_lr`), frozen BatchNorm kept
             in eval mode, optionally held near the pretrained weights (`transfer.l2sp`)

Weights chosen on validation in every stage, and across stages: if fine-tuning never beats
the head alone on validation, the head-alone weights are kept (and the log says so).  The test
split is evaluated once, at the end.  The run directory is a classification run's (same
metrics.json keys and plots, plus a `transfer` section), so `deepstudy eval` and `deepstudy
predict` work on it as on any other.
"""

from __future__ import annotations

import copy
import time

import torch

from ..data.features import FeatureData, cached_features, model_fingerprint
from ..data.tensors import Normalize
from ..errors import ConfigError
from ..io import write_csv, write_json, write_text
from ..models.summary import format_summary, summarize
from ..models.transfer import TransferNet, build_transfer_model, l2sp_penalty
from ..models.weights import Pretrained, load_pretrained, locate
from ..machine import hardware
from ..rundir import RunDir, versions
from ..train.checkpoint import load_weights, save_weights
from ..train.loop import HISTORY_FIELDS, Paths, fit, predict_logits, uses_conv
from ..train.metrics import classification_report
from . import RunContext
from .classification import build_data, evaluate_model, headline, predict_images, write_plots


def build_model(cfg: dict, in_shape, num_classes: int) -> TransferNet:
    # (.get: run directories saved before transfer.pool existed)
    return build_transfer_model(cfg["model"], in_shape, num_classes, cfg["transfer"].get("pool", "flatten"))


def feature_batch_size(cfg: dict, in_shape) -> int:
    # Why not eval_batch_size: a batch of 1,000 VGG16 activations at 150x150 is gigabytes
    return max(16, min(cfg["train"]["eval_batch_size"], 2 ** 21 // (in_shape[1] * in_shape[2])))


def extract(model: TransferNet, data, splits: dict[str, int], seed: int, batch_size: int, device, log) -> dict:
    """{split: K x N x ... features} for the views asked for, from the cache when there."""
    key = model_fingerprint(model)
    out, t0, computed = {}, time.time(), []
    for split, views in splits.items():
        per_view = []
        for view in range(views):
            f, hit = cached_features(model, data, split, view, seed, batch_size, log, model_key=key)
            per_view.append(f.to(device))
            if not hit:
                computed.append(f"{split}" + (f" view {view}" if views > 1 else ""))
        out[split] = torch.stack(per_view)
    what = ", ".join(f"{s} {out[s].shape[1]:,}" + (f" x {v} views" if v > 1 else "") for s, v in splits.items())
    log(f"backbone features ({what}): " + (f"computed {', '.join(computed)} in {time.time() - t0:.1f}s, cached"
                                           if computed else "read from the cache"))
    return out


def _finetune_cfg(cfg: dict) -> dict:
    t = cfg["transfer"]
    out = copy.deepcopy(cfg)
    out["train"]["epochs"] = t["finetune_epochs"]
    out["optim"]["lr"] = t["finetune_lr"]
    return out


def _best(result, monitor: str) -> float:
    return result.history[result.best_epoch - 1][monitor]


def train(ctx: RunContext) -> dict:
    started = time.time()
    cfg, run, log, device = ctx.cfg, ctx.run, ctx.log, ctx.device
    t, monitor = cfg["transfer"], cfg["train"]["monitor"]
    mode, seed = t["mode"], cfg["train"]["seed"]
    if mode != "scratch":
        locate(cfg["model"], t["weights"])  # missing weights: say so now, not after loading the data
    torch.manual_seed(seed)  # the head's (and, from scratch, the base's) initial weights
    data = build_data(cfg, ctx.data_root, device, log)
    if t["l2sp"] < 0:
        raise ConfigError(f"transfer.l2sp={t['l2sp']:g}: the penalty's weight must be >= 0")
    if t["views"] < 1:
        raise ConfigError(f"transfer.views must be at least 1, got {t['views']}")
    if t["views"] > 1 and data.augment is None:
        raise ConfigError(f"transfer.views={t['views']} asks for augmented views, but the data has no augmentation "
                          f"switched on (data.rotation, data.shift, data.zoom, data.flip, ...)")
    model = build_model(cfg, data.in_shape, len(data.classes))
    if mode == "scratch":
        pretrained = Pretrained("none: trained from scratch")
    else:
        pretrained = load_pretrained(model, cfg["model"], t["weights"], log)
        model.freeze(0)
    if pretrained.mean is not None:
        # inputs as the backbone saw them when it was trained
        data.normalize = Normalize(tuple(pretrained.mean), tuple(pretrained.std))
    model.to(device)

    info = summarize(model, data.in_shape, device)
    title = f"{ctx.recipe.name}: {cfg['model']['name']} ({mode}) on {data.name}"
    write_text(run.summary, format_summary(info, title))
    if ctx.show_summary:
        log(format_summary(info, title))
    if not ctx.resume:
        write_json(run.config, {
            "recipe": ctx.recipe.name, "tier": ctx.tier, "task": ctx.recipe.task, "config": cfg, "data": data.info(),
            "model": {"trainable": info["trainable"], "non_trainable": info["non_trainable"],
                      "flops_per_sample": info["flops"], "feature_shape": list(model.feature_shape),
                      "units": len(model.units())},
            "weights": pretrained.source, "device": str(device), "data_root": str(ctx.data_root), "hardware": hardware(),
            "versions": versions(), **ctx.meta,
        })
    log(f"{ctx.recipe.name} ({ctx.tier} tier, {mode}) on {device}: {data.size('train'):,} training / "
        f"{data.size('val'):,} validation / {data.size('test'):,} test images from {data.source}; backbone "
        f"{cfg['model']['name']} ({pretrained.source}), features {'x'.join(map(str, model.feature_shape))}; "
        f"{info['trainable']:,} trainable parameters")

    bs = feature_batch_size(cfg, data.in_shape)
    stages, features, feature_seconds = [], None, 0.0
    if mode == "scratch":
        result = fit(model, data, cfg, Paths(run.checkpoint, run.weights, run.history),
                     resume=ctx.resume, log=log, progress=ctx.progress)
        stages.append(("scratch", result))
        # the weights of the best validation epoch (what model.safetensors holds) meet the test
        # set, not the last epoch's still in memory
        load_weights(run.weights, model, device)
        selected = "scratch"
    else:
        t0 = time.time()
        features = extract(model, data, {"train": t["views"], "val": 1}, seed, bs, device, log)
        feature_seconds = time.time() - t0
        fdata = FeatureData(features["train"], data.labels("train"), {"val": (features["val"][0], data.labels("val"))})
        head_paths = Paths(run.checkpoint, run.path / "head.safetensors", run.path / "history_head.csv")
        log(f"training the head on cached features ({t['views']} view{'s' if t['views'] > 1 else ''} of the training set)")
        result = fit(model.head, fdata, cfg, head_paths, resume=ctx.resume and run.checkpoint.exists(), log=log,
                     progress=ctx.progress)
        stages.append(("head", result))
        load_weights(head_paths.weights, model.head, device)
        save_weights(run.weights, model)  # base + the best head: a whole model, ready for predict
        selected = "head"

        if mode == "finetune" and t["finetune_epochs"] > 0:
            model.freeze(t["unfreeze"])
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
            log(f"fine-tuning the last {t['unfreeze']} of {len(model.units())} backbone layers/blocks with the head: "
                f"{trainable:,} trainable parameters, lr {t['finetune_lr']:g} (head {t['head_lr'] or t['finetune_lr']:g})")
            ft_paths = Paths(run.path / "finetune_checkpoint.pt", run.path / "finetune.safetensors",
                             run.path / "history_finetune.csv")
            ft = fit(model, data, _finetune_cfg(cfg), ft_paths, resume=ctx.resume and ft_paths.checkpoint.exists(),
                     log=log, progress=ctx.progress,
                     params=model.param_groups(t["finetune_lr"], t["head_lr"] or t["finetune_lr"]),
                     # w0 = the weights now; on resume those are the checkpoint's and fit restores them
                     # after this snapshot, so the penalty keeps pulling toward the pretrained ones
                     penalty=l2sp_penalty(model, t["l2sp"]) if t["l2sp"] else None)
            stages.append(("finetune", ft))
            head_best, ft_best = _best(result, monitor), _best(ft, monitor)
            if (ft_best > head_best) if monitor.endswith("accuracy") else (ft_best < head_best):
                load_weights(ft_paths.weights, model, device)
                save_weights(run.weights, model)
                selected = "finetune"
            else:
                log(f"fine-tuning never beat the head alone on validation ({monitor} {ft_best:.4f} vs {head_best:.4f}): "
                    f"keeping the head-alone weights")
                load_weights(run.weights, model, device)

    # The weights chosen on validation meet the test set, once.
    if selected == "head":  # the base is as it was: its cached features give exactly the model's logits
        features.update(extract(model, data, {"test": 1}, seed, bs, device, log))
        fdata = FeatureData(features["train"], data.labels("train"),
                            {s: (features[s][0], data.labels(s)) for s in ("val", "test")})
        val_logits = predict_logits(model.head, fdata, "val", cfg["train"]["eval_batch_size"])
        test_logits = predict_logits(model.head, fdata, "test", cfg["train"]["eval_batch_size"])
    else:
        cl = uses_conv(model)
        val_logits = predict_logits(model, data, "val", bs, cl)
        test_logits = predict_logits(model, data, "test", bs, cl)
    val = classification_report(val_logits, data.labels("val"), data.classes)
    report = classification_report(test_logits, data.labels("test"), data.classes)

    history = _combined_history(stages)
    write_csv(run.history, history, HISTORY_FIELDS + ["stage"])
    names = [name for name, _ in stages]
    offset = sum(len(r.history) for _, r in stages[:names.index(selected)])  # epochs before the chosen stage
    metrics = {
        "recipe": ctx.recipe.name, "tier": ctx.tier, "task": "classification",
        "val": {"accuracy": val["accuracy"], "loss": val["loss"]},
        "test": {"accuracy": report["accuracy"], "loss": report["loss"], "per_class": report["per_class"]},
        "best_epoch": offset + dict(stages)[selected].best_epoch, "epochs_run": len(history),
        "stopped_early": stages[-1][1].stopped_early,
        "train_seconds": sum(r["seconds"] for r in history) + feature_seconds,
        "data": data.name, "data_source": data.source, "data_note": getattr(data, "note", ""),
        "device": str(device), "hardware": hardware(),
        "transfer": {"mode": mode, "weights": pretrained.source, "selected": selected,
                     "feature_seconds": round(feature_seconds, 3),
                     "stages": [{"stage": name, "epochs_run": len(r.history), "best_epoch": r.best_epoch,
                                 f"best_{monitor}": _best(r, monitor), "seconds": round(sum(h["seconds"] for h in r.history), 3)}
                                for name, r in stages]},
    }
    write_plots(run, history, report, data, test_logits)
    metrics["wall_seconds"] = time.time() - started
    write_json(run.metrics, metrics)  # last: a run directory with metrics.json is a finished one
    log(headline(ctx.recipe, metrics))
    return metrics


def _combined_history(stages) -> list[dict]:
    """One table over the stages, epochs numbered on, each row saying its stage."""
    rows, n = [], 0
    for name, result in stages:
        for row in result.history:
            n += 1
            rows.append({**row, "epoch": n, "stage": name})
    return rows


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
    return evaluate_model(model, saved, split, data_root, device, log)


def predict(run: RunDir, inputs: list[str], device="cpu", top: int = 3) -> list[dict]:
    model, saved = load_model(run, device)
    return predict_images(model, saved, inputs, device, top)
