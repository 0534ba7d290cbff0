"""A small Transformer encoder for text classification (the seed notebook's "future
improvement"): word embeddings plus sinusoidal positions -> pre-norm encoder layers that
attend over the real words only -> the mean of the outputs over the real words -> linear.

The input is `(token ids, lengths)` like the recurrent classifiers; padding is masked out of
attention and out of the average, so it changes nothing.  Sinusoidal positions (Vaswani et al.
2017) have no length limit, so `predict` takes a question of any length.
"""

import math

import torch
import torch.nn as nn

from ..errors import ConfigError
from . import register_model
from ..config import Depth, Probability, Size


def sinusoidal_positions(length: int, dim: int, device=None) -> torch.Tensor:
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table


class TransformerClassifier(nn.Module):
    def __init__(self, vocab_size, num_classes, dim, heads, layers, ff_dim, dropout):
        super().__init__()
        self.dim = dim
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        layer = nn.TransformerEncoderLayer(dim, heads, ff_dim, dropout, batch_first=True, norm_first=True,
                                           activation="gelu")
        # pre-norm layers need a final LayerNorm; nested tensors are a fast path pre-norm cannot use
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x) -> torch.Tensor:
        ids, lengths = x
        n, t = ids.shape
        mask = torch.arange(t, device=ids.device) < lengths.to(ids.device).unsqueeze(1)  # True at real words
        # the usual sqrt(dim) scale keeps embeddings and positions at comparable sizes
        h = self.embed(ids) * math.sqrt(self.dim) + sinusoidal_positions(t, self.dim, ids.device)
        h = self.encoder(self.dropout(h), src_key_padding_mask=~mask)
        weights = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * weights).sum(1) / weights.sum(1).clamp(min=1)
        return self.head(self.dropout(pooled))


@register_model("text_transformer")
def text_transformer(in_shape, num_classes, *, dim: Size = 128, heads: Size = 4, layers: Depth = 2, ff_dim: Size = 256,
                     dropout: Probability = 0.1) -> nn.Module:
    """in_shape: (vocabulary size,)."""
    if dim % heads or dim % 2:
        raise ConfigError(f"model.dim ({dim}) must be even and divisible by model.heads ({heads})")
    return TransformerClassifier(in_shape[0], num_classes, dim, heads, layers, ff_dim, dropout)
