"""Recurrent text classifiers: word embeddings -> RNN, GRU or LSTM -> one vector for the whole
sequence -> linear layer.  The input is `(token ids, lengths)` (data/text.py's TokenBatch).

The sequences of a batch are packed (pack_padded_sequence): each one's recurrence stops at its
own last word, so the <pad> tokens that fill a batch to its longest question never run through
the cell.  The "last" state is then really the state after the last word, and a question is
classified the same whatever batch it comes in.

Pooling, how the sequence becomes one vector:
  last       the final hidden state of the top layer (both directions' when bidirectional: the
             backward direction's final state is the one after reading back to the first word)
  attention  a learned weighted average of the outputs at every word (additive attention,
             softmax over the real words only), so the classifier can look straight at the
             question word ("who", "how many") wherever it is
  max        the largest value of each feature over the real words (Collobert et al. 2011;
             InferSent): every word can set a feature, none has to survive to the end
"""

from typing import Literal

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from . import register_model
from ..config import Depth, Probability, Size

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class AttentionPooling(nn.Module):
    """score_t = v . tanh(W h_t); weights = softmax over real words; output = sum_t weights_t h_t."""

    def __init__(self, width: int):
        super().__init__()
        self.project = nn.Linear(width, width)
        self.score = nn.Linear(width, 1, bias=False)

    def forward(self, outputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(torch.tanh(self.project(outputs))).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        return torch.bmm(weights.unsqueeze(1), outputs).squeeze(1)


class RecurrentClassifier(nn.Module):
    def __init__(self, vocab_size, num_classes, cell, embed_dim, hidden, layers, bidirectional, pooling, dropout):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = CELLS[cell](embed_dim, hidden, num_layers=layers, batch_first=True,
                               bidirectional=bidirectional, dropout=dropout if layers > 1 else 0.0)
        width = hidden * (2 if bidirectional else 1)
        self.pooling = pooling
        if pooling == "attention":
            self.attention = AttentionPooling(width)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x) -> torch.Tensor:
        ids, lengths = x
        embedded = self.dropout(self.embed(ids))
        # enforce_sorted=False: PyTorch sorts by length inside and returns states in batch order
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, state = self.rnn(packed)
        if self.pooling == "last":
            h = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
            # h: (layers * directions) x N x hidden, top layer last; its two directions side by side
            summary = torch.cat([h[-2], h[-1]], dim=1) if self.rnn.bidirectional else h[-1]
        else:
            outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=ids.shape[1])
            mask = torch.arange(ids.shape[1], device=ids.device) < lengths.to(ids.device).unsqueeze(1)
            if self.pooling == "max":
                summary = outputs.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
            else:
                summary = self.attention(outputs, mask)
        return self.head(self.dropout(summary))


@register_model("text_rnn")
def text_rnn(in_shape, num_classes, *, cell: Literal["rnn", "gru", "lstm"] = "lstm", embed_dim: Size = 128,
             hidden: Size = 128, layers: Depth = 1, bidirectional: bool = False,
             pooling: Literal["last", "attention", "max"] = "last", dropout: Probability = 0.5) -> nn.Module:
    """in_shape: (vocabulary size,).  dropout: on the embeddings, between layers and before the
    classifier (small data: 5,000 questions overfit fast)."""
    return RecurrentClassifier(in_shape[0], num_classes, cell, embed_dim, hidden, layers, bidirectional,
                               pooling, dropout)
