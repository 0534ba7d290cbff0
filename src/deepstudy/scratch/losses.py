"""Losses: a number that says how wrong the outputs are, and its gradient with respect to them.

    forward(outputs, targets) -> L (a float, the mean over the batch)
    backward() -> dL/doutputs, the g that starts backpropagation through the layers
"""

from __future__ import annotations

import numpy as np


class SoftmaxCrossEntropy:
    """Softmax of the logits z followed by the mean cross-entropy with integer labels y:

        p[n,k] = e^z[n,k] / Σ_j e^z[n,j]          L = −(1/N)·Σ_n log p[n, y_n]

    Fused into one step, for two reasons:
      * stability: log p[n,k] = z[n,k] − log Σ_j e^z[n,j] (the log-sum-exp).  Subtracting each
        row's largest logit first changes nothing (the e^shift cancels) but makes every exponent
        ≤ 0, so e^z cannot overflow, and the largest term is 1, so the sum cannot underflow to 0;
        a softmax followed by a separate log would take log(0) = −inf for confident mistakes.
      * the gradient collapses: dL/dz[n,k] = (p[n,k] − [k = y_n]) / N.
    """

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        total = e.sum(axis=1, keepdims=True)
        self.p, self.labels = e / total, labels
        rows = np.arange(len(labels))
        # −log p[n, y_n] = log Σ_j e^z[n,j] − z[n, y_n]
        return float(np.mean(np.log(total[:, 0]) - z[rows, labels]))

    def backward(self) -> np.ndarray:
        # L_n = log Σ_j e^z[n,j] − z[n,y_n].  The first term's derivative in z[n,k] is
        # e^z[n,k] / Σ_j e^z[n,j] = p[n,k]; the second's is 1 when k = y_n.  Divided by N for the mean.
        g = self.p.copy()
        g[np.arange(len(self.labels)), self.labels] -= 1
        return g / len(self.labels)

    @staticmethod
    def probabilities(logits: np.ndarray) -> np.ndarray:
        """softmax(logits), row by row, computed the same overflow-free way."""
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


class MSE:
    """Mean squared error over every element, as PyTorch's MSELoss:  L = mean((ŷ − y)²)."""

    def forward(self, predictions: np.ndarray, targets: np.ndarray) -> float:
        self.diff = predictions - targets.reshape(predictions.shape)
        return float(np.mean(self.diff * self.diff))

    def backward(self) -> np.ndarray:
        # d/dŷ of (1/M)·Σ (ŷ − y)² is (2/M)·(ŷ − y), M the number of elements
        return 2 * self.diff / self.diff.size
