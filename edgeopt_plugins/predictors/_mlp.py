"""Small multilayer perceptrons: trained with PyTorch, served with NumPy.

The fitted networks of this package are small (a few hundred units). Training
uses PyTorch (Adam, seeded); inference runs in NumPy on the exported weights,
which keeps predictions fast for small batches, free of framework state, and
saveable as plain float32 arrays (safetensors).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgeopt_plugins._threads import torch_threads
from edgeopt_plugins.exceptions import ModelFormatError

__all__ = ["NumpyMLP", "torch_mlp", "export_mlp", "fit_regressor", "torch_threads"]


@dataclass
class NumpyMLP:
    """A ReLU MLP with input/output standardisation, evaluated in NumPy.

    Attributes:
        weights: One ``(in, out)`` matrix per layer.
        biases: One ``(out,)`` vector per layer.
        in_mean, in_std: Input standardisation.
        out_mean, out_std: Output de-standardisation.
    """

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    in_mean: np.ndarray
    in_std: np.ndarray
    out_mean: np.ndarray
    out_std: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_in(self) -> int:
        return int(self.weights[0].shape[0])

    @property
    def n_out(self) -> int:
        return int(self.weights[-1].shape[1])

    def hidden(self, x: np.ndarray) -> np.ndarray:
        """Activations of the last hidden layer (standardised input)."""
        h = (np.asarray(x, dtype=np.float32) - self.in_mean) / self.in_std
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            h = np.maximum(h @ w + b, 0.0)
        return h

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h = self.hidden(x)
        return (h @ self.weights[-1] + self.biases[-1]) * self.out_std + self.out_mean

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Flat ``{name: float32 array}`` for safetensors."""
        out = {
            f"{prefix}.in_mean": self.in_mean,
            f"{prefix}.in_std": self.in_std,
            f"{prefix}.out_mean": self.out_mean,
            f"{prefix}.out_std": self.out_std,
        }
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            out[f"{prefix}.w{i}"] = w
            out[f"{prefix}.b{i}"] = b
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> NumpyMLP:
        """Inverse of :meth:`to_arrays`; checks shapes fit together."""
        try:
            n = 0
            while f"{prefix}.w{n}" in arrays:
                n += 1
            weights = [np.asarray(arrays[f"{prefix}.w{i}"], dtype=np.float32) for i in range(n)]
            biases = [np.asarray(arrays[f"{prefix}.b{i}"], dtype=np.float32) for i in range(n)]
            mlp = cls(weights, biases, *(np.asarray(arrays[f"{prefix}.{k}"], dtype=np.float32)
                                         for k in ("in_mean", "in_std", "out_mean", "out_std")))
        except KeyError as err:
            raise ModelFormatError(f"network {prefix!r}: tensor {err.args[0]!r} is missing") from None
        if n == 0:
            raise ModelFormatError(f"network {prefix!r}: no layers")
        dims_ok = all(w.ndim == 2 and b.shape == (w.shape[1],) for w, b in zip(weights, biases))
        chain_ok = all(a.shape[1] == b.shape[0] for a, b in zip(weights[:-1], weights[1:]))
        io_ok = mlp.in_mean.shape == mlp.in_std.shape == (mlp.n_in,) and mlp.out_mean.shape == mlp.out_std.shape == (mlp.n_out,)
        if not (dims_ok and chain_ok and io_ok):
            raise ModelFormatError(f"network {prefix!r}: tensor shapes do not fit together")
        return mlp


def torch_mlp(sizes: Sequence[int]):  # -> torch.nn.Sequential
    """``Linear -> ReLU -> ... -> Linear`` with the given layer sizes."""
    import torch

    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def export_mlp(module, in_mean: np.ndarray, in_std: np.ndarray, out_mean: np.ndarray, out_std: np.ndarray) -> NumpyMLP:
    """A :class:`NumpyMLP` from a trained :func:`torch_mlp`."""
    import torch

    linears = [m for m in module if isinstance(m, torch.nn.Linear)]
    return NumpyMLP(
        [m.weight.detach().numpy().T.astype(np.float32).copy() for m in linears],
        [m.bias.detach().numpy().astype(np.float32).copy() for m in linears],
        np.asarray(in_mean, dtype=np.float32),
        np.asarray(in_std, dtype=np.float32),
        np.asarray(out_mean, dtype=np.float32),
        np.asarray(out_std, dtype=np.float32),
    )


def standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and (floored) standard deviations."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean.astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32)


def fit_regressor(
    x: np.ndarray,
    y: np.ndarray,
    *,
    hidden: Sequence[int] = (128, 128),
    epochs: int = 60,
    batch_size: int = 256,
    lr: float = 2e-3,
    weight_decay: float = 1e-5,
    seed: int = 0,
    on_epoch: Callable[[int], None] | None = None,
) -> NumpyMLP:
    """Fit a ReLU MLP ``x -> y`` by mean squared error on standardised targets.

    Args:
        x: ``(n, d_in)`` inputs.
        y: ``(n, d_out)`` targets (1-D is treated as one column).
        hidden: Hidden layer sizes.
        epochs: Passes over the data.
        batch_size: Mini-batch size.
        lr: Adam learning rate (cosine-decayed to 5% over the run).
        weight_decay: Adam weight decay.
        seed: Seed of initialisation and shuffling.
        on_epoch: Called after each epoch with its number (progress bars).

    Returns:
        The fitted network as a :class:`NumpyMLP`.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(256, 3)).astype(np.float32)
        >>> mlp = fit_regressor(x, x.sum(1), hidden=(16,), epochs=40, seed=0)
        >>> float(np.abs(mlp(x)[:, 0] - x.sum(1)).mean()) < 0.3
        True
    """
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        y = y[:, None]
    in_mean, in_std = standardiser(x)
    out_mean, out_std = standardiser(y)
    with torch_threads(1):
        return _train_regressor(x, y, in_mean, in_std, out_mean, out_std, hidden=hidden, epochs=epochs,
                                batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed, on_epoch=on_epoch)


def _train_regressor(x: np.ndarray, y: np.ndarray, in_mean: np.ndarray, in_std: np.ndarray, out_mean: np.ndarray,
                     out_std: np.ndarray, *, hidden: Sequence[int], epochs: int, batch_size: int, lr: float,
                     weight_decay: float, seed: int, on_epoch: Callable[[int], None] | None) -> NumpyMLP:
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    net = torch_mlp([x.shape[1], *hidden, y.shape[1]])
    xt = torch.from_numpy((x - in_mean) / in_std)
    yt = torch.from_numpy((y - out_mean) / out_std)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    n = x.shape[0]
    steps_per_epoch = max(1, -(-n // batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch, eta_min=lr * 0.05)
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            batch = perm[start:start + batch_size]
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(xt[batch]), yt[batch])
            loss.backward()
            opt.step()
            sched.step()
        if on_epoch is not None:
            on_epoch(epoch)
    return export_mlp(net, in_mean, in_std, out_mean, out_std)
