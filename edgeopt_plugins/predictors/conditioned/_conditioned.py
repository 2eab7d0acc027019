"""The device-conditioned latency (and energy) predictor with calibrated upper bounds.

One model serves every device. A device is represented by the posterior of its
latent vector (log-scale + loadings on architecture factors learned across the
training devices) given its profile: ``k`` measured ``(architecture, latency)``
pairs on *any* architectures. The same code embeds a training device and one
never seen. Predictions are ``exp(mu)`` with ``mu = design(arch) . theta``;
upper bounds are ``exp(mu + q * sigma)`` where ``sigma`` combines the device's
noise level, the architecture's noise scale and the posterior uncertainty, and
``q`` comes from split-conformal calibration on held-out training devices.

What the latent factors cannot express about a device (a hardware family unlike every
training device) is learned from the device's own profile: a Gaussian-process correction of
the log-latency residuals (``_residual``), weighed per device by its evidence, so that
predictions converge with the device's data and bounds widen when the profile disagrees
with the prior. The calibration is measured with the correction in place, on devices held
out together with their near copies.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Sequence
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeopt_plugins.devices import DeviceProfile
from edgeopt_plugins.exceptions import InputError, ModelFormatError
from edgeopt_plugins.predictors._calibration import Calibrator, check_confidence
from edgeopt_plugins.predictors._kernels import ArchKernels, KernelFeatures
from edgeopt_plugins.predictors.conditioned._factor import (
    FactorBasis,
    MetricFactors,
    _normal_solve,
    device_folds,
    fit_basis,
    fit_metric_factors,
    near_copy_groups,
)
from edgeopt_plugins.predictors.conditioned._posterior import solve_posteriors
from edgeopt_plugins.predictors.conditioned._residual import DeviceResiduals, ResidualConfig, fit_residuals
from edgeopt_plugins.predictors.conditioned._training import TrainingDevices
from edgeopt_plugins.spaces import ArchLike, SearchSpace, get_space

__all__ = ["ConditionedPredictor", "DeviceEmbedding", "PredictorConfig", "fit_conditioned_predictor"]

METRIC_NAMES = ("latency_ms", "energy_mj")


@dataclass(frozen=True)
class PredictorConfig:
    """How a :class:`ConditionedPredictor` is fitted.

    Attributes:
        ranks: Candidate numbers of architecture factors; the one with the lowest
            held-out error on few-shot profiles of held-out devices is kept.
        n_folds: Device folds for rank selection and calibration (capped at the
            number of devices: leave-one-device-out for small sets).
        calib_ks: Profile sizes calibrated (others are interpolated).
        calib_draws: Random profiles per held-out device and size.
        calib_archs: Architectures scored per held-out profile (random subset).
        select_ks: Profile sizes whose error chooses the rank.
        tower_epochs: Epochs of the architecture network (0: table architectures only).
        tower_hidden: Its hidden layer sizes.
        energy_rank: Factors of the energy model (devices that measured energy).
        simulated_latency: Whether simulated devices also train the latency
            factors (default: no; they train energy only and latency comes from
            the measured devices, because simulated devices are mixtures of the
            measured ones and blurred the factors in leave-one-device-out tests).
        near_copy: Measured devices whose log-latencies correlate at least this much are
            held out together in rank selection and calibration (a new device is
            rarely a near copy of a training device).
        residual: The grid of each device's own correction (``None``: no correction).
    """

    ranks: tuple[int, ...] = (2, 3, 4, 5, 6, 8, 10)
    n_folds: int = 5
    calib_ks: tuple[int, ...] = (1, 3, 5, 10, 20, 50)
    calib_draws: int = 4
    calib_archs: int = 3000
    select_ks: tuple[int, ...] = (5, 10, 20)
    tower_epochs: int = 60
    tower_hidden: tuple[int, ...] = (128, 128)
    energy_rank: int = 6
    simulated_latency: bool = False
    calib_simulated: int = 6
    near_copy: float = 0.95
    residual: ResidualConfig | None = ResidualConfig()

    def __post_init__(self) -> None:
        if not self.ranks or min(self.ranks) < 1:
            raise InputError(f"ranks must be positive integers, got {self.ranks!r}")
        if self.n_folds < 2 or self.calib_draws < 1 or self.calib_archs < 10 or self.tower_epochs < 0:
            raise InputError("n_folds >= 2, calib_draws >= 1, calib_archs >= 10 and tower_epochs >= 0 are required")
        if not self.calib_ks or min(self.calib_ks) < 1 or list(self.calib_ks) != sorted(set(self.calib_ks)):
            raise InputError(f"calib_ks must be increasing positive sizes, got {self.calib_ks!r}")


@dataclass(frozen=True)
class DeviceEmbedding:
    """Representation of one or more devices: posteriors of their latents.

    Attributes:
        mean: ``(B, D)`` posterior means (the device vectors; the first entry is
            the device's log-latency scale).
        cov: ``(B, D, D)`` posterior covariances.
        noise: ``(B,)`` each device's noise multiplier (1 = typical).
        k: ``(B,)`` number of latency measurements behind each posterior.
        energy_observed: ``(B,)`` whether the profile measured energy.
        names: Device names (from the profiles' metadata).
        profiles: The profiles embedded (kept for online updates).
        residual: Each device's correction learned from its own latency profile.
    """

    mean: np.ndarray
    cov: np.ndarray
    noise: np.ndarray
    k: np.ndarray
    energy_observed: np.ndarray
    names: tuple[str, ...]
    profiles: tuple[DeviceProfile, ...] = field(default=(), repr=False)
    residual: DeviceResiduals | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.mean.shape[0])

    def __getitem__(self, item: int | slice | np.ndarray | list[int]) -> DeviceEmbedding:
        rows = np.arange(len(self))[item]
        rows = np.atleast_1d(rows)
        return DeviceEmbedding(self.mean[rows], self.cov[rows], self.noise[rows], self.k[rows],
                               self.energy_observed[rows], tuple(self.names[i] for i in rows),
                               tuple(self.profiles[i] for i in rows) if self.profiles else (),
                               None if self.residual is None else self.residual.take(rows))

    @property
    def vectors(self) -> np.ndarray:
        """``(B, D)`` device vectors (posterior means)."""
        return self.mean


class ConditionedPredictor:
    """Latency (and energy) of any architecture on any device described by a profile.

    Built by :func:`fit_conditioned_predictor`; usually used through
    :class:`edgeopt_plugins.optimizer.ConditionedModel`.

    Example:
        >>> from edgeopt_plugins.data import load_table
        >>> from edgeopt_plugins.devices import DeviceProfile
        >>> table = load_table("nb201")  # doctest: +SKIP
        >>> train = TrainingDevices.from_tables(table).drop(["pixel3"])  # doctest: +SKIP
        >>> pred = fit_conditioned_predictor(train, seed=0)  # doctest: +SKIP
        >>> profile = DeviceProfile.from_table(table, "pixel3", k=10, seed=0)  # doctest: +SKIP
        >>> mean, upper = pred.predict(table.archs[:5], profile, confidence=0.95)  # doctest: +SKIP
    """

    def __init__(self, space: SearchSpace, metrics: dict[str, MetricFactors], prior_mean: np.ndarray,
                 prior_cov: np.ndarray, calibrator: Calibrator, info: dict[str, Any] | None = None,
                 residual: ResidualConfig | None = ResidualConfig()) -> None:
        self.space = get_space(space)
        if "latency_ms" not in metrics:
            raise InputError("a conditioned predictor needs a latency_ms metric")
        self.metrics = {name: metrics[name] for name in METRIC_NAMES if name in metrics}
        self.prior_mean = np.asarray(prior_mean, dtype=np.float64)
        self.prior_cov = np.asarray(prior_cov, dtype=np.float64)
        self.calibrator = calibrator
        self.info = dict(info or {})
        self.residual_config = residual
        offsets, start = {}, 0
        for name, mf in self.metrics.items():
            offsets[name] = slice(start, start + mf.dim)
            start += mf.dim
        self.blocks = offsets
        if self.prior_mean.shape != (start,) or self.prior_cov.shape != (start, start):
            raise InputError("conditioned predictor: prior shape does not match the metrics' ranks")

    @property
    def has_energy(self) -> bool:
        return "energy_mj" in self.metrics

    @property
    def dim(self) -> int:
        return int(self.prior_mean.shape[0])

    # ----------------------------------------------------------------- per-device corrections
    @functools.cached_property
    def kernels(self) -> ArchKernels:
        """The space's kernel blocks, standardised on (a sample of) the training architectures."""
        table = self.metrics["latency_ms"].table.indices
        rows = np.random.default_rng(0).permutation(table.shape[0])[:2000]
        return ArchKernels(self.space, table[np.sort(rows)])

    @functools.cached_property
    def residual_unit(self) -> float:
        """Spread of log-latency between training devices per architecture (the corrections' unit)."""
        mf = self.metrics["latency_ms"]
        design = mf.table_design[:: max(1, mf.table_design.shape[0] // 2000), 1:]
        cov = self.prior_cov[self.blocks["latency_ms"], self.blocks["latency_ms"]][1:, 1:]
        return float(max(np.mean(np.einsum("ij,jk,ik->i", design, cov, design)), 1e-6))

    def kernel_features(self, idx: np.ndarray) -> KernelFeatures:
        """Kernel inputs of architectures (for :meth:`moments`)."""
        return self.kernels.features(np.asarray(idx, dtype=np.int64))

    def _residuals(self, emb: DeviceEmbedding, latency_obs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                            np.ndarray, np.ndarray]]
                   ) -> DeviceResiduals | None:
        """Fit each device's correction on its latency points ``(indices, design, log values, s2, t)``."""
        if self.residual_config is None:
            return None
        feats, resid, var = [], [], []
        for b, (idx, design, logy, s2, t) in enumerate(latency_obs):
            mu, sigma = self.moments(emb[b], design, s2, t)
            feats.append(self.kernel_features(idx))
            resid.append(logy - mu[0])
            var.append(sigma[0] ** 2)
        return fit_residuals(self.kernels, self.residual_unit, feats, resid, var, self.residual_config)

    # ----------------------------------------------------------------- embedding
    def check_profile(self, profile: Any) -> DeviceProfile:
        """``profile`` if it is a usable profile of this space, else :class:`InputError`."""
        if not isinstance(profile, DeviceProfile):
            raise InputError(f"expected a DeviceProfile, got {type(profile).__name__}")
        if profile.space.name != self.space.name:
            raise InputError(f"profile {profile.name!r} is for space {profile.space.name!r}, the model for {self.space.name!r}")
        if len(profile) == 0:
            raise InputError(f"profile {profile.name!r} has no measurements (at least one is needed)")
        return profile

    def embed(self, profiles: DeviceProfile | Sequence[DeviceProfile]) -> DeviceEmbedding:
        """Device representations of many profiles at once.

        Args:
            profiles: One profile or a sequence (measured architectures may be any
                architectures of the space, different for each profile).

        Returns:
            A :class:`DeviceEmbedding` with one row per profile.
        """
        plist = [profiles] if isinstance(profiles, DeviceProfile) else list(profiles)
        if not plist:
            raise InputError("embed: no profiles given")
        plist = [self.check_profile(p) for p in plist]
        obs: list[list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in plist]
        lat_idx: list[np.ndarray] = [np.zeros((0, len(self.space.decisions)), dtype=np.int64) for _ in plist]
        for metric, mf in self.metrics.items():
            mine = [(i, p) for i, p in enumerate(plist)
                    if metric == "latency_ms" or (metric == "energy_mj" and p.energy_mj is not None)]
            if not mine:
                continue
            idx = [p.indices() for _, p in mine]
            design, s2, t = mf.features(self.space, np.concatenate(idx))
            at = 0
            for (i, p), rows in zip(mine, idx):
                n = rows.shape[0]
                values = p.latency_ms if metric == "latency_ms" else p.energy_mj
                obs[i].append((metric, design[at:at + n], np.log(values), s2[at:at + n], t[at:at + n]))
                if metric == "latency_ms":
                    lat_idx[i] = rows
                at += n
        return self.embed_observations(obs, names=tuple(p.name for p in plist), profiles=tuple(plist),
                                       latency_indices=lat_idx)

    def embed_observations(self, obs: Sequence[Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]],
                           *, names: Sequence[str] | None = None, profiles: tuple[DeviceProfile, ...] = (),
                           latency_indices: Sequence[np.ndarray] | None = None) -> DeviceEmbedding:
        """Posteriors from per-device observations ``[(metric, design, log values, s2, t), ...]``.

        With ``latency_indices`` (the choice indices of each device's latency rows), each device
        also gets its correction learned from those points.
        """
        b, d = len(obs), self.dim
        counts = [sum(o[1].shape[0] for o in device) for device in obs]
        kmax = max(1, max(counts))
        h = np.zeros((b, kmax, d))
        y = np.zeros((b, kmax))
        s2 = np.ones((b, kmax))
        t = np.zeros((b, kmax))
        mask = np.zeros((b, kmax), dtype=bool)
        k = np.zeros(b, dtype=np.int64)
        energy = np.zeros(b, dtype=bool)
        for i, device in enumerate(obs):
            at = 0
            for metric, design, values, s2_i, t_i in device:
                n = design.shape[0]
                rows = slice(at, at + n)
                h[i, rows, self.blocks[metric]] = design
                y[i, rows] = values
                s2[i, rows] = s2_i
                t[i, rows] = t_i
                mask[i, rows] = True
                at += n
                if metric == "latency_ms":
                    k[i] += n
                else:
                    energy[i] = True
        lat = self.metrics["latency_ms"]
        post = solve_posteriors(h, y, s2, t, mask, self.prior_mean, self.prior_cov,
                                noise_alpha=lat.noise_alpha, noise_beta=lat.noise_beta)
        emb = DeviceEmbedding(post.mean, post.cov, post.noise, k, energy,
                              tuple(names) if names is not None else tuple(f"device-{i}" for i in range(b)), profiles)
        if latency_indices is None:
            return emb
        lat_obs = []
        for i, device in enumerate(obs):
            rows = [o for o in device if o[0] == "latency_ms"]
            if rows:
                _, design, values, s2_i, t_i = rows[0]
                lat_obs.append((latency_indices[i], design, values, s2_i, t_i))
            else:  # no latency point: an empty correction
                lat_obs.append((latency_indices[i][:0], np.zeros((0, self.dim)), np.zeros(0), np.zeros(0), np.zeros(0)))
        return dataclasses.replace(emb, residual=self._residuals(emb, lat_obs))

    def update(self, embedding: DeviceEmbedding, archs: Iterable[ArchLike], latency_ms: Iterable[float]) -> DeviceEmbedding:
        """Re-embed one device after new measurements (online update; costs one small solve)."""
        if len(embedding) != 1 or not embedding.profiles:
            raise InputError("update: expected the embedding of exactly one profile")
        return self.embed(embedding.profiles[0].extended(archs, latency_ms))

    def as_embedding(self, device: DeviceProfile | DeviceEmbedding | Sequence[DeviceProfile]) -> DeviceEmbedding:
        """A profile (or several) embedded; an embedding passes through after a shape check."""
        if isinstance(device, DeviceEmbedding):
            if device.mean.ndim != 2 or device.mean.shape[1] != self.dim:
                raise InputError(f"embedding has dimension {device.mean.shape[-1]}, this model uses {self.dim}")
            return device
        return self.embed(device)

    # ----------------------------------------------------------------- prediction
    def calibration_key(self, metric: str, energy_observed: bool) -> str:
        return metric if metric == "latency_ms" or energy_observed else f"{metric}|unobserved"

    def _check_metric(self, metric: str) -> MetricFactors:
        if metric not in self.metrics:
            if metric == "energy_mj":
                raise InputError("this model has no energy predictor (no training device measured energy)")
            raise InputError(f"unknown metric {metric!r} (expected one of {', '.join(self.metrics)})")
        return self.metrics[metric]

    def moments(self, emb: DeviceEmbedding, design: np.ndarray, s2: np.ndarray, t: np.ndarray,
                metric: str = "latency_ms", feats: KernelFeatures | Sequence[KernelFeatures] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Log-scale mean and standard deviation.

        ``design``/``s2``/``t`` are shared by all devices (``(n, d)``, ``(n,)``) or
        per device (``(B, n, d)``, ``(B, n)``); the result is ``(B, n)``. With ``feats``
        (:meth:`kernel_features` of the same architectures, shared or per device), each
        device's latency correction (``emb.residual``) is applied.
        """
        block = self.blocks[metric]
        theta = emb.mean[:, block]
        cov = emb.cov[:, block, block]
        if design.ndim == 2:
            mu = theta @ design.T
            quad = (np.matmul(design[None], cov) * design[None]).sum(-1)
            base = emb.noise[:, None] * s2[None, :] + t[None, :]
        else:
            mu = np.matmul(design, theta[:, :, None])[..., 0]
            quad = (np.matmul(design, cov) * design).sum(-1)
            base = emb.noise[:, None] * s2 + t
        sigma = np.sqrt(np.maximum(base + quad, 1e-12))
        if feats is not None and metric == "latency_ms" and emb.residual is not None:
            mu, sigma = emb.residual.adjust(feats, mu, sigma)
        return mu, sigma

    def multipliers(self, emb: DeviceEmbedding, confidence: float, metric: str = "latency_ms") -> np.ndarray:
        """Calibrated score quantile of each device, ``(B,)``."""
        out = np.empty(len(emb))
        for observed in (False, True):
            rows = emb.energy_observed == observed
            if rows.any():
                out[rows] = self.calibrator.multiplier(self.calibration_key(metric, observed), emb.k[rows], confidence)
        return out

    def predict(self, archs: Iterable[ArchLike] | np.ndarray, device: DeviceProfile | DeviceEmbedding, *,
                confidence: float = 0.95, metric: str = "latency_ms") -> tuple[np.ndarray, np.ndarray]:
        """Predicted value and calibrated upper bound of each architecture.

        Args:
            archs: Architectures (strings, params dicts or a choice-index matrix).
            device: A profile, or an embedding of one or more devices.
            confidence: Level of the upper bound (in [0.5, 0.999]).
            metric: ``"latency_ms"`` (default) or ``"energy_mj"``.

        Returns:
            ``(mean, upper)``: 1-D for one device, ``(B, n)`` for an embedding of ``B`` devices.
        """
        c = check_confidence(confidence)
        mf = self._check_metric(metric)
        single = isinstance(device, DeviceProfile) or (isinstance(device, DeviceEmbedding) and len(device) == 1)
        emb = self.as_embedding(device)
        idx = self.space.to_indices(archs)
        design, s2, t = mf.features(self.space, idx)
        mu, sigma = self.moments(emb, design, s2, t, metric, self.kernel_features(idx))
        q = self.multipliers(emb, c, metric)[:, None]
        mean, upper = np.exp(mu), np.exp(mu + q * sigma)
        return (mean[0], upper[0]) if single else (mean, upper)

    # ----------------------------------------------------------------- persistence
    def to_arrays(self, prefix: str = "predictor") -> dict[str, np.ndarray]:
        out = {f"{prefix}.prior_mean": self.prior_mean, f"{prefix}.prior_cov": self.prior_cov}
        for name, mf in self.metrics.items():
            out.update(mf.to_arrays(f"{prefix}.{name}"))
        out.update(self.calibrator.to_arrays(f"{prefix}.calibration"))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "space": self.space.name,
            "metrics": {name: mf.to_json() for name, mf in self.metrics.items()},
            "calibration": self.calibrator.to_json(),
            "info": self.info,
            "residual": None if self.residual_config is None else dataclasses.asdict(self.residual_config),
        }

    @classmethod
    def from_saved(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str = "predictor"
                   ) -> ConditionedPredictor:
        try:
            space = get_space(meta["space"])
            metrics = {name: MetricFactors.from_saved(m, arrays, f"{prefix}.{name}", space)
                       for name, m in meta["metrics"].items() if name in METRIC_NAMES}
            calibrator = Calibrator.from_saved(meta["calibration"], arrays, f"{prefix}.calibration")
            prior_mean = arrays[f"{prefix}.prior_mean"]
            prior_cov = arrays[f"{prefix}.prior_cov"]
            res = meta.get("residual")
            residual = None if res is None else ResidualConfig(**{k: tuple(float(x) for x in v) for k, v in res.items()})
            return cls(space, metrics, prior_mean, prior_cov, calibrator, meta.get("info"), residual)
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFormatError(f"predictor: missing or malformed entry ({err})") from None
        except InputError as err:
            if isinstance(err, ModelFormatError):
                raise
            raise ModelFormatError(f"predictor: {err}") from None


# ===================================================================== fitting
def _prior(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and shrunk covariance of training devices' latents."""
    m, d = latents.shape
    mean = latents.mean(axis=0)
    cov = np.cov(latents, rowvar=False) if m > 1 else np.eye(d)
    cov = np.atleast_2d(cov)
    lam = d / (m + d)  # shrink towards the diagonal when there are few devices
    diag = np.diag(np.maximum(np.diag(cov), 1e-8))
    return mean, (1 - lam) * cov + lam * diag + 1e-8 * np.eye(d)


def _joint_prior(lat_latents: np.ndarray, en_latents: np.ndarray | None, en_lat_latents: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Prior over ``[latency latent, energy latent]``.

    The latency block comes from the latency training devices; the energy block
    from a regression of the energy devices' energy latents on their latency
    latents (``en_lat_latents``), so a latency-only profile also informs energy.
    """
    mean_l, cov_l = _prior(lat_latents)
    if en_latents is None or en_lat_latents is None:
        return mean_l, cov_l
    x, z = en_lat_latents, en_latents
    xc = np.column_stack([np.ones(len(x)), x])
    ridge = 1e-3 * np.eye(xc.shape[1])
    ridge[0, 0] = 0.0
    coef = np.linalg.solve(xc.T @ xc + ridge, xc.T @ z)
    resid = z - xc @ coef
    _, res_cov = _prior(resid)
    a = coef[1:].T
    mean_e = coef[0] + a @ mean_l
    cov_le = cov_l @ a.T
    cov_e = a @ cov_l @ a.T + res_cov
    mean = np.concatenate([mean_l, mean_e])
    cov = np.block([[cov_l, cov_le], [cov_le.T, cov_e]])
    return mean, cov


@dataclass
class _FoldWork:
    """One device fold's held-out devices and the bases fitted without them."""

    held: np.ndarray
    rest: np.ndarray
    basis: FactorBasis
    inner_folds: list[np.ndarray]
    inner_bases: list[FactorBasis]


def _draw_profiles(values: np.ndarray, held: np.ndarray, ks: Sequence[int], draws: int, n_score: int,
                   rng: np.random.Generator) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """``(device column, k, profile rows, scored rows)`` for every held-out device, size and draw."""
    out = []
    for d in held:
        measured = np.flatnonzero(~np.isnan(values[:, d]))
        if measured.size < 2:
            continue
        for k in ks:
            kk = min(k, measured.size - 1)
            for _ in range(draws):
                rows = rng.choice(measured, size=kk, replace=False)
                scored = rng.choice(measured, size=min(n_score, measured.size), replace=False)
                out.append((int(d), int(k), rows, scored))
    return out


def _evaluate(pred: ConditionedPredictor, indices: np.ndarray, lat: np.ndarray, energy: np.ndarray | None,
              jobs: list[tuple[int, int, np.ndarray, np.ndarray]], allowed: dict[str, np.ndarray], *,
              residual: bool = False) -> dict[str, list[tuple[int, np.ndarray, np.ndarray]]]:
    """Standardised scores and log errors of held-out profiles: ``{key: [(k, scores, errors)]}``.

    Only architectures of the fold model's tables are used (no network needed). With
    ``residual``, each profile's own correction is fitted and applied (as in use).
    """
    out: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {}
    if not jobs:
        return out
    pos = {metric: mf.table.positions(indices) for metric, mf in pred.metrics.items()}

    def table_rows(metric: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        mf = pred.metrics[metric]
        p = pos[metric][rows]
        keep = p >= 0
        p = p[keep]
        return keep, mf.table_design[p], mf.noise_s2 * np.exp(mf.table_logw[p]), np.zeros(p.size)

    variants = [False] if energy is None or "energy_mj" not in pred.metrics else [False, True]
    for with_energy in variants:
        obs, kept_jobs, lat_idx = [], [], []
        for d, k, rows, scored in jobs:
            keep, design, s2, t = table_rows("latency_ms", rows)
            lat_idx.append(indices[rows[keep]])
            device = [("latency_ms", design, np.log(lat[rows[keep], d]), s2, t)]
            if with_energy:
                e = energy[rows, d]
                keep_e, design_e, s2_e, t_e = table_rows("energy_mj", rows)
                good = keep_e & ~np.isnan(e)
                if not good.any():
                    continue
                device.append(("energy_mj", design_e[good[keep_e]], np.log(e[good]), s2_e[good[keep_e]],
                               t_e[good[keep_e]]))
            if design.shape[0] == 0:
                lat_idx.pop()
                continue
            obs.append(device)
            kept_jobs.append((d, k, scored))
        if not obs:
            continue
        emb = pred.embed_observations(obs, latency_indices=lat_idx if residual else None)
        for metric, mf in pred.metrics.items():
            values = lat if metric == "latency_ms" else energy
            assert values is not None
            key = pred.calibration_key(metric, with_energy)
            n_max = max(sc.size for _, _, sc in kept_jobs)
            b = len(kept_jobs)
            design = np.zeros((b, n_max, mf.dim))
            s2 = np.ones((b, n_max))
            truth = np.full((b, n_max), np.nan)
            scored_idx = np.zeros((b, n_max, indices.shape[1]), dtype=np.int64)
            for i, (d, _, scored) in enumerate(kept_jobs):
                p = pos[metric][scored]
                ok = p >= 0
                n = int(ok.sum())
                design[i, :n] = mf.table_design[p[ok]]
                s2[i, :n] = mf.noise_s2 * np.exp(mf.table_logw[p[ok]])
                truth[i, :n] = np.log(values[scored[ok], d])
                scored_idx[i, :n] = indices[scored[ok]]
            feats = [pred.kernel_features(x) for x in scored_idx] if residual else None
            mu, sigma = pred.moments(emb, design, s2, np.zeros_like(s2), metric, feats)
            err = truth - mu
            for i, (d, k, _) in enumerate(kept_jobs):
                if d not in allowed.get(metric, ()):
                    continue
                good = ~np.isnan(err[i])
                if good.any():
                    out.setdefault(key, []).append((k, err[i, good] / sigma[i, good], err[i, good]))
    return out


def _project(mf: MetricFactors, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least-squares latents of device columns ``values`` (log taken here) in the factors of ``mf``."""
    pos = mf.table.positions(indices)
    out = np.empty((values.shape[1], mf.dim))
    for j in range(values.shape[1]):
        obs = (pos >= 0) & ~np.isnan(values[:, j])
        if obs.sum() <= mf.dim:
            raise InputError("an energy device measured too few latencies of the latency model's architectures")
        out[j] = _normal_solve(mf.table_design[pos[obs]], np.log(values[obs, j]))
    return out


def _column_sets(devices: TrainingDevices, cfg: PredictorConfig) -> tuple[np.ndarray, np.ndarray]:
    """Device columns that train the latency factors and the energy factors."""
    m = devices.n_devices
    measured = np.array([i for i, kind in enumerate(devices.kinds) if kind != "simulated"], dtype=np.int64)
    lat_cols = np.arange(m) if cfg.simulated_latency or measured.size < 3 else measured
    en_cols = (np.flatnonzero(~np.isnan(devices.energy_mj).all(axis=0)) if devices.energy_mj is not None
               else np.zeros(0, dtype=np.int64))
    return lat_cols, en_cols


def _fit_energy(space: SearchSpace, devices: TrainingDevices, cols: np.ndarray, rank: int, *, n_folds: int,
                seed: int, tower_epochs: int = 0, tower_hidden: tuple[int, ...] = (128, 128),
                on_epoch: Callable[[int], None] | None = None) -> MetricFactors | None:
    if devices.energy_mj is None or cols.size < 3:
        return None
    values = devices.energy_mj[:, cols]
    rows = ~np.isnan(values).all(axis=1)
    return fit_metric_factors(space, devices.indices[rows], values[rows], metric="energy_mj",
                              rank=min(rank, cols.size - 2), n_folds=n_folds, seed=seed, tower_epochs=tower_epochs,
                              tower_hidden=tower_hidden, on_epoch=on_epoch)


def _assemble(space: SearchSpace, devices: TrainingDevices, rank: int, work: _FoldWork | None, *,
              lat_cols: np.ndarray, energy: MetricFactors | None, en_cols: np.ndarray, n_folds: int, seed: int,
              calibrator: Calibrator | None, tower_epochs: int = 0, tower_hidden: tuple[int, ...] = (128, 128),
              on_epoch: Callable[[int], None] | None = None, residual: ResidualConfig | None = None
              ) -> ConditionedPredictor:
    """A predictor whose latency factors are fitted on ``lat_cols`` (bases precomputed in ``work``)."""
    values = devices.latency_ms[:, lat_cols]
    rows = ~np.isnan(values).all(axis=1)
    reuse = work is not None and rows.all()
    lat = fit_metric_factors(
        space, devices.indices[rows], values[rows], metric="latency_ms", rank=rank, n_folds=n_folds, seed=seed,
        basis=work.basis if reuse else None, fold_bases=work.inner_bases if reuse else None,
        folds=work.inner_folds if reuse else None, tower_epochs=tower_epochs, tower_hidden=tower_hidden,
        on_epoch=on_epoch,
    )
    metrics = {"latency_ms": lat}
    en_lat = None
    if energy is not None:
        metrics["energy_mj"] = energy
        en_lat = _project(lat, devices.indices, devices.latency_ms[:, en_cols])
    mean, cov = _joint_prior(lat.device_latents, None if energy is None else energy.device_latents, en_lat)
    return ConditionedPredictor(space, metrics, mean, cov, calibrator or Calibrator(np.array([1.0]), {}, {}, 0),
                                residual=residual)


def fit_conditioned_predictor(
    devices: TrainingDevices,
    *,
    config: PredictorConfig | None = None,
    seed: int = 0,
    progress: bool = False,
) -> ConditionedPredictor:
    """Fit the device-conditioned predictor, choose its rank and calibrate its bounds.

    Device folds (``config.n_folds``) hold training devices out: for each fold,
    models of every candidate rank are fitted on the other devices, random
    profiles of the held-out devices are embedded, and their errors on the
    held-out devices' architectures choose the rank (lowest mean squared log
    error over ``config.select_ks``) and give the conformal scores. The final
    model is then fitted on all devices.

    Args:
        devices: Training devices (tables, simulated fleets, ...).
        config: Fitting options (default :class:`PredictorConfig`).
        seed: Seed of every random choice.
        progress: Show tqdm progress bars.

    Returns:
        The fitted :class:`ConditionedPredictor`.
    """
    from tqdm.auto import tqdm

    cfg = config or PredictorConfig()
    start = time.perf_counter()
    space = devices.space
    m = devices.n_devices
    if m < 3:
        raise InputError(f"fitting a conditioned predictor needs at least 3 training devices, got {m}")
    lat_cols, en_cols = _column_sets(devices, cfg)
    used = np.union1d(lat_cols, en_cols)
    max_rank = int(min(max(cfg.ranks), lat_cols.size - 2))
    ranks = sorted({min(r, max_rank) for r in cfg.ranks})
    rng = np.random.default_rng(seed)
    lat = devices.latency_ms
    energy = devices.energy_mj
    groups = np.arange(m) + m  # simulated devices: each on its own
    measured = np.array([i for i, kind in enumerate(devices.kinds) if kind != "simulated"], dtype=np.int64)
    groups[measured] = near_copy_groups(np.log(lat[:, measured]), cfg.near_copy)
    folds = [f for f in device_folds(m, cfg.n_folds, seed, groups) if np.intersect1d(f, used).size]
    if any(np.setdiff1d(lat_cols, f).size < 3 for f in folds):  # groups too large to hold out whole
        groups = np.arange(m)
        folds = [f for f in device_folds(m, cfg.n_folds, seed) if np.intersect1d(f, used).size]
    bar = tqdm(total=len(folds) * len(ranks) + 1, desc="predictor: rank selection + calibration",
               disable=not progress, leave=False)
    # (rank) -> {key: [(k, scores, errors)]}
    results: dict[int, dict[str, list[tuple[int, np.ndarray, np.ndarray]]]] = {r: {} for r in ranks}
    fold_models: dict[int, list[tuple[ConditionedPredictor, Any, dict[str, np.ndarray]]]] = {r: [] for r in ranks}
    for fold_no, held in enumerate(folds):
        lat_rest = np.setdiff1d(lat_cols, held)
        en_rest = np.setdiff1d(en_cols, held)
        logy = np.log(lat[:, lat_rest])
        inner = device_folds(len(lat_rest), cfg.n_folds, seed + 101 + fold_no)
        inner_bases = [fit_basis(logy[:, np.setdiff1d(np.arange(len(lat_rest)), f)], max_rank) for f in inner]
        work = _FoldWork(held, lat_rest, fit_basis(logy, max_rank), inner, inner_bases)
        fold_energy = _fit_energy(space, devices, en_rest, cfg.energy_rank, n_folds=cfg.n_folds, seed=seed)
        allowed = {"latency_ms": np.intersect1d(held, lat_cols), "energy_mj": np.intersect1d(held, en_cols)}
        scored = np.intersect1d(held, used)
        simulated = np.array([d for d in scored if devices.kinds[d] == "simulated"], dtype=np.int64)
        if simulated.size > cfg.calib_simulated:  # many simulated devices: a random few per fold suffice
            drop = rng.choice(simulated, size=simulated.size - cfg.calib_simulated, replace=False)
            scored = np.setdiff1d(scored, drop)
        jobs = _draw_profiles(lat, scored, cfg.calib_ks, cfg.calib_draws, cfg.calib_archs, rng)
        for r in ranks:
            fold_pred = _assemble(space, devices, r, work, lat_cols=lat_rest, energy=fold_energy, en_cols=en_rest,
                                  n_folds=cfg.n_folds, seed=seed, calibrator=None, residual=cfg.residual)
            for key, rows in _evaluate(fold_pred, devices.indices, lat, energy, jobs, allowed).items():
                results[r].setdefault(key, []).extend(rows)
            fold_models[r].append((fold_pred, jobs, allowed))
            bar.update(1)
    # Rank: lowest mean squared log error of latency at the selection sizes.
    sel = [k for k in cfg.select_ks if k in cfg.calib_ks] or list(cfg.calib_ks)
    mse = {r: float(np.mean([np.mean(e**2) for k, _, e in results[r].get("latency_ms", []) if k in sel]))
           for r in ranks}
    best = min(ranks, key=lambda r: (mse[r], r))
    if cfg.residual is not None:  # calibrate the bounds as they are used: with each profile's own correction
        results[best] = {}
        for fold_pred, jobs, allowed in fold_models[best]:
            for key, rows in _evaluate(fold_pred, devices.indices, lat, energy, jobs, allowed, residual=True).items():
                results[best].setdefault(key, []).extend(rows)
    scores = {key: {k: np.concatenate([s for kk, s, _ in rows if kk == k]) for k in cfg.calib_ks}
              for key, rows in results[best].items()}
    calibrator = Calibrator.from_scores(scores, n_devices=int(used.size))
    # Final fit on every device.
    n_metrics = 1 + int(en_cols.size >= 3)
    tower_bar = tqdm(total=cfg.tower_epochs * n_metrics, desc="predictor: architecture network",
                     disable=not progress or cfg.tower_epochs == 0, leave=False)
    tick = lambda _: tower_bar.update(1)  # noqa: E731
    final_energy = _fit_energy(space, devices, en_cols, cfg.energy_rank, n_folds=cfg.n_folds, seed=seed,
                               tower_epochs=cfg.tower_epochs, tower_hidden=cfg.tower_hidden, on_epoch=tick)
    final = _assemble(space, devices, best, None, lat_cols=lat_cols, energy=final_energy, en_cols=en_cols,
                      n_folds=cfg.n_folds, seed=seed, calibrator=calibrator, tower_epochs=cfg.tower_epochs,
                      tower_hidden=cfg.tower_hidden, on_epoch=tick, residual=cfg.residual)
    tower_bar.close()
    bar.update(1)
    bar.close()
    final.info = {
        "training_devices": list(devices.devices),
        "latency_devices": [devices.devices[i] for i in lat_cols],
        "energy_devices": len(en_cols),
        "device_kinds": {k: devices.kinds.count(k) for k in dict.fromkeys(devices.kinds)},
        "training_archs": devices.n_archs,
        "rank": best,
        "rank_selection_mse": {str(r): v for r, v in mse.items()},
        "folds": len(folds),
        "held_out_together": int(m - np.unique(groups).size),
        "seed": seed,
        "fit_seconds": round(time.perf_counter() - start, 3),
    }
    return final
