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

    def export_form(self) -> nn.Module:
        """The same classifier in a form the exporters can trace (deepstudy export)."""
        return UnpackedRecurrentClassifier(self)


GATE_HELD = 50.0  # sigmoid(50) is 1 in float32, sigmoid(-50) about 2e-22


def _tanh_rnn_as_gru(rnn: dict[str, torch.Tensor], hidden: int) -> dict[str, torch.Tensor]:
    """A tanh RNN's weights as a GRU's whose reset gate is held open (r = 1) and update gate
    shut (z = 0): the GRU's h' = (1 - z) * tanh(W_in x + b_in + r * (W_hn h + b_hn)) + z * h is
    then the RNN's h' = tanh(W_ih x + b_ih + W_hh h + b_hh).  Why: the ONNX exporter turns a GRU
    into ONNX's GRU, which runs over any length, but unrolls a tanh RNN step by step over the
    example's length, so the file would take no other."""
    w_ih, w_hh = rnn["weight_ih_l0"], rnn["weight_hh_l0"]
    zeros_ih, zeros_hh, zero = torch.zeros_like(w_ih), torch.zeros_like(w_hh), torch.zeros(hidden)
    b_ih, b_hh = rnn.get("bias_ih_l0", zero), rnn.get("bias_hh_l0", zero)
    return {"weight_ih_l0": torch.cat([zeros_ih, zeros_ih, w_ih]),  # gates in GRU order: reset, update, new
            "weight_hh_l0": torch.cat([zeros_hh, zeros_hh, w_hh]),
            "bias_ih_l0": torch.cat([torch.full((hidden,), GATE_HELD), torch.full((hidden,), -GATE_HELD), b_ih]),
            "bias_hh_l0": torch.cat([zero, zero, b_hh])}


def _reorder(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (N x T x F) with each row's time steps taken in the order `index` (N x T) gives."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class UnpackedRecurrentClassifier(nn.Module):
    """A trained RecurrentClassifier's function without pack_padded_sequence, for export:
    neither torch.export (the ONNX exporter) nor ONNX itself can follow a PackedSequence, whose
    layout depends on the lengths in the data.

    Each direction of each layer runs as its own one-direction cell over the padded batch.  The
    forward one reads every sequence from its first word, so its state at the last word is the
    packed model's; the backward one reads every sequence reversed *within its own length*
    (padding left where it is), so it too starts at the sequence's own last word, as the packed
    model's does.  What the cells compute over padding is never used: "last" pooling takes the
    states at the real ends, and max and attention pooling mask padding out as before.  Evaluated
    only (dropout is off); deepstudy export checks its outputs against the trained model's."""

    def __init__(self, trained: RecurrentClassifier):
        super().__init__()
        rnn = trained.rnn
        # the trained parts it shares (not the packed model whole: its recurrent weights would
        # ride along in the exported file unused)
        self.embed, self.head, self.pooling = trained.embed, trained.head, trained.pooling
        if trained.pooling == "attention":
            self.attention = trained.attention
        self.layers, self.hidden = rnn.num_layers, rnn.hidden_size
        self.directions = 2 if rnn.bidirectional else 1
        tanh_rnn = isinstance(rnn, nn.RNN) and rnn.nonlinearity == "tanh"
        extra = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
        self.cells = nn.ModuleList()
        for layer in range(rnn.num_layers):
            width = rnn.input_size if layer == 0 else rnn.hidden_size * self.directions
            for suffix in ("", "_reverse")[:self.directions]:
                # copies of the trained weights under the one-layer names (weight_ih_l0, ...)
                weights = {name.replace(f"_l{layer}{suffix}", "_l0"): value
                           for name, value in rnn.state_dict().items() if name.endswith(f"_l{layer}{suffix}")}
                if tanh_rnn:
                    cell = nn.GRU(width, rnn.hidden_size, batch_first=True)
                    weights = _tanh_rnn_as_gru(weights, rnn.hidden_size)
                else:
                    cell = type(rnn)(width, rnn.hidden_size, bias=rnn.bias, batch_first=True, **extra)
                cell.load_state_dict(weights)
                self.cells.append(cell)
        self.eval()

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        lengths = lengths.to(ids.device).unsqueeze(1)
        mask = steps < lengths  # True at real words
        # reading order reversed within each sequence's length; padding positions map to themselves
        backwards = torch.where(mask, lengths - 1 - steps, steps)
        h = self.embed(ids)
        for layer in range(self.layers):
            outs = []
            for d in range(self.directions):
                cell = self.cells[layer * self.directions + d]
                if d == 0:
                    outs.append(cell(h)[0])
                else:  # read backwards, then put the outputs back in reading order
                    outs.append(_reorder(cell(_reorder(h, backwards))[0], backwards))
            h = torch.cat(outs, dim=-1)
        if self.pooling == "last":
            hidden = self.hidden
            last = (lengths - 1).clamp(min=0).unsqueeze(-1).expand(-1, 1, hidden)
            summary = h[..., :hidden].gather(1, last).squeeze(1)  # forward: the state at the last word
            if self.directions == 2:  # backward: its state after reading back to the first word
                summary = torch.cat([summary, h[:, 0, hidden:]], dim=1)
        elif self.pooling == "max":
            summary = h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
        else:
            summary = self.attention(h, mask)
        return self.head(summary)


@register_model("text_rnn")
def text_rnn(in_shape, num_classes, *, cell: Literal["rnn", "gru", "lstm"] = "lstm", embed_dim: Size = 128,
             hidden: Size = 128, layers: Depth = 1, bidirectional: bool = False,
             pooling: Literal["last", "attention", "max"] = "last", dropout: Probability = 0.5) -> nn.Module:
    """in_shape: (vocabulary size,).  dropout: on the embeddings, between layers and before the
    classifier (small data: 5,000 questions overfit fast)."""
    return RecurrentClassifier(in_shape[0], num_classes, cell, embed_dim, hidden, layers, bidirectional,
                               pooling, dropout)
