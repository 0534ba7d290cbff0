"""An ensemble: several copies of one architecture, each from its own random start, trained side
by side in one run and averaged when they predict (Lakshminarayanan et al. 2017, "deep ensembles").

Why it helps: members that start apart end in different minima and make partly different
mistakes; averaging their probabilities cancels some of them.  On small data, where one net's
accuracy swings by a point or two with its seed, this is the cheapest reliable gain there is,
at k times the compute.

Training keeps the members independent: in training mode the forward returns every member's
logits stacked (members x batch x classes), and the training loop (train/loop.py, Supervised.loss)
gives each member its own loss, as if it were trained alone; they share only the batches.
Training them on the averaged logits instead would make them one wide network whose parts
co-adapt, which loses most of the ensemble's gain (Jeffares et al. 2023).

In eval mode the forward returns the log of the members' mean probability: its argmax is the
ensemble's vote, and cross-entropy on it is the ensemble's own negative log-likelihood, so
validation, test, `deepstudy predict` and export see the ensemble as one classifier.
"""

import math

import torch
import torch.nn as nn


class Ensemble(nn.Module):
    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x) -> torch.Tensor:
        logits = torch.stack([member(x) for member in self.members])  # k x N x classes
        if self.training:
            return logits
        # log of the mean probability, computed stably: logsumexp of log-probabilities - log k
        return torch.logsumexp(torch.log_softmax(logits.float(), dim=-1), dim=0) - math.log(len(self.members))


def ensemble(build, members: int) -> nn.Module:
    """`members` nets from `build()` (one net when members is 1: no wrapper, the same weights'
    names as ever)."""
    if members == 1:
        return build()
    return Ensemble([build() for _ in range(members)])
