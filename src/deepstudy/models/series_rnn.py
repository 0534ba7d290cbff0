"""A recurrent network for one-step-ahead forecasting: it reads a window of `look_back` past
steps (each step one value, plus seasonal features when the data adds them) and a linear head
turns the last hidden state into the next value(s).

`in_shape` is (look_back, features); `num_classes` is the number of outputs (1: the next value).
The seed networks are tiny on purpose: the sine study's SimpleRNN has ONE hidden unit (6
parameters here; Keras counts 5, as torch keeps two redundant biases), the airline study's LSTM four.
"""

from typing import Literal

import torch
import torch.nn as nn

from . import register_model
from ..config import Depth, Probability, Size

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class SeriesRNN(nn.Module):
    def __init__(self, in_shape, num_outputs, cell, hidden, layers, dropout):
        super().__init__()
        look_back, features = in_shape
        self.rnn = CELLS[cell](features, hidden, num_layers=layers, batch_first=True,
                               dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)  # N x look_back x hidden: the state starts at zero for every window
        return self.head(out[:, -1])


@register_model("series_rnn")
def series_rnn(in_shape, num_classes, *, cell: Literal["rnn", "lstm", "gru"] = "lstm", hidden: Size = 4,
               layers: Depth = 1, dropout: Probability = 0.0) -> nn.Module:
    """`cell=rnn` is Keras' SimpleRNN (tanh); `hidden` units per layer."""
    return SeriesRNN(in_shape, num_classes, cell, hidden, layers, dropout)
