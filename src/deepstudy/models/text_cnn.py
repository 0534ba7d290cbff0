"""Kim's convolutional network for sentences (Kim 2014, "Convolutional Neural Networks for
Sentence Classification", CNN-rand): word embeddings learned from scratch -> one convolution
per filter width (3, 4, 5 words; 100 feature maps each) -> ReLU -> the largest value of each
feature map over the sentence (max-over-time pooling) -> dropout -> linear.

Each feature map is an n-gram detector ("how many", "who was"); max over time keeps whether and
how strongly it fired anywhere, not where, which is what a question's class mostly depends on.

Word vectors start small, uniform in [-0.25, 0.25] as in Kim's code, not at nn.Embedding's
N(0, 1): Adam moves every weight by about its learning rate per step, so vectors of size 1 barely
move from where chance put them, and the network learns n-grams of random vectors instead of
word vectors (on TREC's validation split, 3-9 points lower; see recipes/trec.py).

The input is `(token ids, lengths)` like the other text classifiers.  Padding never changes a
prediction:
  - the embeddings of every position at or past a sentence's length are zeroed, so what is
    there (the pad token or anything else) is never read;
  - the convolutions are "wide" (width - 1 zero vectors on each side, as in Kim's own code,
    which pads every sentence with width - 1 zero rows in front): a 1-word question still has
    windows of every width, and the first and last words sit in as many windows as the others;
  - the max runs only over windows that hold at least one real word.  A window made of padding
    alone would give ReLU(bias), and how many such windows there are depends on the batch.
"""

import torch
import torch.nn as nn

from . import register_model
from .ensemble import ensemble
from ..config import Amount, Probability, Size, Sizes
from ..errors import ConfigError


class SentenceCNN(nn.Module):
    def __init__(self, vocab_size, num_classes, embed_dim, widths, maps, dropout, embed_init):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        if embed_init:
            with torch.no_grad():
                self.embed.weight.uniform_(-embed_init, embed_init)
                self.embed.weight[0].zero_()  # <pad> stays the zero vector
        self.widths = tuple(widths)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, maps, w, padding=w - 1) for w in self.widths)
        # Kim: dropout on the penultimate layer only (the pooled features), not on the embeddings
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(maps * len(self.widths), num_classes)

    def forward(self, x) -> torch.Tensor:
        ids, lengths = x
        steps = torch.arange(ids.shape[1], device=ids.device)
        lengths = lengths.to(ids.device).unsqueeze(1)
        real = (steps < lengths).unsqueeze(1)  # N x 1 x T: True at real words
        h = self.embed(ids).transpose(1, 2) * real  # N x E x T, zeros past each sentence's end
        pooled = []
        for width, conv in zip(self.widths, self.convs):
            features = torch.relu(conv(h))  # N x maps x (T + width - 1)
            # output j reads positions j - width + 1 .. j: it holds a real word while j < length + width - 1
            ends = torch.arange(features.shape[2], device=ids.device)
            holds_a_word = (ends < lengths + (width - 1)).unsqueeze(1)
            # after the ReLU every value is >= 0, so 0 in the windows left out is the same as -inf
            # for the max (a sentence has at least one real window) and stays finite for an empty one
            pooled.append(features.masked_fill(~holds_a_word, 0.0).amax(dim=2))
        return self.head(self.dropout(torch.cat(pooled, dim=1)))


@register_model("text_cnn")
def text_cnn(in_shape, num_classes, *, embed_dim: Size = 300, widths: Sizes = (3, 4, 5), maps: Size = 100,
             dropout: Probability = 0.5, embed_init: Amount = 0.25, members: Size = 1) -> nn.Module:
    """in_shape: (vocabulary size,).  embed_dim: Kim's 300.  widths: the filter widths in words,
    `maps` feature maps each (Kim's 3, 4, 5 x 100); dropout: on the pooled features before the classifier (Kim's 0.5);
    embed_init: word vectors drawn uniformly from [-embed_init, embed_init] (Kim's code: 0.25),
    0 = PyTorch's N(0, 1); members: an ensemble of this many such nets, each from its own start,
    trained side by side and averaged (models/ensemble.py)."""
    if not widths:
        raise ConfigError("model.widths needs at least one filter width")
    return ensemble(lambda: SentenceCNN(in_shape[0], num_classes, embed_dim, widths, maps, dropout, embed_init), members)
