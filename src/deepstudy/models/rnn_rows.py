"""An image read as a sequence: each of the H rows is one time step of W*C pixels, and the
classifier sees the final hidden state (both directions' when bidirectional)."""

from typing import Literal

import torch
import torch.nn as nn

from . import register_model
from ..config import Depth, Probability, Size

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RowRNN(nn.Module):
    def __init__(self, in_shape, num_classes, cell, hidden, layers, bidirectional, dropout):
        super().__init__()
        c, h, w = in_shape
        self.rnn = CELLS[cell](w * c, hidden, num_layers=layers, batch_first=True,
                               bidirectional=bidirectional, dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        seq = x.permute(0, 2, 3, 1).reshape(n, h, w * c)  # time = rows
        out, _ = self.rnn(seq)
        if self.rnn.bidirectional:
            half = out.shape[-1] // 2
            # forward direction has read every row at the last step, backward at the first
            last = torch.cat([out[:, -1, :half], out[:, 0, half:]], dim=1)
        else:
            last = out[:, -1]
        return self.head(last)


@register_model("rnn_rows")
def rnn_rows(in_shape, num_classes, *, cell: Literal["rnn", "lstm", "gru"] = "lstm", hidden: Size = 128,
             layers: Depth = 1, bidirectional: bool = False, dropout: Probability = 0.0) -> nn.Module:
    return RowRNN(in_shape, num_classes, cell, hidden, layers, bidirectional, dropout)
