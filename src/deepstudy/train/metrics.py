"""Classification metrics from logits, with torchmetrics doing the counting."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import (multiclass_confusion_matrix, multiclass_f1_score,
                                                    multiclass_precision, multiclass_recall)


def classification_report(logits: torch.Tensor, targets: torch.Tensor, classes: list[str]) -> dict:
    """accuracy, loss (mean cross-entropy, nats), per-class precision/recall/F1/support and the
    confusion matrix (rows = true class, columns = predicted)."""
    k = len(classes)
    logits, targets = logits.float().cpu(), targets.cpu()
    kw = dict(num_classes=k, average=None, zero_division=0)
    precision = multiclass_precision(logits, targets, **kw)
    recall = multiclass_recall(logits, targets, **kw)
    f1 = multiclass_f1_score(logits, targets, **kw)
    cm = multiclass_confusion_matrix(logits, targets, num_classes=k)
    support = cm.sum(1)
    return {
        "accuracy": (logits.argmax(1) == targets).float().mean().item(),
        "loss": F.cross_entropy(logits, targets).item(),
        "per_class": {c: {"precision": precision[i].item(), "recall": recall[i].item(), "f1": f1[i].item(),
                          "support": int(support[i])} for i, c in enumerate(classes)},
        "confusion_matrix": cm.tolist(),
    }
