"""Small torch networks the attribution tests share: a ReLU MLP, one with BatchNorm, a CNN on
8x8 images (with and without BatchNorm), and a CNN trained on scikit-learn's bundled digits.
Weights are seeded; BatchNorm running statistics are set to non-trivial values so that eval
mode is not the identity."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import nn


def _seeded(seed: int) -> None:
    torch.manual_seed(seed)


def _warm_batchnorm(net: nn.Module, x: torch.Tensor) -> nn.Module:
    """Run a few training-mode passes so BatchNorm holds real running statistics, then eval."""
    net.train()
    with torch.no_grad():
        for _ in range(5):
            net(x)
    return net.eval()


def mlp(n_in: int = 6, n_out: int = 3, hidden: int = 16, bias: bool = True, seed: int = 0) -> nn.Module:
    _seeded(seed)
    return nn.Sequential(nn.Linear(n_in, hidden, bias=bias), nn.ReLU(), nn.Linear(hidden, hidden, bias=bias),
                         nn.ReLU(), nn.Linear(hidden, n_out, bias=bias)).eval()


def bn_mlp(n_in: int = 6, n_out: int = 3, hidden: int = 16, seed: int = 0) -> nn.Module:
    _seeded(seed)
    net = nn.Sequential(nn.Linear(n_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                        nn.ReLU(), nn.Linear(hidden, n_out))
    return _warm_batchnorm(net, torch.randn(64, n_in) * 2 + 0.5)


def cnn(n_out: int = 10, batchnorm: bool = False, seed: int = 0) -> nn.Module:
    """Input (n, 1, 8, 8)."""
    _seeded(seed)
    layers: list[nn.Module] = [nn.Conv2d(1, 8, 3, padding=1)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(8))
    layers += [nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(16))
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
               nn.Flatten(), nn.Linear(16 * 2 * 2, 32), nn.ReLU(), nn.Linear(32, n_out)]
    net = nn.Sequential(*layers)
    return _warm_batchnorm(net, torch.rand(64, 1, 8, 8) * 16) if batchnorm else net.eval()


@lru_cache(maxsize=1)
def digits() -> tuple[torch.Tensor, np.ndarray]:
    """scikit-learn's bundled 8x8 digits as (n, 1, 8, 8) float32 in [0, 1], and the labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images[:, None] / 16.0, dtype=torch.float32)
    return x, d.target


@lru_cache(maxsize=1)
def digits_cnn() -> nn.Module:
    """A CNN trained briefly on the digits (about 94% training accuracy). Trained on one
    thread: tiny passes gain nothing from more, and lose much when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_digits_cnn()
    finally:
        torch.set_num_threads(threads)


def _train_digits_cnn() -> nn.Module:
    x, y = digits()
    net = cnn(10, seed=0).train()
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    yt = torch.tensor(y)
    g = torch.Generator().manual_seed(0)
    for _ in range(8):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), yt[idx]).backward()
            opt.step()
    return net.eval()


def reference_gradient_x_input(model, inputs, target=None):
    """Gradient x input written on torch.autograd, independent of the package's methods."""
    from pellucid.attribution import prepare

    prep = prepare(model, inputs, target)
    x = prep.x.clone().requires_grad_(True)
    out = prep.select(prep.fn(x))
    (g,) = torch.autograd.grad(out.sum(), x)
    return prep.result(g * x, "gradient_x_input", outputs=out.detach())
