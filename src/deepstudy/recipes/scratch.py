"""From scratch in NumPy: linear regression, softmax regression and MLPs whose every gradient
is written out by hand (deepstudy.scratch), trained by the NumPy loop into the same run
directory, metrics.json and plots as the PyTorch recipes.  `deepstudy gradcheck` checks the
backward passes against finite differences.

Evidence for each recipe (test number, tier, hardware, wall time) is in measured.json and
`deepstudy list`; it was produced by `deepstudy run NAME` (quick tier) on this project's
2-core CPU.
"""

from . import Recipe, Reference, register_recipe

STUDY = "From scratch (NumPy)"
LECUN_TABLE = "LeCun et al., MNIST database results table (yann.lecun.com/exdb/mnist)"
# seconds, on a real 2,000-image subset: proves the whole path runs, proves nothing about accuracy
SMOKE_MNIST = {"data.limit": 2000, "train.epochs": 1, "train.batch_size": 100}

register_recipe(Recipe(
    name="scratch-linreg", study=STUDY, task="scratch",
    shows="gradient descent finding F = 1.8*C + 32",
    description="Celsius -> Fahrenheit: one weight and one bias, from random values, by full-batch "
                "gradient descent on the mean squared error; recovers F = 1.8*C + 32",
    config={
        # 160 generated pairs, 20% kept for test and 10% of the rest for validation;
        # --set data.noise=5 adds Gaussian noise (in degrees F) to see a fit that is not exact
        "data": {"name": "celsius", "n": 160, "noise": 0.0},
        "model": {"name": "linear"},
        # Why this converges in ~50 steps: the input is standardised, so the loss surface is a
        # round bowl (Hessian 2I) and lr 0.1 shrinks the error by 0.8 per step.  On raw Celsius
        # values its curvature differs ~4,000-fold between directions: a step small enough for
        # the steep one barely moves the bias along the flat one.
        "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.0},
        # full batch (160 > the 115 training points): plain gradient descent, one step per epoch
        "train": {"epochs": 100, "batch_size": 160, "monitor": "val_loss"},
    },
    tiers={"smoke": {"train.epochs": 60}},
    metric="rmse",
))

register_recipe(Recipe(
    name="scratch-softmax-mnist", study=STUDY, task="scratch",
    shows="softmax regression, gradients by hand",
    description="Softmax (multinomial logistic) regression on MNIST in NumPy: SGD, lr 0.1, batch 100, 20 epochs, "
                "as in the seed",
    config={
        # Why x/255 and not standardised pixels: the seed's lr 0.1 was set for inputs in [0, 1];
        # standardising multiplies the inputs by ~3 and the effective step by ~10
        "data": {"name": "mnist", "val_fraction": 0.1, "standardize": False},
        "model": {"name": "linear"},
        "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.0},
        "train": {"epochs": 20, "batch_size": 100},
    },
    tiers={"smoke": SMOKE_MNIST},
    seed=Reference(0.9224, "seed notebook: softmax regression, lr 0.1, batch 100, 20 epochs: "
                           "92.24% test, 92.50% train (test printed after every epoch)"),
    published=Reference(0.88, f"linear classifier (1-layer NN), 12.0% error (LeCun et al. 1998), {LECUN_TABLE}"),
    target={"quick": 0.920},
))

register_recipe(Recipe(
    name="scratch-mlp-toy", study=STUDY, task="scratch",
    shows="an MLP bending a decision boundary",
    description="A small sigmoid MLP (2-16-16-2) on two moons (or --set data.problem=xor|spirals), "
                "with its decision boundary",
    config={
        "data": {"name": "toy2d", "problem": "moons", "n": 1000, "noise": 0.2},
        "model": {"name": "mlp", "hidden": (16, 16), "activation": "sigmoid"},
        "optim": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 200, "batch_size": 32},
    },
    tiers={"smoke": {"train.epochs": 20}},
    target={"quick": 0.95},
))

register_recipe(Recipe(
    name="scratch-mlp-mnist", study=STUDY, task="scratch",
    shows="backprop written out by hand in NumPy",
    description="MLP 784-256-128-10 with ReLU, every gradient by hand in NumPy: SGD with momentum, cosine decay, "
                "10 epochs",
    config={
        "data": {"name": "mnist", "val_fraction": 0.1},
        "model": {"name": "mlp", "hidden": (256, 128), "activation": "relu"},
        "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        # Why cosine: the last epochs at a small step settle into a minimum instead of bouncing
        # around it (measured: see measured.json)
        "schedule": {"name": "cosine"},
        "train": {"epochs": 10, "batch_size": 100},
    },
    tiers={"smoke": SMOKE_MNIST},
    published=Reference(0.9847, f"3-layer NN 500+300 HU, softmax, cross-entropy, weight decay (Hinton), {LECUN_TABLE}"),
    target={"quick": 0.975},
))
