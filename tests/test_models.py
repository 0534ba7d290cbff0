"""Every registered model, timm-style: output shape, a backward pass that reaches every
parameter, no NaN, and a pinned parameter count (a silent architecture change fails here)."""

import pytest
import torch

from deepstudy.data.text import TokenBatch
from deepstudy.models import create_model, list_models, register_model
from deepstudy.models.summary import format_summary, summarize

VOCAB = 100  # text models: in_shape is (vocabulary size,)

# name -> (input shape, parameters with default options, 10 classes)
PINNED = {
    "cnn_simple": ((1, 28, 28), 421_642),
    "fastnet_cifar": ((3, 32, 32), 1_971_352),  # whitening bias 24 + convs 1,967,616 + BN shifts 1,152 + head 2,560
    "lenet5": ((1, 28, 28), 61_706),  # the classic LeNet-5 count
    "mlp": ((1, 28, 28), 134_794),  # 784-128-128-128-10
    "rnn_rows": ((1, 28, 28), 82_186),  # LSTM(28 -> 128) + Linear(128 -> 10)
    "series_rnn": ((12, 1), 162),  # LSTM(1 -> 4) + Linear(4 -> 10): windows of 12 steps of 1 value
    # transfer learning: torchvision's convolutional bases (classifiers dropped) + the seeds'
    # head, Flatten -> 256 -> 10; at 64x64 every base ends at 2x2
    "vgg16": ((3, 64, 64), 15_241_802),  # 14,714,688 (torchvision's vgg16.features) + 2,048*256+256 + 2,570
    "vgg16_bn": ((3, 64, 64), 15_250_250),
    "resnet18": ((3, 64, 64), 11_703_626),  # 11,176,512 (resnet18 without fc) + 524,544 + 2,570
    "resnet50": ((3, 64, 64), 25_608_010),
    "mobilenet_v3_small": ((3, 64, 64), 1_519_658),
    "vgg_small_cifar": ((3, 32, 32), 814_570),
    # Embedding(100, 128) + LSTM(128 -> 128) + Linear(128 -> 10)
    "text_rnn": ((VOCAB,), 100 * 128 + 4 * 128 * (128 + 128 + 2) + 128 * 10 + 10),
    # Embedding(100, 128) + 2 pre-norm layers (attention 4*128*128+4*128, FF 128-256-128, 2 LayerNorms) + final LayerNorm + Linear
    "text_transformer": ((VOCAB,), 100 * 128 + 2 * (4 * 128 * 129 + 128 * 256 + 256 + 256 * 128 + 128 + 4 * 128)
                         + 2 * 128 + 128 * 10 + 10),
    # Kim's CNN-rand: Embedding(100, 300) + Conv1d(300 -> 100) of widths 3, 4, 5 + Linear(300 -> 10)
    "text_cnn": ((VOCAB,), 100 * 300 + sum(100 * 300 * w + 100 for w in (3, 4, 5)) + 300 * 10 + 10),
    # the seed's: Embedding(100, 32) + LSTM(32 -> 128) + Linear(128 -> 10)
    "char_lstm": ((VOCAB,), 100 * 32 + 4 * 128 * (32 + 128 + 2) + 128 * 10 + 10),
    # CIFAR-shaped models (3 x 32 x 32)
    "cnn_bn": ((3, 32, 32), 2_197_962),
    "alexnet_mini": ((3, 32, 32), 4_413_962),
    "alexnet_cifar": ((3, 32, 32), 36_054_858),
    "zfnet_cifar": ((3, 32, 32), 8_052_970),
    "vgg11_cifar": ((3, 32, 32), 9_225_610),
    "vgg11_bn_cifar": ((3, 32, 32), 9_228_362),
    "vgg16_cifar": ((3, 32, 32), 14_719_818),
    "vgg16_bn_cifar": ((3, 32, 32), 14_724_042),
    "resnet20_cifar": ((3, 32, 32), 269_722),  # He et al. 2015 (option A): 0.27M
    "resnet32_cifar": ((3, 32, 32), 464_154),  # 0.46M
    "resnet56_cifar": ((3, 32, 32), 853_018),  # 0.85M
    "resnet18_cifar": ((3, 32, 32), 11_173_962),
}
TEXT_MODELS = {"text_rnn", "text_transformer", "text_cnn"}
LANGUAGE_MODELS = {"char_lstm"}


def example_input(name, in_shape, batch=4):
    """What the model reads: images, (token ids, lengths) for text, a window of ids for a language model."""
    if name in TEXT_MODELS:
        lengths = torch.tensor([7, 3, 5, 1][:batch])
        ids = torch.randint(2, in_shape[0], (batch, 7))
        ids[torch.arange(7) >= lengths.unsqueeze(1)] = 0  # <pad> after each sequence
        return TokenBatch(ids, lengths)
    if name in LANGUAGE_MODELS:
        return torch.randint(0, in_shape[0], (batch, 9))
    return torch.randn(batch, *in_shape)

VARIANTS = [
    ("mlp", {"hidden": (64, 32), "activation": "gelu", "batch_norm": True, "dropout": 0.2}),
    ("mlp", {"activation": "sigmoid"}),
    ("cnn_simple", {"batch_norm": True, "dropout": 0.4, "block_dropout": 0.2, "convs_per_block": 2}),
    ("cnn_simple", {"hidden": 0, "kernel_size": 5}),
    ("lenet5", {"activation": "relu"}),
    ("rnn_rows", {"cell": "rnn"}),
    ("rnn_rows", {"cell": "gru", "layers": 2, "dropout": 0.1}),
    ("rnn_rows", {"cell": "lstm", "bidirectional": True}),
    ("text_rnn", {"cell": "rnn", "bidirectional": True}),
    ("text_rnn", {"cell": "gru", "layers": 2, "pooling": "attention"}),
    ("text_rnn", {"cell": "lstm", "bidirectional": True, "pooling": "attention", "embed_dim": 16, "hidden": 8}),
    ("text_transformer", {"dim": 32, "heads": 2, "layers": 1, "ff_dim": 64}),
    ("text_cnn", {"embed_dim": 16, "widths": (2, 7), "maps": 8, "dropout": 0.0}),  # a width past the longest input
    ("text_cnn", {"embed_init": 0.0}),  # nn.Embedding's N(0, 1)
    ("char_lstm", {"hidden": 64, "layers": 2, "dropout": 0.3}),
]
CIFAR_VARIANTS = [
    ("cnn_bn", {"channels": (16, 32), "convs_per_block": 1, "hidden": 0}),
    ("alexnet_mini", {"batch_norm": True, "channels": (16, 16, 32, 32, 16), "hidden": 64}),
    ("alexnet_cifar", {"channels": (16, 16, 32, 32, 16), "hidden": 64}),
    ("zfnet_cifar", {"batch_norm": False, "hidden": (64, 32)}),
    ("vgg16_bn_cifar", {"width": 16, "dropout": 0.5}),
    ("resnet20_cifar", {"shortcut": "B"}),
    ("resnet56_cifar", {"width": 8}),
    ("resnet18_cifar", {"width": 16}),
    ("fastnet_cifar", {"widths": (8, 16), "activation": "relu", "tta": "flip_translate"}),
]


def test_every_model_is_pinned():
    assert set(list_models()) == set(PINNED), "a new model needs its parameter count pinned here"


def check_forward_backward(model, in_shape, num_classes=10, batch=4, name=""):
    torch.manual_seed(0)
    model.train()
    x = example_input(name, in_shape, batch)
    out = model(x)
    if name in LANGUAGE_MODELS:  # (logits at every position, state)
        out = out[0]
        assert out.shape == (batch, x.shape[1], num_classes)
        out = out.flatten(0, 1)
    else:
        assert out.shape == (batch, num_classes)
    assert torch.isfinite(out).all()
    out.logsumexp(1).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


@pytest.mark.parametrize("name", sorted(PINNED))
def test_registered_model(name):
    in_shape, count = PINNED[name]
    model = create_model(name, in_shape, 10)
    assert sum(p.numel() for p in model.parameters()) == count
    check_forward_backward(model, in_shape, name=name)


@pytest.mark.parametrize("name, options", VARIANTS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(VARIANTS)])
def test_model_options(name, options):
    in_shape = PINNED[name][0]
    check_forward_backward(create_model(name, in_shape, 10, **options), in_shape, name=name)


@pytest.mark.parametrize("name, options", CIFAR_VARIANTS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CIFAR_VARIANTS)])
def test_cifar_model_options(name, options):
    check_forward_backward(create_model(name, (3, 32, 32), 10, **options), (3, 32, 32))


def test_resnet_cifar_shortcuts():
    # option A adds no parameters: the same count as the paper's 0.27M; B adds 1x1 projections
    a = create_model("resnet20_cifar", (3, 32, 32), 10)
    b = create_model("resnet20_cifar", (3, 32, 32), 10, shortcut="B")
    extra = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)  # two 1x1 convs and their BatchNorms
    assert sum(p.numel() for p in b.parameters()) - sum(p.numel() for p in a.parameters()) == extra
    # 6n+2 weighted layers: 19 convs + 1 linear for n=3
    assert sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in a.modules()) == 20
    assert sum(isinstance(m, torch.nn.Conv2d) for m in create_model("resnet56_cifar", (3, 32, 32), 10).modules()) == 55


def test_cifar_models_have_no_imagenet_stem():
    # every CIFAR model keeps full resolution through its first layer (no 7x7/11x11 stride-2+ stem)
    for name in [n for n, (shape, _) in PINNED.items() if shape == (3, 32, 32)]:
        first = next(m for m in create_model(name, (3, 32, 32), 10).modules() if isinstance(m, torch.nn.Conv2d))
        assert first.stride == (1, 1) and first.kernel_size[0] <= 5, name


@pytest.mark.parametrize("name", ["mlp", "cnn_simple", "lenet5", "rnn_rows"])
def test_three_channel_32px_input(name):
    check_forward_backward(create_model(name, (3, 32, 32), 7), (3, 32, 32), num_classes=7)


def test_duplicate_names_are_rejected():
    with pytest.raises(ValueError, match="already registered"):
        register_model("lenet5")(lambda in_shape, num_classes: None)


def test_list_models_glob():
    assert list_models("cnn*") == ["cnn_bn", "cnn_simple"]
    assert list_models("resnet*_cifar") == ["resnet18_cifar", "resnet20_cifar", "resnet32_cifar", "resnet56_cifar"]


def test_summary_counts_and_flops():
    model = create_model("mlp", (1, 28, 28), 10, hidden=(128,))
    info = summarize(model, (1, 28, 28))
    assert info["trainable"] == 784 * 128 + 128 + 128 * 10 + 10
    assert info["non_trainable"] == 0
    assert info["flops"] == 2 * (784 * 128 + 128 * 10)  # one multiply-add = 2 FLOPs
    assert [r["output"] for r in info["rows"]] == ["784", "128", "128", "10"]
    text = format_summary(info)
    assert "101,770" in text and "FLOPs" in text


def test_summary_counts_batchnorm_statistics_as_non_trainable():
    model = create_model("cnn_simple", (1, 28, 28), 10, batch_norm=True)
    info = summarize(model, (1, 28, 28))
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert info["non_trainable"] == sum(2 * m.num_features for m in bn)
    assert model.training  # summarize restores the mode it found


def test_bidirectional_reads_both_ends():
    # the backward direction's summary of the sequence lives at t=0: changing only the first
    # row must change the output through it even with the forward state fixed
    model = create_model("rnn_rows", (1, 28, 28), 10, bidirectional=True).eval()
    x = torch.randn(1, 1, 28, 28)
    y = x.clone()
    y[..., 0, :] += 1
    assert not torch.allclose(model(x), model(y))
