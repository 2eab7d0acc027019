"""``SimulatedFleet``: any number of plausible devices, grounded in the real devices of a latency table.

The model (documented with its realism figures in ``docs/devices.md``):

*Fit.* For every real device ``d`` of the table, log latency is fitted by ridge
regression on architecture features ``x(a)`` (per-decision one-hot costs, screened
pairwise interactions, log analytic costs; see :mod:`._fleet_features`)::

    log latency_d(a) = level_d + scale_d * (u_d . x(a) - mean) + scale_d * rho_d * residual_d(a)

where ``u_d`` is the device's *shape* (normalised to unit standard deviation over
uniformly drawn architectures of the space), ``level_d`` its mean log latency,
``scale_d`` the standard deviation of its log latencies and ``rho_d`` the size of
what the features do not explain, relative to ``scale_d``.

*Draw.* A new device mixes the real ones with Dirichlet weights ``w``
(concentration ``mixing``: small values give devices close to one or two real
devices), picks an *anchor* real device ``j`` with probabilities ``w``, and perturbs::

    u         = mean_u + spread * (w @ U - mean_u + perturbation * eps * sd_u)
    level     = level_j + level_jitter * sd(levels) * N(0, 1)
    log scale = log scale_j + scale_jitter * N(0, 1)
    residual  = spread * rho_j * z . h(a),   z = unit(w @ Z + perturbation * N(0, I / K))

with ``eps`` standard normal per feature and ``sd_u`` the real devices' spread of each
shape coefficient. ``h(a)`` are ``K`` hashed standard-normal features of the
architecture, so the residual is fixed per (device, architecture) for any
architecture of the space; the rows of ``Z`` are unit vectors whose dot products are
the correlations of the real devices' fit residuals, so devices mixed from similar
real devices also share residual structure (as same-batch GPUs do). The shape and
the residual are scaled together so that a device's log latencies keep its anchor's
standard deviation: ``spread`` changes rankings, not latency ranges.

``spread = 0`` gives identical rankings; larger values make rankings more
different. :meth:`SimulatedFleet.fit` calibrates ``spread`` on a probe fleet so that
the median pairwise Spearman correlation of simulated devices equals the
``monotonicity`` asked for (by default, that of the real devices).

*Energy (simulated: no table has energy).* ``energy_mj = power_w * latency_ms +
mem_mj_per_mb * weight_mbytes(a)``: a static-plus-dynamic power drawn log-uniformly
per device (default 0.3-300 W, from microcontroller-class accelerators to server
GPUs) times latency, plus a data-movement term for reading the weights once per
inference (default 0.04-0.2 mJ per MB, LPDDR to DDR DRAM access energy).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from edgeopt_plugins._io import atomic_write, display_path, write_json
from edgeopt_plugins.data import MetricTable, load_table
from edgeopt_plugins.devices._base import Archs, BaseDevice
from edgeopt_plugins.devices._fleet_features import ArchFeatures, ridge_fit, screen_pairs
from edgeopt_plugins.exceptions import InputError, ModelFormatError
from edgeopt_plugins.spaces import SearchSpace, get_space

__all__ = ["FleetConfig", "SimulatedFleet", "SimulatedDevices", "SimulatedDevice", "FleetChunk", "FLEET_FORMAT"]

FLEET_FORMAT = 1
_KIND = "edgeopt.SimulatedFleet"
_JSON, _TENSORS = "fleet.json", "fleet.safetensors"
#: Architectures and seed of the probe fleet used to calibrate ``spread``.
_PROBE_ARCHS, _PROBE_SEED = 1024, 0x5EED
_SPREAD_RANGE = (1e-4, 1e3)
#: Devices drawn per random generator (see ``SimulatedFleet._draws``).
_BLOCK = 256


@dataclass(frozen=True)
class FleetConfig:
    """How a fleet is fitted and how devices are drawn (all saved with the fleet).

    Attributes:
        mixing: Dirichlet concentration of the mixture over real devices (small:
            devices near one or two real ones; large: averages of many).
        perturbation: Size of new, independent per-feature deviations, relative to
            how much the real devices differ on that feature.
        level_jitter: Noise on the log latency level, relative to the real spread of levels.
        scale_jitter: Noise (log units) on the spread of a device's log latencies.
        power_range_w: Range of the simulated power draw (log-uniform), watts.
        mem_mj_per_mb_range: Range of the simulated data-movement energy (log-uniform), mJ per MB.
        ridge: Ridge penalty per row of the per-device fits.
        residual_dim: Number of hashed residual features.
        interaction_threshold: Minimum F-like ratio of a screened interaction pair.
        max_pairs: Most interaction pairs.
        reference_archs: Uniformly drawn architectures used to normalise shapes and calibrate.
        calibration_devices: Size of the probe fleet that calibrates ``spread`` to a monotonicity.
    """

    mixing: float = 0.1
    perturbation: float = 0.25
    level_jitter: float = 0.3
    scale_jitter: float = 0.15
    power_range_w: tuple[float, float] = (0.3, 300.0)
    mem_mj_per_mb_range: tuple[float, float] = (0.04, 0.2)
    ridge: float = 1e-3
    residual_dim: int = 32
    interaction_threshold: float = 4.0
    max_pairs: int = 40
    reference_archs: int = 2048
    calibration_devices: int = 384

    def __post_init__(self) -> None:
        for name in ("mixing", "ridge"):
            if not getattr(self, name) > 0:
                raise InputError(f"FleetConfig: {name} must be positive, got {getattr(self, name)!r}")
        for name in ("perturbation", "level_jitter", "scale_jitter"):
            if not getattr(self, name) >= 0:
                raise InputError(f"FleetConfig: {name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("power_range_w", "mem_mj_per_mb_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise InputError(f"FleetConfig: {name} must be (low, high) with 0 < low <= high, got {(lo, hi)!r}")
        for name in ("residual_dim", "max_pairs", "reference_archs", "calibration_devices"):
            if int(getattr(self, name)) < (0 if name in ("residual_dim", "max_pairs") else 8):
                raise InputError(f"FleetConfig: {name} is too small: {getattr(self, name)!r}")


class FleetChunk(NamedTuple):
    """One chunk of :meth:`SimulatedDevices.iter_chunks`: some devices, every architecture."""

    device_ids: np.ndarray
    latency_ms: np.ndarray
    energy_mj: np.ndarray | None


@dataclass
class _Draws:
    """The random ingredients of ``n`` devices (independent of ``spread``)."""

    mixture: np.ndarray  # (n, D)
    anchor: np.ndarray  # (n,) real device drawn with probabilities ``mixture``
    eps: np.ndarray  # (n, F)
    eps_z: np.ndarray  # (n, K)
    level_noise: np.ndarray  # (n,)
    scale_noise: np.ndarray  # (n,)
    power_w: np.ndarray  # (n,)
    mem_mj_per_mb: np.ndarray  # (n,)


def median_pairwise_spearman(values: np.ndarray) -> float:
    """Median Spearman correlation over all pairs of columns of ``values`` (no NaN; ties averaged)."""
    ranks = stats.rankdata(values, axis=0)
    corr = np.corrcoef(ranks, rowvar=False)
    return float(np.median(corr[np.triu_indices_from(corr, k=1)]))


@dataclass(eq=False, repr=False)
class SimulatedFleet:
    """A generator of simulated devices fitted to the real devices of a latency table.

    Build one with :meth:`fit` (or :meth:`load`), then draw devices with
    :meth:`sample_devices`. See the module docs for the model.

    Example:
        >>> from edgeopt_plugins.devices import SimulatedFleet
        >>> fleet = SimulatedFleet.fit("nb201", seed=0)  # doctest: +SKIP
        >>> devices = fleet.sample_devices(1000, seed=1)  # doctest: +SKIP
        >>> devices.latency(fleet.space.sample(5, seed=0)).shape  # doctest: +SKIP
        (5, 1000)
    """

    features: ArchFeatures
    real_devices: tuple[str, ...]
    shapes: np.ndarray  # (D, F) unit-std shape directions
    levels: np.ndarray  # (D,)
    scales: np.ndarray  # (D,)
    residuals: np.ndarray  # (D,) relative to scales
    residual_latent: np.ndarray  # (D, K) unit rows; their dot products = real residual correlations
    reference: np.ndarray  # (R, n_decisions) choice indices
    config: FleetConfig
    spread: float = 1.0
    monotonicity: float = float("nan")
    real_monotonicity: float = float("nan")
    source: str = ""
    fit_quality: dict[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"SimulatedFleet(space={self.space.name!r}, real_devices={len(self.real_devices)}, "
            f"monotonicity={self.monotonicity:.3f}, spread={self.spread:.3f}, fingerprint={self.fingerprint!r})"
        )

    # ----------------------------------------------------------------- fitting
    @classmethod
    def fit(
        cls,
        table: MetricTable | str,
        *,
        devices: Sequence[str] | None = None,
        monotonicity: float | str = "real",
        seed: int = 0,
        config: FleetConfig | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> SimulatedFleet:
        """Fit the fleet model to the real devices of a latency table.

        Args:
            table: A latency :class:`MetricTable`, or a space name whose benchmark
                table is loaded (``"nb201"``, ``"fbnet"``, ``"ofa"``, ``"mnasnet"``).
            devices: Real devices to fit on (default: every column; at least 2).
            monotonicity: ``"real"`` (default): simulated devices agree with each
                other as much as the real devices do (median pairwise Spearman);
                or a target median pairwise Spearman in (0, 1): e.g. 0.99 for
                near-identical rankings, 0.5 for rankings as different as an edge
                accelerator and a GPU.
            seed: Seed of the reference architectures and the residual hash.
            config: Model options (:class:`FleetConfig`).
            data_dir: Data folder when ``table`` is a space name.

        Raises:
            InputError: for a table that is not latency, too few devices, or an
                unreachable monotonicity.
        """
        tab = load_table(table, "latency_ms", data_dir=data_dir) if isinstance(table, str) else table
        if not isinstance(tab, MetricTable) or tab.metric != "latency_ms":
            raise InputError(f"SimulatedFleet.fit: expected a latency_ms MetricTable or a space name, got {table!r}")
        cfg = config or FleetConfig()
        names = list(devices) if devices is not None else list(tab.devices)
        if len(set(names)) < 2:
            raise InputError(f"SimulatedFleet.fit: need at least 2 distinct real devices, got {names!r}")
        cols = [tab.device_index(d) for d in names]
        space, idx = tab.space, np.asarray(tab.indices)
        logy = np.log(tab.values[:, cols])
        avail = tab.available[:, cols]
        complete = avail.all(axis=1)
        if complete.sum() < 20:
            raise InputError(
                f"{tab.source}: only {int(complete.sum())} architectures are measured on every chosen device"
            )

        main = ArchFeatures.for_archs(space, idx, (), residual_dim=cfg.residual_dim, salt=seed)
        x_main = main.shape(idx[complete])
        resid = logy[complete] - _predict(x_main, ridge_fit(x_main, logy[complete], alpha=cfg.ridge))
        pairs = screen_pairs(space, idx[complete], resid, threshold=cfg.interaction_threshold,
                             max_pairs=cfg.max_pairs, max_width=int(complete.sum()) // 10)
        feats = ArchFeatures.for_archs(space, idx, pairs, residual_dim=cfg.residual_dim, salt=seed)
        x = feats.shape(idx)
        coef, rho, r2 = _fit_devices(x, logy, avail, alpha=cfg.ridge)
        resid = logy[complete] - _predict(x[complete], coef)

        n_ref = min(cfg.reference_archs, space.size)
        reference = space.sample_indices(n_ref, seed=seed, unique=True)
        ref_values = _predict(feats.shape(reference), coef)  # (R, D)
        scales = ref_values.std(axis=0)
        scales = np.where(scales > 0, scales, 1e-6)
        fleet = cls(
            features=feats,
            real_devices=tuple(names),
            shapes=(coef[1:] / scales).T,
            levels=ref_values.mean(axis=0),
            scales=scales,
            residuals=rho / scales,
            residual_latent=_latent_rows(np.corrcoef(resid, rowvar=False), cfg.residual_dim),
            reference=reference,
            config=cfg,
            real_monotonicity=median_pairwise_spearman(logy[complete]),
            source=tab.source,
            fit_quality={"median_r2": float(np.median(r2)), "min_r2": float(np.min(r2)),
                         "interaction_pairs": len(pairs)},
        )
        return fleet.with_monotonicity(monotonicity)

    def with_monotonicity(self, monotonicity: float | str) -> SimulatedFleet:
        """The same fitted fleet, recalibrated to another monotonicity (no refit).

        Args:
            monotonicity: ``"real"`` or a target median pairwise Spearman in (0, 1).
        """
        target = self.real_monotonicity if monotonicity == "real" else monotonicity
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0.0 < target < 1.0:
            raise InputError(f"monotonicity must be 'real' or a number in (0, 1), got {monotonicity!r}")
        spread = self._calibrate(float(target))
        return replace(self, spread=spread, monotonicity=float(target))

    def _calibrate(self, target: float) -> float:
        """The ``spread`` whose probe fleet has median pairwise Spearman ``target`` (bisection)."""
        draws = self._draws(self.config.calibration_devices, _PROBE_SEED)
        x_probe = self.features.all(self.reference[:_PROBE_ARCHS])

        def agreement(spread: float) -> float:
            weights, offsets = self._compose(draws, spread)
            return median_pairwise_spearman(x_probe @ weights.T + offsets)

        lo, hi = np.log(_SPREAD_RANGE)
        least = agreement(float(np.exp(hi)))
        if target <= least:
            raise InputError(
                f"monotonicity {target:g} is out of reach for this fleet (lowest median pairwise Spearman "
                f"{least:.2f}); raise FleetConfig.perturbation for more diverse devices"
            )
        for _ in range(20):
            mid = 0.5 * (lo + hi)
            if agreement(float(np.exp(mid))) > target:
                lo = mid
            else:
                hi = mid
        return float(np.exp(0.5 * (lo + hi)))

    # ----------------------------------------------------------------- drawing devices
    @property
    def space(self) -> SearchSpace:
        """The search space of the fleet."""
        return self.features.space

    @functools.cached_property
    def fingerprint(self) -> str:
        """Short hash of everything that defines the fleet's devices (part of device names).

        Provenance (the table's path, fit statistics) is left out: the same fit from
        another copy of the data has the same fingerprint.
        """
        model = {k: v for k, v in self._config_json().items() if k not in ("source", "fit_quality")}
        digest = hashlib.sha256(json.dumps(model, sort_keys=True).encode())
        for arr in self._tensors().values():
            digest.update(np.ascontiguousarray(arr).tobytes())
        return digest.hexdigest()[:8]

    def _draws(self, n: int, seed: int) -> _Draws:
        """Ingredients of devices ``0..n-1``, drawn in blocks of :data:`_BLOCK` devices with one
        generator per block, so that device ``i`` is the same whatever ``n``."""
        blocks = [self._draw_block(seed, b) for b in range(-(-n // _BLOCK))]
        return _Draws(*(np.concatenate([getattr(b, f.name) for b in blocks])[:n] for f in fields(_Draws)))

    def _draw_block(self, seed: int, block: int) -> _Draws:
        cfg = self.config
        d, f, k = len(self.real_devices), self.shapes.shape[1], self.features.residual_dim
        rng = np.random.default_rng([seed, block])
        mixture = rng.dirichlet(np.full(d, cfg.mixing), size=_BLOCK)
        cumulative = np.cumsum(mixture, axis=1)
        anchor = (rng.random((_BLOCK, 1)) * cumulative[:, -1:] > cumulative).sum(axis=1)
        return _Draws(
            mixture=mixture,
            anchor=np.minimum(anchor, d - 1),
            eps=rng.standard_normal((_BLOCK, f)),
            eps_z=rng.standard_normal((_BLOCK, k)),
            level_noise=rng.standard_normal(_BLOCK),
            scale_noise=rng.standard_normal(_BLOCK),
            power_w=np.exp(rng.uniform(*np.log(cfg.power_range_w), size=_BLOCK)),
            mem_mj_per_mb=np.exp(rng.uniform(*np.log(cfg.mem_mj_per_mb_range), size=_BLOCK)),
        )

    @functools.cached_property
    def _reference_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of the shape features over the reference architectures."""
        x = self.features.shape(self.reference).astype(np.float64)
        return x.mean(axis=0), np.cov(x, rowvar=False, bias=True)

    def _compose(self, draws: _Draws, spread: float) -> tuple[np.ndarray, np.ndarray]:
        """Feature weights ``(n, F + K)`` and offsets ``(n,)`` of log latency (float32).

        The shape and the residual are scaled together so that a device's log latencies
        have the standard deviation of its anchor (times jitter) whatever ``spread``:
        ``spread`` changes rankings, not latency ranges.
        """
        cfg = self.config
        mean_u, sd_u = self.shapes.mean(axis=0), self.shapes.std(axis=0)
        u = mean_u + spread * (draws.mixture @ self.shapes - mean_u + cfg.perturbation * draws.eps * sd_u)
        mean_x, cov_x = self._reference_moments
        center = u @ mean_x
        sd = np.sqrt(np.maximum(np.einsum("nf,nf->n", u @ cov_x, u), 0.0))
        sd = np.where(sd > 0, sd, 1.0)
        level = self.levels[draws.anchor] + cfg.level_jitter * self.levels.std() * draws.level_noise
        scale = self.scales[draws.anchor] * np.exp(cfg.scale_jitter * draws.scale_noise)
        rho = spread * self.residuals[draws.anchor]
        scale = scale / np.sqrt(1.0 + rho**2)
        k = max(self.features.residual_dim, 1)
        z = draws.mixture @ self.residual_latent + cfg.perturbation * draws.eps_z / np.sqrt(k)
        z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        weights = np.concatenate([u * (scale / sd)[:, None], z * (rho * scale)[:, None]], axis=1)
        return weights.astype(np.float32), (level - scale * center / sd).astype(np.float32)

    def sample_devices(self, n: int, *, seed: int = 0) -> SimulatedDevices:
        """Draw ``n`` simulated devices.

        Device ``i`` depends only on the fleet, ``seed`` and ``i``: the first 100 devices
        of ``sample_devices(10_000, seed=s)`` are those of ``sample_devices(100, seed=s)``.

        Args:
            n: Number of devices (at least 1).
            seed: Seed of the draw (a non-negative integer).
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"sample_devices: n must be a positive integer, got {n!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InputError(f"sample_devices: seed must be a non-negative integer, got {seed!r}")
        draws = self._draws(int(n), int(seed))
        weights, offsets = self._compose(draws, self.spread)
        return SimulatedDevices(self, int(seed), weights, offsets, draws.power_w, draws.mem_mj_per_mb,
                                draws.mixture.astype(np.float32))

    # ----------------------------------------------------------------- files
    def _config_json(self) -> dict[str, Any]:
        return {
            "format": FLEET_FORMAT,
            "kind": _KIND,
            "space": self.space.name,
            "source": self.source,
            "real_devices": list(self.real_devices),
            "pairs": [list(p) for p in self.features.pairs],
            "salt": self.features.salt,
            "config": asdict(self.config),
            "spread": self.spread,
            "monotonicity": self.monotonicity,
            "real_monotonicity": self.real_monotonicity,
            "fit_quality": self.fit_quality,
        }

    def _tensors(self) -> dict[str, np.ndarray]:
        return {
            "shapes": self.shapes,
            "levels": self.levels,
            "scales": self.scales,
            "residuals": self.residuals,
            "residual_latent": self.residual_latent,
            "reference": self.reference,
            "cost_mean": self.features.cost_mean,
            "cost_std": self.features.cost_std,
        }

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Save to ``folder`` as ``fleet.json`` + ``fleet.safetensors`` (no pickle); returns the folder."""
        from safetensors.numpy import save

        out = Path(folder)
        tensors = {k: np.ascontiguousarray(v) for k, v in self._tensors().items()}
        with atomic_write(out / _TENSORS, "wb") as handle:
            handle.write(save(tensors))
        write_json(out / _JSON, self._config_json())
        return out

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> SimulatedFleet:
        """Load a fleet saved by :meth:`save`.

        Raises:
            ModelFormatError: for a missing, unreadable or inconsistent folder, or another format version.
        """
        from safetensors import SafetensorError
        from safetensors.numpy import load

        root = Path(folder)
        shown = display_path(root)
        try:
            meta = json.loads((root / _JSON).read_text(encoding="utf-8"))
            tensors = load((root / _TENSORS).read_bytes())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError, SafetensorError) as err:
            raise ModelFormatError(f"{shown}: not a saved SimulatedFleet ({type(err).__name__}: {err})") from None
        if not isinstance(meta, dict) or meta.get("kind") != _KIND:
            raise ModelFormatError(f"{shown}/{_JSON}: not a SimulatedFleet file")
        if meta.get("format") != FLEET_FORMAT:
            raise ModelFormatError(
                f"{shown}/{_JSON}: format {meta.get('format')!r} is not supported (expected {FLEET_FORMAT})"
            )
        try:
            space = get_space(meta["space"])
            config = FleetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items()})
            features = ArchFeatures(space, tuple(tuple(int(i) for i in p) for p in meta["pairs"]),
                                    tensors["cost_mean"], tensors["cost_std"], config.residual_dim, int(meta["salt"]))
            fleet = cls(features, tuple(meta["real_devices"]), tensors["shapes"], tensors["levels"], tensors["scales"],
                        tensors["residuals"], tensors["residual_latent"], tensors["reference"], config,
                        float(meta["spread"]),
                        float(meta["monotonicity"]), float(meta["real_monotonicity"]), str(meta["source"]),
                        dict(meta["fit_quality"]))
        except (KeyError, TypeError, ValueError) as err:
            why = f"{type(err).__name__}: {err}"
            raise ModelFormatError(f"{shown}: inconsistent SimulatedFleet files ({why})") from None
        d = len(fleet.real_devices)
        expected = {"shapes": (d, features.shape_width), "levels": (d,), "scales": (d,), "residuals": (d,),
                    "residual_latent": (d, config.residual_dim),
                    "reference": (len(fleet.reference), len(space.decisions))}
        for key, shape in expected.items():
            if tensors[key].shape != shape:
                raise ModelFormatError(f"{shown}/{_TENSORS}: {key} has shape {tensors[key].shape}, expected {shape}")
        return fleet


def _predict(x: np.ndarray, coef: np.ndarray) -> np.ndarray:
    return coef[0] + x @ coef[1:]


def _latent_rows(corr: np.ndarray, k: int) -> np.ndarray:
    """Unit vectors ``(D, k)`` whose dot products approximate the correlation matrix ``corr``."""
    vals, vecs = np.linalg.eigh(np.nan_to_num(corr))
    order = np.argsort(vals)[::-1][:k]
    rows = vecs[:, order] * np.sqrt(np.clip(vals[order], 0.0, None))
    rows = np.pad(rows, ((0, 0), (0, k - rows.shape[1])))
    norm = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.where(norm > 0, rows / np.maximum(norm, 1e-12), 0.0)


def _fit_devices(
    x: np.ndarray, logy: np.ndarray, avail: np.ndarray, *, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-device ridge fits on each device's measured rows: coefficients, residual std, R^2."""
    n_dev = logy.shape[1]
    coef = np.empty((x.shape[1] + 1, n_dev))
    rho, r2 = np.empty(n_dev), np.empty(n_dev)
    groups: dict[bytes, list[int]] = {}
    for d in range(n_dev):
        groups.setdefault(avail[:, d].tobytes(), []).append(d)
    for cols in groups.values():
        rows = avail[:, cols[0]]
        coef[:, cols] = ridge_fit(x[rows], logy[rows][:, cols], alpha=alpha)
        res = logy[rows][:, cols] - _predict(x[rows], coef[:, cols])
        dof = max(1.0, rows.sum() - min(x.shape[1], rows.sum() / 2))
        rho[cols] = np.sqrt((res**2).sum(axis=0) / dof)
        r2[cols] = 1.0 - res.var(axis=0) / logy[rows][:, cols].var(axis=0)
    return coef, rho, r2


class SimulatedDevices:
    """``n`` devices drawn from a :class:`SimulatedFleet`; latency and energy of any architecture.

    Values are float32 functions of (fleet, seed, device, architecture) only: the same
    call gives the same numbers, and another batching or chunking of architectures or
    devices gives them up to float32 rounding (a relative 1e-6).

    Attributes:
        fleet: The fleet they were drawn from.
        seed: The seed of the draw.
        names: Device names, ``sim-<fleet fingerprint>-s<seed>-<i>``.
        power_w: Simulated power draw per device (W).
        mem_mj_per_mb: Simulated data-movement energy per device (mJ per MB of weights).
        mixtures: ``(n, n_real)`` mixture weights over the fleet's real devices.

    Example:
        >>> devices = fleet.sample_devices(10_000, seed=0)  # doctest: +SKIP
        >>> archs = fleet.space.to_indices(fleet.space.sample(1000, seed=0))  # doctest: +SKIP
        >>> for chunk in devices.iter_chunks(archs, chunk_size=2048):  # doctest: +SKIP
        ...     best = chunk.latency_ms.argmin(axis=0)  # one entry per device of the chunk
    """

    def __init__(self, fleet: SimulatedFleet, seed: int, weights: np.ndarray, offsets: np.ndarray,
                 power_w: np.ndarray, mem_mj_per_mb: np.ndarray, mixtures: np.ndarray) -> None:
        self.fleet = fleet
        self.seed = seed
        self._weights = weights
        self._offsets = offsets
        self.power_w = power_w
        self.mem_mj_per_mb = mem_mj_per_mb
        self.mixtures = mixtures
        prefix = f"sim-{fleet.fingerprint}-s{seed}-"
        self.names = tuple(f"{prefix}{i}" for i in range(len(offsets)))

    def __len__(self) -> int:
        return len(self._offsets)

    def __repr__(self) -> str:
        return f"SimulatedDevices(n={len(self)}, space={self.space.name!r}, seed={self.seed})"

    @property
    def space(self) -> SearchSpace:
        """The search space."""
        return self.fleet.space

    def _ids(self, device_ids: Sequence[int] | np.ndarray | None) -> np.ndarray:
        if device_ids is None:
            return np.arange(len(self))
        ids = np.asarray(device_ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iu" or (ids.size and (ids.min() < 0 or ids.max() >= len(self))):
            raise InputError(f"device_ids must be integers in [0, {len(self)}), got {device_ids!r}")
        return ids.astype(np.int64)

    def _latency(self, x: np.ndarray, ids: np.ndarray) -> np.ndarray:
        out = x @ self._weights[ids].T
        out += self._offsets[ids]
        return np.exp(out, out=out)

    def _energy(self, latency: np.ndarray, mbytes: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return (latency * self.power_w[ids].astype(np.float32)
                + mbytes[:, None].astype(np.float32) * self.mem_mj_per_mb[ids].astype(np.float32))

    def latency(self, archs: Archs, device_ids: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Latency (ms) ``(n_archs, n_devices)`` of any architectures of the space, float32.

        Args:
            archs: Architectures (strings, params dicts) or a choice-index matrix.
            device_ids: Which devices (default all), as positions.
        """
        idx = self.space.to_indices(archs)
        return self._latency(self.fleet.features.all(idx), self._ids(device_ids))

    def energy(self, archs: Archs, device_ids: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Simulated energy (mJ) ``(n_archs, n_devices)``, float32 (see the module docs for the model)."""
        idx = self.space.to_indices(archs)
        ids = self._ids(device_ids)
        feats = self.fleet.features
        return self._energy(self._latency(feats.all(idx), ids), feats.weight_mbytes(idx), ids)

    def iter_chunks(
        self, archs: Archs, *, chunk_size: int = 1024, energy: bool = False,
        device_ids: Sequence[int] | np.ndarray | None = None,
    ) -> Iterator[FleetChunk]:
        """Latency (and energy) of every architecture, ``chunk_size`` devices at a time.

        Memory stays at about ``n_archs x (features + chunk_size)`` floats whatever the
        number of devices. Concatenating the chunks along axis 1 gives :meth:`latency`
        (up to float32 rounding).

        Args:
            archs: Architectures (strings, params dicts) or a choice-index matrix.
            chunk_size: Devices per chunk.
            energy: Also compute energy.
            device_ids: Which devices (default all).

        Yields:
            :class:`FleetChunk` with ``device_ids`` and ``(n_archs, len(device_ids))`` arrays.
        """
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
            raise InputError(f"iter_chunks: chunk_size must be a positive integer, got {chunk_size!r}")
        idx = self.space.to_indices(archs)
        ids = self._ids(device_ids)
        x = self.fleet.features.all(idx)
        mbytes = self.fleet.features.weight_mbytes(idx) if energy else None
        for start in range(0, len(ids), chunk_size):
            chunk = ids[start : start + chunk_size]
            lat = self._latency(x, chunk)
            yield FleetChunk(chunk, lat, None if mbytes is None else self._energy(lat, mbytes, chunk))

    def metadata(self, i: int) -> dict[str, Any]:
        """JSON-serialisable facts about device ``i`` (simulated: how it was drawn)."""
        i = int(self._ids([i])[0])
        top = np.argsort(-self.mixtures[i])[:3]
        return {
            "kind": "simulated",
            "space": self.space.name,
            "fleet": self.fleet.fingerprint,
            "fleet_source": self.fleet.source,
            "sample_seed": self.seed,
            "index": i,
            "monotonicity": self.fleet.monotonicity,
            "power_w": round(float(self.power_w[i]), 4),
            "mem_mj_per_mb": round(float(self.mem_mj_per_mb[i]), 5),
            "mixture": {self.fleet.real_devices[j]: round(float(self.mixtures[i, j]), 3) for j in top},
        }

    def device(self, i: int, *, noise: float = 0.0) -> SimulatedDevice:
        """Device ``i`` as a :class:`~edgeopt_plugins.devices.Device`.

        Args:
            i: Position of the device.
            noise: Relative measurement noise (log-normal sigma) added by every
                ``measure``; seeded, so a new device object repeats the same sequence.
        """
        return SimulatedDevice(self, i, noise=noise)


class SimulatedDevice(BaseDevice):
    """One simulated device: ``measure`` gives its latency and simulated energy.

    Example:
        >>> dev = fleet.sample_devices(3, seed=0).device(2)  # doctest: +SKIP
        >>> sorted(dev.measure(fleet.space.sample(4, seed=0)))  # doctest: +SKIP
        ['energy_mj', 'latency_ms']
    """

    def __init__(self, devices: SimulatedDevices, i: int, *, noise: float = 0.0) -> None:
        if not (isinstance(noise, (int, float)) and not isinstance(noise, bool) and noise >= 0):
            raise InputError(f"SimulatedDevice: noise must be a number >= 0, got {noise!r}")
        self.devices = devices
        self.index = int(devices._ids([i])[0])
        self.space = devices.space
        self.name = devices.names[self.index]
        self.noise = float(noise)
        self.metadata = {**devices.metadata(self.index), "noise": self.noise}
        self._rng = np.random.default_rng([devices.seed, self.index, 1])

    def _measure(self, indices: np.ndarray, *, progress: bool) -> dict[str, np.ndarray]:
        ids = np.array([self.index])
        feats = self.devices.fleet.features
        latency = self.devices._latency(feats.all(indices), ids).astype(np.float64)
        if self.noise:
            latency *= np.exp(self.noise * self._rng.standard_normal(latency.shape))
        energy = self.devices._energy(latency.astype(np.float32), feats.weight_mbytes(indices), ids)
        return {"latency_ms": latency[:, 0], "energy_mj": energy[:, 0].astype(np.float64)}
