"""Neural networks from nothing but NumPy: every gradient written out by hand and visible.

    layers.py     Linear, Sigmoid, Tanh, ReLU, GELU (exact and tanh form), Sequential:
                  forward and backward passes, with the derivations in the comments
    losses.py     softmax cross-entropy (fused, numerically stable), mean squared error
    optim.py      SGD with momentum, Adam, cosine decay
    gradcheck.py  every backward pass against central finite differences
    data.py       generated problems and MNIST as arrays; shuffled mini-batches
    models.py     linear and MLP networks by name
    train.py      the training loop
    special.py    the normal distribution function Φ (NumPy has no erf)

Importing this package never imports torch (a test checks it); PyTorch appears only in the
tests, as the oracle the gradients are compared with.  The recipes that run these models
(`deepstudy run scratch-softmax-mnist`, ...) write the same run directory as the PyTorch ones.

    import numpy as np
    from deepstudy.scratch import Linear, ReLU, Sequential, SoftmaxCrossEntropy, SGD
    rng = np.random.default_rng(0)
    net = Sequential(Linear(784, 128, rng, init="he"), ReLU(), Linear(128, 10, rng))
    loss_fn, opt = SoftmaxCrossEntropy(), SGD(lr=0.1, momentum=0.9)
    loss = loss_fn.forward(net.forward(x), y)      # x: (N, 784) float32, y: (N,) int labels
    net.backward(loss_fn.backward())
    opt.step(net.params, net.grads)
"""

from .gradcheck import check_all, check_layer, check_loss, numerical_gradient
from .layers import GELU, Layer, Linear, ReLU, Sequential, Sigmoid, Tanh
from .losses import MSE, SoftmaxCrossEntropy
from .optim import SGD, Adam

__all__ = ["Layer", "Linear", "Sigmoid", "Tanh", "ReLU", "GELU", "Sequential", "SoftmaxCrossEntropy", "MSE",
           "SGD", "Adam", "check_all", "check_layer", "check_loss", "numerical_gradient"]
