"""A character-level language model: character embeddings -> LSTM -> a distribution over the
next character at every position (the seed's Embedding 32 -> LSTM 128 with dropout -> softmax).

`forward(ids, state)` returns (logits, state): the state after the last character goes back in
with the next window of the same text (truncated BPTT, train/lm_loop.py) and with each new
character when generating.
"""

import torch
import torch.nn as nn

from . import register_model
from ..config import Depth, Probability, Size


class CharLSTM(nn.Module):
    def __init__(self, vocab_size, num_outputs, embed_dim, hidden, layers, dropout):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_outputs)

    def forward(self, ids: torch.Tensor, state=None):
        outputs, state = self.lstm(self.embed(ids), state)
        return self.head(self.dropout(outputs)), state


@register_model("char_lstm")
def char_lstm(in_shape, num_classes, *, embed_dim: Size = 32, hidden: Size = 128, layers: Depth = 1,
              dropout: Probability = 0.2) -> nn.Module:
    """in_shape: (vocabulary size,); num_classes: the characters it predicts (the same vocabulary).
    dropout: on the LSTM's outputs, and between layers when there are several."""
    return CharLSTM(in_shape[0], num_classes, embed_dim, hidden, layers, dropout)
