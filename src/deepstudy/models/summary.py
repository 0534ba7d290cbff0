"""A Keras-style model summary: one row per layer with its output shape and parameters, the
trainable and non-trainable totals, and FLOPs per sample from torch.utils.flop_counter (plus
the recurrent layers' own, which it cannot see)."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.rnn import PackedSequence
from torch.utils.flop_counter import FlopCounterMode

from .tta import single_view


def _shape(out) -> str:
    if isinstance(out, torch.Tensor):
        return "x".join(str(d) for d in out.shape[1:]) or "scalar"
    if isinstance(out, (tuple, list)) and out:
        return _shape(out[0])
    return "-"


def summarize(model: nn.Module, in_shape, device="cpu", dtype=torch.float32, example=None) -> dict:
    """Rows and totals for `model` on one input of shape `in_shape` (no batch dimension), or on
    `example`, one real input with a batch dimension of 1 (token ids and their length for text
    models, whose input is not a float tensor of a fixed shape)."""
    rows, hooks, recurrent = [], [], []
    leaves = [(name, m) for name, m in model.named_modules() if not list(m.children())]
    for name, module in leaves:
        def hook(mod, inp, out, name=name):
            params = sum(p.numel() for p in mod.parameters(recurse=False))
            params += sum(b.numel() for b in mod.buffers(recurse=False) if b.is_floating_point())
            rows.append({"layer": name, "type": type(mod).__name__, "output": _shape(out), "params": params})
            if isinstance(mod, nn.RNNBase):
                recurrent.append(_recurrent_flops(mod, inp[0]))
        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    x = torch.zeros((1, *in_shape), device=device, dtype=dtype) if example is None else example
    try:
        # one view of the input: a model's test-time views (models/tta.py) run the same layers
        # again on copies of it, which would list each layer two or six times and count FLOPs
        # that a training step never spends (the run's intro says how many views evaluation runs)
        with torch.no_grad(), FlopCounterMode(display=False) as counter, single_view(model):
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
            "flops": int(counter.get_total_flops()) + sum(recurrent), "input": _describe_input(in_shape, example)}


def _recurrent_flops(rnn: nn.RNNBase, x) -> int:
    """torch's fused RNN kernels are invisible to FlopCounterMode: their matrix multiplies,
    counted by hand (2 FLOPs per multiply-add, as it counts), for every step actually run."""
    steps = x.data.shape[0] if isinstance(x, PackedSequence) else x.numel() // rnn.input_size
    gates = {"LSTM": 4, "GRU": 3}.get(rnn.mode, 1)
    directions = 2 if rnn.bidirectional else 1
    total = 0
    for layer in range(rnn.num_layers):
        inputs = rnn.input_size if layer == 0 else rnn.hidden_size * directions
        total += directions * steps * 2 * gates * rnn.hidden_size * (inputs + rnn.hidden_size)
    return total


def _describe_input(in_shape, example) -> str:
    if example is None:
        return "x".join(map(str, in_shape))
    if isinstance(example, tuple):  # (token ids, lengths)
        return f"a sequence of {example[0].shape[1]} tokens (vocabulary {in_shape[0]:,})"
    return "x".join(map(str, example.shape[1:]))


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
