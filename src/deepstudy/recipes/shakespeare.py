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
              target: float | None = None, seed=None, shows: str = ""):
    register_recipe(Recipe(
        name=name, study="Tiny Shakespeare", task="language_model", description=description, shows=shows,
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


# Why windows of 64 characters: on a CPU the budget is updates, not characters.  64 streams x
# 64 characters is 244 updates per pass over the text (128 would halve them), and 64 steps of
# backpropagation are more than a character model's useful memory (char-rnn used 50).
lm_recipe("shakespeare-char-lstm",
          "Embedding 32 -> LSTM 128 with dropout -> softmax over 65 characters (the seed's size), truncated BPTT",
          model={"embed_dim": 32, "hidden": 128, "layers": 1, "dropout": 0.1},
          optim={"name": "adam", "lr": 3e-3},
          train={"epochs": 10, "batch_size": 64, "grad_clip": 1.0},
          data={"window": 64},
          seed=Reference(None, "seed notebook: Embedding 32 -> LSTM 128 with dropout, sliding windows, "
                               "temperature sampling"),
          shows="temperature sampling of Shakespeare")

lm_recipe("shakespeare-char-lstm-large",
          "Embedding 32 -> LSTM 512 with dropout -> softmax, truncated BPTT, bf16 products; sized for 15 minutes "
          "on a 2-core CPU",
          model={"embed_dim": 32, "hidden": 512, "layers": 1, "dropout": 0.1},
          optim={"name": "adam", "lr": 3e-3},
          # Why one layer of 512 and bf16: in 15 minutes of 2 CPU cores the number of updates
          # decides the loss.  Per update (64 x 64 characters, one core) LSTM 512 takes 0.29 s in
          # bf16 and 0.42 s in fp32; two layers of 512 take 0.71 s in bf16, 2.5x fewer updates.
          # (LSTM 512 ends its first pass over the text, 244 updates, at 2.16 nats: far to go.)
          # max_minutes: the epoch that crosses 13 minutes is the last, so the whole command
          # (data, test pass, samples) stays within 15 minutes on a slower machine too.
          train={"epochs": 15, "batch_size": 64, "grad_clip": 1.0, "precision": "auto", "max_minutes": 13.0},
          data={"window": 64},
          target=1.60,
          shows="a wider LSTM, lower loss in 15 minutes")
