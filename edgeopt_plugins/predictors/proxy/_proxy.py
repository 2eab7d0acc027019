"""``ProxyPredictor``: a latency predictor fitted on one device, for any architecture of its space.

Two models:

- ``"additive"``: latency = intercept + one cost per (decision, choice), a ridge fit on the
  one-hot encoding. By default in milliseconds (latencies of layers add up), optionally in
  log space. The penalty is chosen by exact leave-one-out, so the same class also serves as
  the "k samples alone" baseline.
- ``"mlp"``: a small PyTorch network on the one-hot + FLOPs-like summary with a linear skip
  path, trained on log-latency with early stopping on a held-out tenth. It captures
  interactions between decisions (e.g. NB201 nodes whose inputs are all ``none``).

Saved as a folder: ``predictor.json`` (format, space, model, normalisation) and
``weights.safetensors``; never pickles.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from edgeopt_plugins._io import atomic_write, display_path, write_json
from edgeopt_plugins._threads import torch_threads
from edgeopt_plugins.exceptions import InputError, ModelFormatError
from edgeopt_plugins.predictors.proxy._linear import ridge_path, select_alpha
from edgeopt_plugins.predictors._measurements import as_measurements
from edgeopt_plugins.predictors._monotonicity import kendall, spearman
from edgeopt_plugins.spaces import SearchSpace, saved_space, space_record

__all__ = ["PROXY_FORMAT", "PROXY_MODELS", "ProxyPredictor"]

PROXY_FORMAT = 1
PROXY_MODELS = ("additive", "mlp")
_CONFIG = "predictor.json"
_WEIGHTS = "weights.safetensors"


class ProxyPredictor:
    """Latency predictor of one device, fitted on that device's measurements.

    Args:
        model: ``"additive"`` (ridge on one-hot) or ``"mlp"`` (small network with a linear skip).
        log_space: Fit log-latency instead of milliseconds (default: false for
            ``"additive"``, true for ``"mlp"``).
        alpha: Ridge penalty of the additive model, relative to the design's scale;
            ``None`` chooses it by exact leave-one-out among a grid.
        hidden: Width of the two hidden layers of the MLP.
        max_epochs: Epoch limit of the MLP (early stopping usually ends sooner).
        seed: Seed of the MLP's initialisation, validation split and batches.

    Example:
        >>> from edgeopt_plugins.predictors import ProxyPredictor
        >>> from edgeopt_plugins.spaces import get_space
        >>> space = get_space("nb201")
        >>> archs = space.sample(200, seed=0)
        >>> lat = 1.0 + space.costs(archs)[:, 0] / 10   # a device whose latency is additive
        >>> p = ProxyPredictor(model="additive").fit(dict(zip(archs, lat)), space="nb201")
        >>> bool(abs(p.predict(archs[:3]) - lat[:3]).max() < 1e-6)
        True
    """

    def __init__(
        self,
        *,
        model: str = "additive",
        log_space: bool | None = None,
        alpha: float | None = None,
        hidden: int = 64,
        max_epochs: int = 80,
        seed: int = 0,
    ) -> None:
        if model not in PROXY_MODELS:
            raise InputError(f"ProxyPredictor: model must be one of {', '.join(PROXY_MODELS)}, got {model!r}")
        if alpha is not None and not (np.isfinite(alpha) and alpha >= 0):
            raise InputError(f"ProxyPredictor: alpha must be a non-negative number or None, got {alpha!r}")
        if not isinstance(hidden, int) or hidden < 1:
            raise InputError(f"ProxyPredictor: hidden must be a positive integer, got {hidden!r}")
        if not isinstance(max_epochs, int) or max_epochs < 1:
            raise InputError(f"ProxyPredictor: max_epochs must be a positive integer, got {max_epochs!r}")
        self.model = model
        self.log_space = (model == "mlp") if log_space is None else bool(log_space)
        self.alpha = alpha
        self.hidden = hidden
        self.max_epochs = max_epochs
        self.seed = seed
        self.space: SearchSpace | None = None
        self.device: str | None = None
        self.n_train = 0
        self._tensors: dict[str, np.ndarray] = {}
        self._net: Any = None

    def __repr__(self) -> str:
        state = f"device={self.device!r}, n_train={self.n_train}" if self.space else "unfitted"
        return f"ProxyPredictor(model={self.model!r}, log_space={self.log_space}, {state})"

    # ----------------------------------------------------------------- fit / predict
    def fit(self, measurements: Any, *, space: str | SearchSpace | None = None, device: str | None = None) -> ProxyPredictor:
        """Fit on a device's measurements (profile, table column, dict or :class:`Measurements`).

        Returns:
            ``self``.
        """
        data = as_measurements(measurements, space=space, device=device)
        self.space = data.space
        self.device = data.name
        self.n_train = len(data)
        idx = data.indices
        y = np.log(data.latency_ms) if self.log_space else data.latency_ms
        if self.model == "additive":
            self._fit_additive(idx, y)
        else:
            self._fit_mlp(idx, y)
        return self

    def _fit_additive(self, idx: np.ndarray, y: np.ndarray) -> None:
        assert self.space is not None
        Z = self.space.one_hot(idx).astype(np.float64)
        alphas = (self.alpha,) if self.alpha is not None else (1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
        # With few rows an exact fit is meaningless: leave-one-out picks among real penalties.
        path = ridge_path(Z, y, alphas=alphas)
        best = select_alpha(path, y, criterion="mse") if len(alphas) > 1 else 0
        self._tensors = {
            "coef": path.b[best].astype(np.float64),
            "intercept": np.array([path.beta[best, 0]], dtype=np.float64),
            "alpha": np.array([path.alphas[best]], dtype=np.float64),
        }

    def _features(self, idx: np.ndarray) -> np.ndarray:
        assert self.space is not None
        return self.space.encode(idx, kind="both").astype(np.float32)

    def _fit_mlp(self, idx: np.ndarray, y: np.ndarray) -> None:
        # A 64-wide network gains nothing from intra-op threads, and on a busy machine
        # their hand-offs make training many times slower: train on one thread.
        with torch_threads(1):
            self._train_mlp(idx, y)

    def _train_mlp(self, idx: np.ndarray, y: np.ndarray) -> None:
        import torch

        x = self._features(idx)
        mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
        y_mean, y_std = float(y.mean()), float(y.std() + 1e-12)
        rng = np.random.default_rng(self.seed)
        n = x.shape[0]
        val = rng.permutation(n)[: max(1, n // 10)] if n >= 20 else np.zeros(0, dtype=np.int64)
        train = np.setdiff1d(np.arange(n), val)
        gen = torch.Generator().manual_seed(int(self.seed))
        torch.manual_seed(int(self.seed))
        net = _SkipMLP(x.shape[1], self.hidden)
        xt = torch.from_numpy((x - mean) / std)
        yt = torch.from_numpy(((y - y_mean) / y_std).astype(np.float32))
        opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-5)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.max_epochs)
        batch = int(min(1024, max(32, len(train) // 8)))
        best_loss, best_state, patience = np.inf, None, 0
        tr_idx = torch.from_numpy(train)
        for _epoch in range(self.max_epochs):
            net.train()
            perm = tr_idx[torch.randperm(len(tr_idx), generator=gen)]
            for start in range(0, len(perm), batch):
                rows = perm[start : start + batch]
                loss = torch.mean((net(xt[rows]) - yt[rows]) ** 2)
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
            if val.size:
                net.eval()
                with torch.no_grad():
                    vloss = float(torch.mean((net(xt[val]) - yt[val]) ** 2))
                if vloss < best_loss - 1e-5:
                    best_loss, patience = vloss, 0
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                else:
                    patience += 1
                    if patience >= 10:
                        break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self._net = net
        self._tensors = {
            "x_mean": mean.astype(np.float32),
            "x_std": std.astype(np.float32),
            "y_norm": np.array([y_mean, y_std], dtype=np.float64),
        }

    def predict(self, archs: Any) -> np.ndarray:
        """Predicted latency in milliseconds, one per architecture (strings, dicts or an index matrix)."""
        if self.space is None:
            raise InputError("ProxyPredictor: call fit() (or load()) before predict()")
        idx = self.space.to_indices(archs)
        if self.model == "additive":
            z = self.space.one_hot(idx).astype(np.float64) @ self._tensors["coef"] + self._tensors["intercept"][0]
        else:
            import torch

            x = (self._features(idx) - self._tensors["x_mean"]) / self._tensors["x_std"]
            with torch.no_grad():
                out = self._net(torch.from_numpy(x.astype(np.float32))).numpy().astype(np.float64)
            y_mean, y_std = self._tensors["y_norm"]
            z = out * y_std + y_mean
        if self.log_space:
            return np.exp(z)
        # A linear model may go below zero far from its data; latency cannot.
        return np.maximum(z, 1e-6)

    @property
    def additive_weights(self) -> tuple[np.ndarray, float] | None:
        """``(one-hot coefficients, intercept)`` of an additive model, else ``None``.

        Costs are identifiable only up to a constant per decision (the one-hot blocks and
        the intercept are collinear); the minimum-norm split is returned.
        """
        if self.model != "additive" or self.space is None:
            return None
        return self._tensors["coef"].copy(), float(self._tensors["intercept"][0])

    def evaluate(self, measurements: Any, *, space: str | SearchSpace | None = None, device: str | None = None) -> dict[str, float]:
        """Accuracy on measurements of the same device: Spearman, Kendall, MAPE (%), RMSE (ms)."""
        data = as_measurements(measurements, space=space or self.space, device=device)
        pred = self.predict(list(data.archs))
        true = data.latency_ms
        return {
            "n": len(data),
            "spearman": spearman(pred, true),
            "kendall": kendall(pred, true),
            "mape_pct": float(np.mean(np.abs(pred - true) / true) * 100),
            "rmse_ms": float(np.sqrt(np.mean((pred - true) ** 2))),
        }

    # ----------------------------------------------------------------- files
    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``predictor.json`` + ``weights.safetensors`` into ``folder``; returns the folder."""
        if self.space is None:
            raise InputError("ProxyPredictor: nothing to save, the predictor is not fitted")
        from safetensors.numpy import save as st_save

        out = Path(folder)
        tensors = {k: np.ascontiguousarray(v) for k, v in self._tensors.items()}
        if self._net is not None:
            for key, value in self._net.state_dict().items():
                tensors[f"net.{key}"] = value.detach().cpu().numpy().copy()
        with atomic_write(out / _WEIGHTS, "wb") as handle:
            handle.write(st_save(tensors))
        write_json(out / _CONFIG, {
            "format": PROXY_FORMAT,
            "kind": "edgeopt.ProxyPredictor",
            **space_record(self.space),
            "device": self.device,
            "model": self.model,
            "log_space": self.log_space,
            "hidden": self.hidden,
            "n_train": self.n_train,
        })
        return out

    @classmethod
    def load(cls, folder: str | os.PathLike[str], *, space: str | SearchSpace | None = None) -> ProxyPredictor:
        """Read a predictor written by :meth:`save`.

        Args:
            folder: The predictor folder.
            space: The search space: needed for a space of your own whose features come from
                its builder (an MLP predictor); checked against the saved one when given.

        Raises:
            ModelFormatError: for a missing/corrupt file, another format version or
                tensors that do not match the space.
        """
        root = Path(folder)
        cfg_path, w_path = root / _CONFIG, root / _WEIGHTS
        if not cfg_path.is_file() or not w_path.is_file():
            raise ModelFormatError(f"{display_path(root)}: not a saved ProxyPredictor (needs {_CONFIG} and {_WEIGHTS})")
        try:
            cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ModelFormatError(f"{display_path(cfg_path)}: not valid JSON ({err})") from None
        if not isinstance(cfg, dict) or cfg.get("kind") != "edgeopt.ProxyPredictor":
            raise ModelFormatError(f"{display_path(cfg_path)}: not a ProxyPredictor description")
        if cfg.get("format") != PROXY_FORMAT:
            raise ModelFormatError(
                f"{display_path(cfg_path)}: format {cfg.get('format')!r} is not supported (expected {PROXY_FORMAT})"
            )
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            tensors = load_file(str(w_path))
            space = saved_space(cfg, space, display_path(root))
            self = cls(model=cfg["model"], log_space=bool(cfg["log_space"]), hidden=int(cfg.get("hidden", 64)))
        except (SafetensorError, KeyError, TypeError, ValueError, OSError) as err:
            raise ModelFormatError(f"{display_path(root)}: unreadable predictor ({err})") from None
        self.space, self.device, self.n_train = space, cfg.get("device"), int(cfg.get("n_train", 0))
        self._tensors = {k: v for k, v in tensors.items() if not k.startswith("net.")}
        try:
            if self.model == "additive":
                if self._tensors["coef"].shape != (space.one_hot_width,):
                    raise ValueError(f"coef has shape {self._tensors['coef'].shape}, expected ({space.one_hot_width},)")
            else:
                import torch

                width = space.encode(np.zeros((1, len(space.decisions)), dtype=np.int64)).shape[1]
                net = _SkipMLP(width, self.hidden)
                net.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in tensors.items() if k.startswith("net.")})
                net.eval()
                self._net = net
        except (KeyError, ValueError, RuntimeError) as err:
            raise ModelFormatError(f"{display_path(root)}: weights do not match the {space.name} space ({err})") from None
        return self


def _SkipMLP(width: int, hidden: int) -> Any:
    """``linear(x) + MLP(x)``: the linear path carries the additive part, the MLP the interactions."""
    import torch
    from torch import nn

    class SkipMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(width, 1)
            self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (self.linear(x) + self.mlp(x)).squeeze(-1)

    return SkipMLP()
