"""The learned device-conditioned optimizer: (device, budget, trade-off) -> designs.

A network maps a device representation (the posterior of its latent, from a
profile) and the optimisation parameters (latency budget, confidence of the
bound, accuracy/latency trade-off weight, optional energy budget) to a
distribution over the designs of the space: a mixture of ``M`` products of
per-decision categoricals. Beam search decodes the most likely designs of each
component; the caller screens them with the predictor's upper bound and ranks
them by predicted accuracy.

Training labels come from the exact solver
(:func:`~edgeopt_plugins.optimizer.top_under_budget` semantics) applied to the
*predicted* upper bounds and accuracies over a candidate pool (every design of
an enumerable space, otherwise the table designs plus a large random sample),
for many devices (training devices with random profiles, and simulated devices
drawn from the learned device prior) and many budgets per device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgeopt_plugins.exceptions import InputError, ModelFormatError
from edgeopt_plugins.predictors import (
    AccuracyPredictor,
    ConditionedPredictor,
    DeviceEmbedding,
    TrainingDevices,
)
from edgeopt_plugins.predictors._mlp import (
    NumpyMLP,
    export_mlp,
    standardiser,
    torch_mlp,
    torch_threads,
)
from edgeopt_plugins.spaces import SearchSpace

__all__ = ["LearnedOptimizer", "OptimizerConfig", "fit_learned_optimizer", "candidate_pool", "Task"]

#: Spaces up to this size use every design as the training-label pool.
POOL_ENUMERATE_LIMIT = 200_000


@dataclass(frozen=True)
class OptimizerConfig:
    """How the learned optimizer is trained.

    Attributes:
        n_devices: Device embeddings to train on (training devices with random
            profiles first, the rest simulated from the device prior).
        cases_per_device: (budget, confidence, trade-off) cases per device.
        profile_ks: Profile sizes drawn for the device embeddings.
        confidences: Confidence levels drawn for the cases.
        tradeoff_share: Share of cases with a non-zero trade-off weight.
        pool_size: Random designs added to the table designs as the label pool
            of spaces too large to enumerate.
        components: Mixture components of the output distribution.
        hidden: Hidden layer sizes.
        epochs, batch_size, lr: Training schedule.
        beam: Designs decoded per query (split across components).
    """

    n_devices: int = 3000
    cases_per_device: int = 8
    profile_ks: tuple[int, ...] = (3, 5, 10, 20, 50)
    confidences: tuple[float, ...] = (0.8, 0.9, 0.95, 0.99)
    tradeoff_share: float = 0.25
    pool_size: int = 30_000
    components: int = 4
    hidden: tuple[int, ...] = (256, 256)
    epochs: int = 30
    batch_size: int = 512
    lr: float = 2e-3
    beam: int = 128

    def __post_init__(self) -> None:
        if self.n_devices < 1 or self.cases_per_device < 1 or self.components < 1 or self.beam < 1:
            raise InputError("optimizer config: n_devices, cases_per_device, components and beam must be >= 1")
        if not 0.0 <= self.tradeoff_share <= 1.0:
            raise InputError(f"tradeoff_share must be in [0, 1], got {self.tradeoff_share}")


@dataclass
class Task:
    """Optimisation parameters of a batch of queries (one row per device).

    Attributes:
        budget_ms: ``(B,)`` latency budgets.
        multiplier: ``(B,)`` calibrated score quantiles of the latency bound.
        tradeoff: ``(B,)`` accuracy points given up per doubling of latency (0: none).
        energy_budget_mj: ``(B,)`` energy budgets (``inf``: none).
        energy_multiplier: ``(B,)`` score quantiles of the energy bound.
    """

    budget_ms: np.ndarray
    multiplier: np.ndarray
    tradeoff: np.ndarray
    energy_budget_mj: np.ndarray
    energy_multiplier: np.ndarray


def candidate_pool(space: SearchSpace, table_indices: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Every design of a small space; else the table designs plus ``size`` random ones."""
    if space.size <= POOL_ENUMERATE_LIMIT:
        return space.all_indices()
    extra = space.sample_indices(size, seed=seed, unique=False)
    pool = np.concatenate([np.asarray(table_indices, dtype=np.int64), extra])
    return np.unique(pool, axis=0)


class LearnedOptimizer:
    """The trained network and its decoder.

    Attributes:
        space: The search space.
        net: Input features -> ``[mixture logits (M), per-decision logits (M x sum of choices)]``.
        components: ``M``.
        energy: Whether inputs include an energy budget.
    """

    def __init__(self, space: SearchSpace, net: NumpyMLP, components: int, energy: bool, info: dict | None = None) -> None:
        self.space = space
        self.net = net
        self.components = int(components)
        self.energy = bool(energy)
        self.info = dict(info or {})
        card = space.cardinalities
        self._width = int(card.sum())
        if net.n_out != self.components * (1 + self._width):
            raise ModelFormatError("optimizer network output does not match the space and components")
        self._offsets = np.concatenate([[0], np.cumsum(card)[:-1]])

    # ----------------------------------------------------------------- features
    @staticmethod
    def features(pred: ConditionedPredictor, emb: DeviceEmbedding, task: Task) -> np.ndarray:
        """Network inputs of a batch of (device, task) pairs."""
        scale = np.sqrt(np.diag(pred.prior_cov))
        block = pred.blocks["latency_ms"]
        theta = (emb.mean - pred.prior_mean) / scale
        lat = pred.metrics["latency_ms"]
        typical = np.sqrt(emb.noise * lat.noise_s2)
        parts = [
            theta[:, block],
            np.log(emb.noise)[:, None],
            (np.log(task.budget_ms) - emb.mean[:, block.start])[:, None],
            (task.multiplier * typical)[:, None],
            np.log1p(emb.k)[:, None],
            np.log1p(task.tradeoff)[:, None],
            (task.tradeoff > 0).astype(np.float64)[:, None],
        ]
        if pred.has_energy:
            eb = pred.blocks["energy_mj"]
            has = np.isfinite(task.energy_budget_mj)
            rel = np.where(has, np.log(np.where(has, task.energy_budget_mj, 1.0)) - emb.mean[:, eb.start], 0.0)
            parts += [theta[:, eb], has.astype(np.float64)[:, None], rel[:, None],
                      (task.energy_multiplier * typical * has)[:, None]]
        return np.concatenate(parts, axis=1).astype(np.float32)

    # ----------------------------------------------------------------- decoding
    def log_probs(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Mixture log-weights ``(B, M)`` and per-decision log-probabilities ``[(B, M, c_j)]``."""
        out = self.net(x).astype(np.float64)
        m = self.components
        mix = out[:, :m]
        mix = mix - np.logaddexp.reduce(mix, axis=1, keepdims=True)
        logits = out[:, m:].reshape(out.shape[0], m, self._width)
        per = []
        for off, c in zip(self._offsets, self.space.cardinalities):
            block = logits[:, :, off:off + c]
            per.append(block - np.logaddexp.reduce(block, axis=2, keepdims=True))
        return mix, per

    def propose(self, x: np.ndarray, beam: int) -> np.ndarray:
        """Top designs of each query: ``(B, n, n_decisions)`` choice indices (rows of ``-1`` pad).

        Each mixture component contributes its ``ceil(beam / M)`` most likely
        designs (exact top-k of a product distribution by beam search); duplicates
        across components are removed.
        """
        mix, per = self.log_probs(x)
        b, m = mix.shape
        width = max(1, -(-beam // m))
        score = np.zeros((b * m, 1))
        seqs = np.zeros((b * m, 1, 0), dtype=np.int64)
        for lp in per:
            lpf = lp.reshape(b * m, -1)
            c = lpf.shape[1]
            cand = (score[:, :, None] + lpf[:, None, :]).reshape(b * m, -1)
            keep = min(width, cand.shape[1])
            top = np.argpartition(-cand, keep - 1, axis=1)[:, :keep] if keep < cand.shape[1] else \
                np.tile(np.arange(cand.shape[1]), (b * m, 1))
            parent, choice = top // c, top % c
            score = np.take_along_axis(cand, top, axis=1)
            seqs = np.concatenate([np.take_along_axis(seqs, parent[:, :, None], axis=1), choice[:, :, None]], axis=2)
        seqs = seqs.reshape(b, -1, len(per))
        score = (score.reshape(b, m, -1) + mix[:, :, None]).reshape(b, -1)
        order = np.argsort(-score, axis=1, kind="stable")
        seqs = np.take_along_axis(seqs, order[:, :, None], axis=1)
        return _dedupe_rows(seqs)

    # ----------------------------------------------------------------- persistence
    def to_arrays(self, prefix: str = "optimizer") -> dict[str, np.ndarray]:
        return self.net.to_arrays(f"{prefix}.net")

    def to_json(self) -> dict:
        return {"components": self.components, "energy": self.energy, "info": self.info}

    @classmethod
    def from_saved(cls, meta: dict, arrays: dict[str, np.ndarray], space: SearchSpace, prefix: str = "optimizer"
                   ) -> LearnedOptimizer:
        try:
            net = NumpyMLP.from_arrays(arrays, f"{prefix}.net")
            return cls(space, net, int(meta["components"]), bool(meta["energy"]), meta.get("info"))
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFormatError(f"optimizer: missing or malformed entry ({err})") from None


def _dedupe_rows(seqs: np.ndarray) -> np.ndarray:
    """Per query, keep the first occurrence of each design; later duplicates become ``-1`` rows."""
    b, n, d = seqs.shape
    out = seqs.copy()
    if n < 2:
        return out
    from edgeopt_plugins.predictors._archkeys import row_keys

    card = np.full(d, int(seqs.max(initial=0)) + 1)
    keys = row_keys(seqs.reshape(-1, d), card).reshape(b, n)
    order = np.argsort(keys, axis=1, kind="stable")  # equal keys keep their original order
    sorted_keys = np.take_along_axis(keys, order, axis=1)
    dup_sorted = np.zeros((b, n), dtype=bool)
    dup_sorted[:, 1:] = sorted_keys[:, 1:] == sorted_keys[:, :-1]
    dup = np.zeros((b, n), dtype=bool)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    out[dup] = -1
    return out


# ===================================================================== training data
def _device_embeddings(pred: ConditionedPredictor, devices: TrainingDevices, cfg: OptimizerConfig,
                       rng: np.random.Generator) -> DeviceEmbedding:
    """Embeddings of training devices (random profiles) and of devices simulated from the prior."""
    lat = pred.metrics["latency_ms"]
    table_pos = lat.table.positions(devices.indices)
    obs = []
    n_real = min(cfg.n_devices // 2, devices.n_devices * 40)
    for i in range(n_real):
        d = i % devices.n_devices
        measured = np.flatnonzero(~np.isnan(devices.latency_ms[:, d]) & (table_pos >= 0))
        if measured.size < 2:
            continue
        k = int(min(rng.choice(cfg.profile_ks), measured.size))
        rows = rng.choice(measured, size=k, replace=False)
        p = table_pos[rows]
        device = [("latency_ms", lat.table_design[p], np.log(devices.latency_ms[rows, d]),
                   lat.noise_s2 * np.exp(lat.table_logw[p]), np.zeros(k))]
        if pred.has_energy and devices.energy_mj is not None and rng.random() < 0.5:
            en = pred.metrics["energy_mj"]
            e_pos = en.table.positions(devices.indices[rows])
            e = devices.energy_mj[rows, d]
            ok = (e_pos >= 0) & ~np.isnan(e)
            if ok.any():
                device.append(("energy_mj", en.table_design[e_pos[ok]], np.log(e[ok]),
                               en.noise_s2 * np.exp(en.table_logw[e_pos[ok]]), np.zeros(int(ok.sum()))))
        obs.append(device)
    n_sim = cfg.n_devices - len(obs)
    if n_sim > 0:
        thetas = rng.multivariate_normal(pred.prior_mean, pred.prior_cov, size=n_sim, method="cholesky")
        g = 1.0 / rng.gamma(lat.noise_alpha, 1.0 / lat.noise_beta, size=n_sim)
        n_table = len(lat.table)
        for i in range(n_sim):
            k = int(min(rng.choice(cfg.profile_ks), n_table))
            p = rng.choice(n_table, size=k, replace=False)
            design = lat.table_design[p]
            s2 = lat.noise_s2 * np.exp(lat.table_logw[p])
            y = design @ thetas[i, pred.blocks["latency_ms"]] + rng.normal(size=k) * np.sqrt(g[i] * s2)
            obs.append([("latency_ms", design, y, s2, np.zeros(k))])
    return pred.embed_observations(obs)


def _labels(pred: ConditionedPredictor, acc_pool: np.ndarray, design: np.ndarray, s2: np.ndarray,
            en_parts: tuple[np.ndarray, np.ndarray] | None, emb: DeviceEmbedding, cfg: OptimizerConfig,
            rng: np.random.Generator) -> tuple[Task, np.ndarray, np.ndarray]:
    """Tasks, label positions in the pool (``-1``: infeasible) and device rows for a chunk of devices."""
    b = len(emb)
    c = cfg.cases_per_device
    mu, sigma = pred.moments(emb, design, s2, np.zeros_like(s2))
    conf = rng.choice(np.asarray(cfg.confidences), size=(b, c))
    q = np.stack([pred.multipliers(emb, float(cc)) for cc in cfg.confidences], axis=1)  # (b, n_conf)
    q_case = q[np.arange(b)[:, None], np.searchsorted(np.asarray(cfg.confidences), conf)]
    tradeoff = np.where(rng.random((b, c)) < cfg.tradeoff_share, np.exp(rng.uniform(np.log(0.05), np.log(5.0), (b, c))), 0.0)
    log_up = mu[:, None, :] + q_case[:, :, None] * sigma[:, None, :]  # (b, c, n)
    n = mu.shape[1]
    # A budget is the upper bound of a random pool design: a uniform quantile of the device's bounds.
    pick = rng.integers(0, n, size=(b, c))
    log_budget = np.take_along_axis(log_up, pick[:, :, None], axis=2)[:, :, 0]
    feasible = log_up <= log_budget[:, :, None]
    e_budget = np.full((b, c), np.inf)
    e_q = np.zeros((b, c))
    if en_parts is not None:
        e_mu, e_sigma = pred.moments(emb, en_parts[0], en_parts[1], np.zeros_like(en_parts[1]), "energy_mj")
        eq_all = np.stack([pred.multipliers(emb, float(cc), "energy_mj") for cc in cfg.confidences], axis=1)
        use = rng.random((b, c)) < 0.3
        e_q = np.where(use, eq_all[np.arange(b)[:, None], np.searchsorted(np.asarray(cfg.confidences), conf)], 0.0)
        e_up = e_mu[:, None, :] + e_q[:, :, None] * e_sigma[:, None, :]
        # Energy budget: the energy bound of a random latency-feasible design.
        score = np.where(feasible, rng.random(feasible.shape), -1.0)
        pick_e = np.argmax(score, axis=2)
        e_log_budget = np.take_along_axis(e_up, pick_e[:, :, None], axis=2)[:, :, 0]
        e_budget = np.where(use, np.exp(e_log_budget), np.inf)
        feasible &= ~use[:, :, None] | (e_up <= e_log_budget[:, :, None])
    objective = acc_pool[None, None, :] - tradeoff[:, :, None] * mu[:, None, :] / np.log(2.0) - 1e-9 * mu[:, None, :]
    objective = np.where(feasible, objective, -np.inf)
    labels = np.argmax(objective, axis=2)
    labels = np.where(feasible.any(axis=2), labels, -1)
    budgets = np.exp(log_budget)
    task = Task(budgets.reshape(-1), q_case.reshape(-1), tradeoff.reshape(-1), e_budget.reshape(-1), e_q.reshape(-1))
    return task, labels.reshape(-1), np.repeat(np.arange(b), c)


def fit_learned_optimizer(
    pred: ConditionedPredictor,
    accuracy: AccuracyPredictor,
    devices: TrainingDevices,
    *,
    config: OptimizerConfig | None = None,
    seed: int = 0,
    progress: bool = False,
    on_epoch: Callable[[int], None] | None = None,
) -> LearnedOptimizer:
    """Train the optimizer network on exact-solver labels (see the module docstring)."""
    from tqdm.auto import tqdm

    cfg = config or OptimizerConfig()
    space = pred.space
    rng = np.random.default_rng(seed)
    lat = pred.metrics["latency_ms"]
    pool = candidate_pool(space, lat.table.indices, cfg.pool_size, seed)
    design, s2, _ = lat.features(space, pool)
    acc_pool = accuracy.predict_indices(pool)
    en_parts = None
    if pred.has_energy:
        e_design, e_s2, _ = pred.metrics["energy_mj"].features(space, pool)
        en_parts = (e_design, e_s2)
    emb = _device_embeddings(pred, devices, cfg, rng)
    xs, ys = [], []
    chunk = max(1, int(4_000_000 // max(1, pool.shape[0] * cfg.cases_per_device)))
    bar = tqdm(total=len(emb), desc="optimizer: exact labels", disable=not progress, leave=False)
    for start in range(0, len(emb), chunk):
        part = emb[start:start + chunk]
        task, labels, rows = _labels(pred, acc_pool, design, s2, en_parts, part, cfg, rng)
        ok = labels >= 0
        sub = part[rows[ok]]
        sub_task = Task(*(a[ok] for a in (task.budget_ms, task.multiplier, task.tradeoff, task.energy_budget_mj,
                                           task.energy_multiplier)))
        xs.append(LearnedOptimizer.features(pred, sub, sub_task))
        ys.append(pool[labels[ok]])
        bar.update(len(part))
    bar.close()
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    if x.shape[0] == 0:
        raise InputError("optimizer: no feasible training case (check the training devices)")
    card = space.cardinalities
    in_mean, in_std = standardiser(x)
    with torch_threads(1):
        mlp, final_nll = _train_mixture(x, y, card, in_mean, in_std, cfg, seed, progress, on_epoch)
    info = {"training_cases": int(x.shape[0]), "pool": int(pool.shape[0]), "final_nll": round(final_nll, 4),
            "beam": cfg.beam}
    return LearnedOptimizer(space, mlp, cfg.components, pred.has_energy, info)


def _train_mixture(x: np.ndarray, y: np.ndarray, card: np.ndarray, in_mean: np.ndarray, in_std: np.ndarray,
                   cfg: OptimizerConfig, seed: int, progress: bool, on_epoch: Callable[[int], None] | None
                   ) -> tuple[NumpyMLP, float]:
    """Maximum likelihood of the labels under the mixture of per-decision categoricals."""
    import torch
    from tqdm.auto import tqdm

    m = cfg.components
    width = int(card.sum())
    offsets = np.concatenate([[0], np.cumsum(card)[:-1]])
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = torch_mlp([x.shape[1], *cfg.hidden, m * (1 + width)])
    xt = torch.from_numpy((x - in_mean) / in_std)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    n = x.shape[0]
    steps = cfg.epochs * max(1, -(-n // cfg.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=cfg.lr * 0.05)
    # Per-decision logits padded to the widest decision: (batch, M, n_decisions, c_max), -inf in the padding.
    c_max = int(card.max())
    pad = np.array([[o + j if j < c else 0 for j in range(c_max)] for o, c in zip(offsets, card)], dtype=np.int64)
    pad_t = torch.from_numpy(pad.reshape(-1))
    pad_mask = torch.from_numpy(np.array([[j >= c for j in range(c_max)] for c in card]))
    labels_t = torch.from_numpy(y).long()
    bar = tqdm(total=cfg.epochs, desc="optimizer: training", disable=not progress, leave=False)
    for epoch in range(cfg.epochs):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, cfg.batch_size):
            batch = perm[start:start + cfg.batch_size]
            out = net(xt[batch])
            mix = torch.log_softmax(out[:, :m], dim=1)
            logits = out[:, m:].reshape(-1, m, width)[:, :, pad_t].reshape(-1, m, len(card), c_max)
            logits = logits.masked_fill(pad_mask, float("-inf"))
            lp = torch.log_softmax(logits, dim=3)
            idx = labels_t[batch].view(-1, 1, len(card), 1).expand(-1, m, -1, 1)
            ll = mix + torch.gather(lp, 3, idx)[..., 0].sum(dim=2)
            loss = -torch.logsumexp(ll, dim=1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        bar.update(1)
        if on_epoch is not None:
            on_epoch(epoch)
    bar.close()
    mlp = export_mlp(net, in_mean, in_std, np.zeros(m * (1 + width)), np.ones(m * (1 + width)))
    return mlp, float(loss.item())
