"""Split-conformal calibration of upper bounds on devices held out of the fit.

A score is the standardised error ``(log y - mu) / sigma`` of a prediction for
a device whose profile had ``k`` measurements, computed on training devices
that were *held out* of the model that made the prediction (device folds).
The upper bound at confidence ``c`` is ``exp(mu + q_c(k) * sigma)`` where
``q_c(k)`` is the ``c``-quantile of the held-out scores of profiles of that
size (log-linear interpolation between calibrated sizes). Under
exchangeability of new devices with the training devices this gives marginal
coverage ``c`` over (device, architecture) pairs; the coverage actually
reached on unseen devices is measured by ``benchmarks/approach2.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgeopt_plugins.exceptions import InputError, ModelFormatError

__all__ = ["Calibrator", "CONFIDENCE_LEVELS", "check_confidence"]

#: Confidence levels stored in a calibration (any level in between is interpolated).
CONFIDENCE_LEVELS = np.round(np.concatenate([np.arange(0.50, 0.99, 0.01), np.arange(0.99, 0.9991, 0.001)]), 4)


def check_confidence(confidence: float) -> float:
    """``confidence`` as a float in [0.5, 0.999], else :class:`InputError`."""
    try:
        c = float(confidence)
    except (TypeError, ValueError):
        raise InputError(f"confidence must be a number in [0.5, 0.999], got {confidence!r}") from None
    if not 0.5 <= c <= 0.999:
        raise InputError(f"confidence must be in [0.5, 0.999], got {confidence!r}")
    return c


@dataclass
class Calibrator:
    """Quantiles of held-out standardised errors, per profile size and confidence.

    Attributes:
        ks: Calibrated profile sizes, increasing.
        quantiles: ``{key: (len(ks), len(CONFIDENCE_LEVELS))}`` score quantiles
            (key ``"latency_ms"``, and for energy ``"energy_mj"``).
        n_scores: ``{key: number of scores behind each row}``.
        n_devices: Number of distinct held-out devices the scores come from.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> cal = Calibrator.from_scores({"latency_ms": {5: rng.normal(size=4000), 20: rng.normal(size=4000)}}, n_devices=8)
        >>> round(float(cal.multiplier("latency_ms", np.array([10]), 0.95)[0]), 1)
        1.6
    """

    ks: np.ndarray
    quantiles: dict[str, np.ndarray]
    n_scores: dict[str, int]
    n_devices: int

    @classmethod
    def from_scores(cls, scores: dict[str, dict[int, np.ndarray]], *, n_devices: int) -> Calibrator:
        """Build from ``{key: {k: standardised scores}}`` (every key with the same ks)."""
        if not scores:
            raise InputError("calibration needs scores")
        ks = sorted(next(iter(scores.values())))
        quantiles, counts = {}, {}
        for key, by_k in scores.items():
            if sorted(by_k) != ks:
                raise InputError("calibration: every metric needs scores for the same profile sizes")
            rows = []
            for k in ks:
                s = np.asarray(by_k[k], dtype=np.float64)
                s = s[np.isfinite(s)]
                if s.size < 20:
                    raise InputError(f"calibration: only {s.size} scores for k={k}")
                # Finite-sample conformal level: ceil((n+1) c) / n.
                n = s.size
                levels = np.minimum(1.0, np.ceil((n + 1) * CONFIDENCE_LEVELS) / n)
                rows.append(np.quantile(s, levels, method="higher"))
                counts[key] = min(counts.get(key, n), n)
            q = np.maximum.accumulate(np.asarray(rows), axis=1)  # monotone in the level
            quantiles[key] = q
        return cls(np.asarray(ks, dtype=np.float64), quantiles, counts, int(n_devices))

    def multiplier(self, key: str, k: np.ndarray | Sequence[int], confidence: float) -> np.ndarray:
        """Score quantile ``q_c(k)`` for each profile size in ``k``."""
        c = check_confidence(confidence)
        if key not in self.quantiles:
            raise InputError(f"no calibration for {key!r} (have {', '.join(self.quantiles)})")
        table = self.quantiles[key]
        per_k = np.array([np.interp(c, CONFIDENCE_LEVELS, row) for row in table])
        logk = np.log(np.clip(np.asarray(k, dtype=np.float64), self.ks[0], self.ks[-1]))
        return np.interp(logk, np.log(self.ks), per_k)

    # ----------------------------------------------------------------- persistence
    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = {f"{prefix}.ks": self.ks, f"{prefix}.levels": CONFIDENCE_LEVELS.astype(np.float64)}
        for key, q in self.quantiles.items():
            out[f"{prefix}.q.{key}"] = q
        return out

    def to_json(self) -> dict:
        return {"keys": list(self.quantiles), "n_scores": self.n_scores, "n_devices": self.n_devices}

    @classmethod
    def from_saved(cls, meta: dict, arrays: dict[str, np.ndarray], prefix: str) -> Calibrator:
        try:
            ks = np.asarray(arrays[f"{prefix}.ks"], dtype=np.float64)
            levels = np.asarray(arrays[f"{prefix}.levels"], dtype=np.float64)
            quantiles = {key: np.asarray(arrays[f"{prefix}.q.{key}"], dtype=np.float64) for key in meta["keys"]}
            counts = {str(k): int(v) for k, v in meta["n_scores"].items()}
            n_devices = int(meta["n_devices"])
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFormatError(f"calibration: missing or malformed entry ({err})") from None
        if levels.shape != CONFIDENCE_LEVELS.shape or not np.allclose(levels, CONFIDENCE_LEVELS):
            raise ModelFormatError("calibration: confidence levels differ from this version's")
        if ks.ndim != 1 or ks.size == 0 or np.any(np.diff(ks) <= 0):
            raise ModelFormatError("calibration: profile sizes must be increasing")
        for key, q in quantiles.items():
            if q.shape != (ks.size, levels.size) or not np.isfinite(q).all():
                raise ModelFormatError(f"calibration: quantile table {key!r} has a bad shape or values")
        return cls(ks, quantiles, counts, n_devices)
