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

import time
from pathlib import Path

import torch

from ..config import RunConfig
from ..data.features import FeatureData, cached_features, model_fingerprint
from ..data.tensors import Normalize
from ..errors import ConfigError, RunDirError
from ..io import write_csv
from ..models import create_model, list_models, model_options
from ..models.summary import format_summary, summarize
from ..models.transfer import TransferNet, build_transfer_model, l2sp_penalty, split_base
from ..models.weights import Pretrained, WeightsError, load_base_state, load_pretrained, locate
from ..rundir import RunDir
from ..train.checkpoint import load_weights, save_weights
from ..train.distributed import barrier
from ..train.driver import FitResult
from ..train.loop import HISTORY_FIELDS, Paths, fit, predict_logits, uses_conv
from ..train.metrics import classification_report
from .base import Built, RunContext, register_task, saved_config
from .build import build_data
from .classification import Classification

# options that shape the head, not the base: they may differ between a backbone's run and ours
HEAD_OPTIONS = {"hidden", "dropout", "pool"}


def build_model(cfg: RunConfig, in_shape, num_classes: int) -> TransferNet:
    return build_transfer_model(cfg.model.as_dict(), in_shape, num_classes, cfg.transfer.pool)


def feature_batch_size(cfg: RunConfig, in_shape) -> int:
    # Why not eval_batch_size: a batch of 1,000 VGG16 activations at 150x150 is gigabytes
    return max(16, min(cfg.train.eval_batch_size, 2 ** 21 // (in_shape[1] * in_shape[2])))


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


def _best(result, monitor: str) -> float:
    return result.history[result.best_epoch - 1][monitor]


# ------------------------------------------------------------------ backbones from other runs

def backbone_run(spec: str) -> Path | None:
    """The run directory `spec` names (a folder, or recipe:NAME), or None for a weights file,
    `imagenet` or `none` (models/weights.py reads those)."""
    spec = (spec or "none").strip()
    if spec.startswith("recipe:"):
        return latest_run(spec.split(":", 1)[1])
    path = Path(spec).expanduser()
    return path if path.is_dir() else None


def latest_run(recipe: str, runs: Path = Path("runs")) -> Path:
    """The newest finished run directory of `recipe` under `runs` (smoke runs prove nothing)."""
    found = []
    # `deepstudy run NAME` makes runs/NAME-<time>; `--out runs/NAME` the bare name
    candidates = [runs / recipe, *runs.glob(f"{recipe}-*")] if runs.is_dir() else []
    for d in candidates:
        try:
            saved = RunDir(d).read_config()
        except RunDirError:
            continue
        if saved.get("recipe") == recipe and saved.get("tier") != "smoke" and (d / "metrics.json").is_file() \
                and (d / "model.safetensors").is_file():
            found.append(d)
    if not found:
        raise WeightsError(f"no finished run of {recipe} in {runs.resolve()} to take the backbone from: train it first "
                           f"with `deepstudy run {recipe}` (from this folder), or pass --weights RUN_DIR")
    return max(found, key=lambda d: (d / "metrics.json").stat().st_mtime)


def _norm(value):
    return list(value) if isinstance(value, (tuple, list)) else value


def load_backbone(model: TransferNet, cfg: RunConfig, log=print) -> Pretrained:
    """transfer.weights into model.base: another run's trained net, or what models/weights.py reads."""
    spec = cfg.transfer.weights
    path = backbone_run(spec)
    if path is None:
        return load_pretrained(model, cfg.model.as_dict(), spec, log)
    if spec.strip().startswith("recipe:"):
        log(f"backbone from {path} (the newest finished run of {spec.split(':', 1)[1]})")
    from .base import get_task
    run = RunDir.open(path)
    saved = run.read_config()
    theirs, ours = saved["config"]["model"], cfg.model.as_dict()
    if theirs.get("name") in list_models():
        # an option added since that run was made is absent from its config.json: it ran with the default
        theirs = {**{k: o.default for k, o in model_options(theirs["name"]).items()}, **theirs}
    differ = sorted(k for k in set(theirs) | set(ours) if k not in HEAD_OPTIONS and _norm(theirs.get(k)) != _norm(ours.get(k)))
    if differ:
        raise WeightsError(
            f"{path} holds a {theirs.get('name')} backbone that differs from this run's {ours['name']} in "
            + ", ".join(f"model.{k} ({_norm(theirs.get(k))} there, {_norm(ours.get(k))} here)" for k in differ)
            + "; set the same model options")
    info = saved["data"]
    if saved.get("task") == "transfer":  # built the way that run built it
        source_model = build_model(saved_config(get_task("transfer"), saved), info["in_shape"], len(info["classes"]))
    else:
        source_model = create_model(theirs["name"], info["in_shape"], len(info["classes"]),
                                    **{k: v for k, v in theirs.items() if k != "name"})
    load_weights(run.weights, source_model)
    load_base_state(model, split_base(source_model).state_dict(), str(run.weights))
    return Pretrained(str(path), tuple(info["mean"]), tuple(info["std"]))


@register_task
class Transfer(Classification):
    """A classification run (same metrics.json keys and plots, plus a `transfer` section), so
    eval and predict read it as any other; what differs is how it is built and trained."""

    name = "transfer"

    def check(self, cfg: RunConfig) -> None:
        if cfg.transfer is None:
            raise ConfigError("a transfer recipe needs a transfer section (transfer.mode, transfer.weights, ...)")

    def preflight(self, cfg: RunConfig) -> None:
        if cfg.transfer.mode != "scratch" and backbone_run(cfg.transfer.weights) is None:
            locate(cfg.model.as_dict(), cfg.transfer.weights)  # missing weights: say so now, not after loading the data

    def build(self, ctx: RunContext) -> Built:
        cfg, device, log = ctx.cfg, ctx.device, ctx.log
        t = cfg.transfer
        data = build_data(cfg, ctx.data_root, device, log)
        if t.views > 1 and data.augment is None:
            raise ConfigError(f"transfer.views={t.views} asks for augmented views, but the data has no augmentation "
                              f"switched on (data.rotation, data.shift, data.zoom, data.flip, ...)")
        model = build_model(cfg, data.in_shape, len(data.classes))
        if t.mode == "scratch":
            pretrained = Pretrained("none: trained from scratch")
        else:
            pretrained = load_backbone(model, cfg, log)
            model.freeze(0)
        if pretrained.mean is not None:
            # inputs as the backbone saw them when it was trained
            data.normalize = Normalize(tuple(pretrained.mean), tuple(pretrained.std))
        model.to(device)
        info = summarize(model, data.in_shape, device)
        intro = (f"{ctx.recipe.name} ({ctx.tier} tier, {t.mode}) on {device}: {data.size('train'):,} training / "
                 f"{data.size('val'):,} validation / {data.size('test'):,} test images from {data.source}; backbone "
                 f"{cfg.model.name} ({pretrained.source}), features {'x'.join(map(str, model.feature_shape))}; "
                 f"{info['trainable']:,} trainable parameters")
        return Built(data, model, format_summary(info, f"{ctx.recipe.name}: {cfg.model.name} ({t.mode}) on {data.name}"),
                     intro, record={"data": data.info(),
                                    "model": {"trainable": info["trainable"], "non_trainable": info["non_trainable"],
                                              "flops_per_sample": info["flops"], "feature_shape": list(model.feature_shape),
                                              "units": len(model.units())},
                                    "weights": pretrained.source},
                     outputs={"pretrained": pretrained})

    def fit(self, ctx: RunContext, built: Built):
        """scratch: one stage.  features: the head on cached features.  finetune: then the last
        layers with the head; whichever stage validated best is kept."""
        cfg, run, log, device = ctx.cfg, ctx.run, ctx.log, ctx.device
        model, data, t, monitor, world = built.model, built.data, cfg.transfer, cfg.train.monitor, ctx.world
        bs = feature_batch_size(cfg, data.in_shape)
        stages, features, feature_seconds = [], None, 0.0
        if t.mode == "scratch":
            result = fit(model, data, cfg, Paths(run.checkpoint, run.weights, run.history),
                         resume=ctx.resume, log=log, progress=ctx.progress, world=world)
            stages.append(("scratch", result))
            selected = "scratch"
        else:
            t0 = time.time()
            features = extract(model, data, {"train": t.views, "val": 1}, cfg.train.seed, bs, device, log)
            feature_seconds = time.time() - t0
            fdata = FeatureData(features["train"], data.labels("train"), {"val": (features["val"][0], data.labels("val"))})
            head_paths = Paths(run.checkpoint, run.path / "head.safetensors", run.path / "history_head.csv")
            log(f"training the head on cached features ({t.views} view{'s' if t.views > 1 else ''} of the training set)")
            result = fit(model.head, fdata, cfg, head_paths, resume=ctx.resume and run.checkpoint.exists(), log=log,
                         progress=ctx.progress, world=world)
            stages.append(("head", result))
            save_weights(run.weights, model)  # base + the best head: a whole model, ready for predict
            selected = "head"

            if t.mode == "finetune" and t.finetune_epochs > 0:
                model.freeze(t.unfreeze)
                trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
                log(f"fine-tuning the last {t.unfreeze} of {len(model.units())} backbone layers/blocks with the head: "
                    f"{trainable:,} trainable parameters, lr {t.finetune_lr:g} (head {t.head_lr or t.finetune_lr:g})")
                ft_paths = Paths(run.path / "finetune_checkpoint.pt", run.path / "finetune.safetensors",
                                 run.path / "history_finetune.csv")
                ft = fit(model, data, cfg.replace(train={"epochs": t.finetune_epochs}, optim={"lr": t.finetune_lr}),
                         ft_paths, resume=ctx.resume and ft_paths.checkpoint.exists(), log=log, progress=ctx.progress,
                         params=model.param_groups(t.finetune_lr, t.head_lr or t.finetune_lr),
                         # w0 = the weights now; on resume those are the checkpoint's and fit restores them
                         # after this snapshot, so the penalty keeps pulling toward the pretrained ones
                         penalty=l2sp_penalty(model, t.l2sp) if t.l2sp else None, world=world)
                stages.append(("finetune", ft))
                head_best, ft_best = _best(result, monitor), _best(ft, monitor)
                if (ft_best > head_best) if monitor.endswith("accuracy") else (ft_best < head_best):
                    save_weights(run.weights, model)
                    selected = "finetune"
                else:
                    log(f"fine-tuning never beat the head alone on validation ({monitor} {ft_best:.4f} vs {head_best:.4f}): "
                        f"keeping the head-alone weights")
                    # the base as it was, the best head (model.safetensors, written by process 0)
                    barrier(world)
                    load_weights(run.weights, model, device)
        history = _combined_history(stages)
        write_csv(run.history, history, HISTORY_FIELDS + ["stage"])
        names = [name for name, _ in stages]
        offset = sum(len(r.history) for _, r in stages[:names.index(selected)])  # epochs before the chosen stage
        built.outputs.update(stages=stages, selected=selected, features=features, feature_seconds=feature_seconds)
        return FitResult(history, offset + dict(stages)[selected].best_epoch, stages[-1][1].stopped_early)

    def score(self, ctx: RunContext, built: Built, result) -> dict:
        # The weights chosen on validation meet the test set, once.
        cfg, model, data, out = ctx.cfg, built.model, built.data, built.outputs
        monitor, bs = cfg.train.monitor, feature_batch_size(cfg, data.in_shape)
        if out["selected"] == "head":  # the base is as it was: its cached features give exactly the model's logits
            features = out["features"]
            features.update(extract(model, data, {"test": 1}, cfg.train.seed, bs, ctx.device, ctx.log))
            fdata = FeatureData(features["train"], data.labels("train"),
                                {s: (features[s][0], data.labels(s)) for s in ("val", "test")})
            val_logits = predict_logits(model.head, fdata, "val", cfg.train.eval_batch_size)
            test_logits = predict_logits(model.head, fdata, "test", cfg.train.eval_batch_size)
        else:
            cl = uses_conv(model)
            val_logits = predict_logits(model, data, "val", bs, cl)
            test_logits = predict_logits(model, data, "test", bs, cl)
        val = classification_report(val_logits, data.labels("val"), data.classes)
        report = classification_report(test_logits, data.labels("test"), data.classes)
        built.outputs.update(logits=test_logits, report=report)
        stages = out["stages"]
        return {"task": "classification",  # eval, predict and the catalog read it as a classifier
                "val": {"accuracy": val["accuracy"], "loss": val["loss"]},
                "test": {"accuracy": report["accuracy"], "loss": report["loss"], "per_class": report["per_class"]},
                "train_seconds": sum(r["seconds"] for r in result.history) + out["feature_seconds"],
                "transfer": {"mode": cfg.transfer.mode, "weights": out["pretrained"].source, "selected": out["selected"],
                             "feature_seconds": round(out["feature_seconds"], 3),
                             "stages": [{"stage": name, "epochs_run": len(r.history), "best_epoch": r.best_epoch,
                                         f"best_{monitor}": _best(r, monitor),
                                         "seconds": round(sum(h["seconds"] for h in r.history), 3)}
                                        for name, r in stages]}}

    def model_for(self, cfg: RunConfig, in_shape, num_classes: int) -> TransferNet:
        return build_model(cfg, in_shape, num_classes)


def _combined_history(stages) -> list[dict]:
    """One table over the stages, epochs numbered on, each row saying its stage."""
    rows, n = [], 0
    for name, result in stages:
        for row in result.history:
            n += 1
            rows.append({**row, "epoch": n, "stage": name})
    return rows
