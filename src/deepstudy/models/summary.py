"""A Keras-style model summary: one row per layer with its output shape and parameters, the
trainable and non-trainable totals, and FLOPs per sample from torch.utils.flop_counter."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode


def _shape(out) -> str:
    if isinstance(out, torch.Tensor):
        return "x".join(str(d) for d in out.shape[1:]) or "scalar"
    if isinstance(out, (tuple, list)) and out:
        return _shape(out[0])
    return "-"


def summarize(model: nn.Module, in_shape, device="cpu", dtype=torch.float32) -> dict:
    """Rows and totals for `model` on one input of shape `in_shape` (no batch dimension)."""
    rows, hooks = [], []
    leaves = [(name, m) for name, m in model.named_modules() if not list(m.children())]
    for name, module in leaves:
        def hook(mod, inp, out, name=name):
            params = sum(p.numel() for p in mod.parameters(recurse=False))
            params += sum(b.numel() for b in mod.buffers(recurse=False) if b.is_floating_point())
            rows.append({"layer": name, "type": type(mod).__name__, "output": _shape(out), "params": params})
        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    x = torch.zeros((1, *in_shape), device=device, dtype=dtype)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # As Keras counts them: frozen weights plus running statistics (BatchNorm mean and variance)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    frozen += sum(b.numel() for b in model.buffers() if b.is_floating_point())
    return {"rows": rows, "trainable": trainable, "non_trainable": frozen,
            "flops": int(counter.get_total_flops()), "input": "x".join(map(str, in_shape))}


def format_summary(info: dict, title: str = "") -> str:
    w1 = max([len("layer")] + [len(r["layer"]) for r in info["rows"]])
    w2 = max([len("type")] + [len(r["type"]) for r in info["rows"]])
    w3 = max([len("output")] + [len(r["output"]) for r in info["rows"]])
    lines = [title] if title else []
    lines.append(f"{'layer':<{w1}}  {'type':<{w2}}  {'output':<{w3}}  {'params':>10}")
    lines.append("-" * (w1 + w2 + w3 + 16))
    for r in info["rows"]:
        lines.append(f"{r['layer']:<{w1}}  {r['type']:<{w2}}  {r['output']:<{w3}}  {r['params']:>10,}")
    lines.append("-" * (w1 + w2 + w3 + 16))
    lines.append(f"input {info['input']}")
    lines.append(f"trainable parameters      {info['trainable']:>12,}")
    lines.append(f"non-trainable parameters  {info['non_trainable']:>12,}  (frozen weights, BatchNorm statistics)")
    lines.append(f"FLOPs per sample          {info['flops']:>12,}  (multiply-add = 2 FLOPs, forward only)")
    return "\n".join(lines) + "\n"
