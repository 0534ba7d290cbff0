"""Character-level language models on tiny Shakespeare: the seed's small LSTM and a larger one
sized to train within 15 minutes on a 2-core CPU.

The headline is the validation loss in nats per character (the number char-rnn and nanoGPT
print); the test half of the held-out text is evaluated once, at the end.  Evidence for each
recipe (tier, hardware, wall time) is in measured.json and `deepstudy list`.
"""

from . import Recipe, Reference, register_recipe

# seconds: 40,000 real characters, one epoch, a narrow LSTM; proves the path runs and learns
SMOKE = {"data.limit": 40_000, "train.epochs": 1, "train.batch_size": 8, "data.window": 32, "model.hidden": 64,
         "model.layers": 1}

NANOGPT = Reference(1.47, "nanoGPT README: 6-layer, 384-wide character Transformer (10.7M parameters) "
                          "on a GPU, validation loss 1.4697", split="val")


def lm_recipe(name: str, description: str, model: dict, optim: dict, train: dict, data: dict | None = None,
              target: float | None = None, seed=None):
    register_recipe(Recipe(
        name=name, study="Tiny Shakespeare", task="language_model", description=description,
        config={
            "data": {"name": "tinyshakespeare", "val_fraction": 0.05, "test_fraction": 0.05, **(data or {})},
            "model": {"name": "char_lstm", **model},
            "optim": optim,
            "schedule": {"name": "cosine"},
            # monitor: a language model has no accuracy; eval_batch_size: streams the held-out
            # text is read as (each starts without context, so few and long)
            "train": {"monitor": "val_loss", "eval_batch_size": 16, **train},
        },
        tiers={"smoke": SMOKE},
        metric="loss", metric_split="val",
        seed=seed, published=NANOGPT, target={"quick": target} if target else {},
    ))


lm_recipe("shakespeare-char-lstm",
          "Embedding 32 -> LSTM 128 with dropout -> softmax over 65 characters (the seed's size), truncated BPTT",
          model={"embed_dim": 32, "hidden": 128, "layers": 1, "dropout": 0.1},
          optim={"name": "adam", "lr": 3e-3},
          train={"epochs": 10, "batch_size": 64, "grad_clip": 1.0},
          data={"window": 128},
          seed=Reference(None, "seed notebook: Embedding 32 -> LSTM 128 with dropout, sliding windows, "
                               "temperature sampling"))

lm_recipe("shakespeare-char-lstm-large",
          "Embedding 32 -> 2-layer LSTM 512 with dropout -> softmax, truncated BPTT; sized for 15 minutes on a 2-core CPU",
          model={"embed_dim": 32, "hidden": 512, "layers": 2, "dropout": 0.2},
          optim={"name": "adam", "lr": 2e-3},
          train={"epochs": 4, "batch_size": 64, "grad_clip": 1.0},
          data={"window": 128},
          target=1.60)
