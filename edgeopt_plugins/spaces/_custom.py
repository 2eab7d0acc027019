"""``CustomSpace``: a search space a user defines (from Optuna distributions, an NNI model space or a spec).

Canonical form: a JSON object of every decision in order, e.g.
``{"width": 0.75, "kernel_1": 5, "depth_1": 3}``. Decisions are categorical
(:class:`~edgeopt_plugins.spaces.Decision`), integer ranges with a step
(:class:`IntDecision`) or float ranges with a step (:class:`FloatDecision`): every
decision is finite, so everything that works on a built-in space works here.

With a ``build`` (architecture params -> ``torch.nn.Module``) and an
``input_shape``, the space can be measured for real
(:class:`~edgeopt_plugins.devices.TorchDevice`), exported for a remote device
(:class:`~edgeopt_plugins.devices.CommandDevice`), and it has features: layer
statistics of the built model counted by PyTorch (:data:`LAYER_FEATURES`), cached
per architecture. Counting is per distinct leaf-module call (a 3x3 depthwise
convolution on a 96 x 16 x 16 input is counted once for the whole space), which makes a
design cost one model build and one plain forward pass; the first designs are also
counted as a whole, and if that finds FLOPs outside leaf modules every design is.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeopt_plugins.exceptions import ArchitectureError, EdgeOptWarning, InputError
from edgeopt_plugins.spaces._base import ArchLike, Decision, SearchSpace

__all__ = ["CustomSpace", "IntDecision", "FloatDecision", "BuildFn", "InputShape"]

#: ``build(params) -> torch.nn.Module``: the model of one architecture (random weights are fine).
BuildFn = Callable[[dict[str, Any]], Any]
#: Input shape without the batch dimension, or a function of the architecture params giving it.
InputShape = Sequence[int] | Callable[[dict[str, Any]], Sequence[int]]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Feature batches larger than this show a progress bar (when ``progress`` allows it).
_PROGRESS_FROM = 200
#: The first designs are counted both per leaf module and as a whole: if any has FLOPs outside
#: its leaf modules (a matmul in a block's forward), every design is counted as a whole.
_CHECK_WHOLE_MODEL = 3


@dataclass(frozen=True)
class IntDecision(Decision):
    """An integer decision ``low, low + step, ..., high`` (Optuna's ``IntDistribution``).

    Use :meth:`make`; ``log`` is kept so that Optuna samples it as the user declared.
    """

    low: int = 0
    high: int = 0
    step: int = 1
    log: bool = False

    @classmethod
    def make(cls, name: str, low: int, high: int, step: int = 1, log: bool = False) -> IntDecision:
        if log and step != 1:
            raise InputError(f"decision {name!r}: a log-scaled integer needs step 1, got {step}")
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (low, high, step)):
            raise InputError(f"decision {name!r}: low, high and step must be integers, got {low!r}, {high!r}, {step!r}")
        if step < 1 or high < low:
            raise InputError(f"decision {name!r}: needs low <= high and step >= 1, got {low}..{high} step {step}")
        choices = tuple(range(int(low), int(high) + 1, int(step)))
        return cls(name, choices, int(low), choices[-1], int(step), bool(log))

    def distribution(self) -> Any:
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high, log=self.log, step=self.step)

    def suggest(self, trial: Any, param_name: str) -> Any:
        return trial.suggest_int(param_name, self.low, self.high, step=self.step, log=self.log)

    def to_spec(self) -> Any:
        return {"type": "int", "low": self.low, "high": self.high, "step": self.step, "log": self.log}


@dataclass(frozen=True)
class FloatDecision(Decision):
    """A float decision ``low, low + step, ..., high`` (Optuna's ``FloatDistribution`` with a step).

    Values within a millionth of a step of a grid point are that grid point, so the
    ``0.30000000000000004`` an Optuna trial may hold is the choice ``0.3``.
    """

    low: float = 0.0
    high: float = 0.0
    step: float = 1.0

    @classmethod
    def make(cls, name: str, low: float, high: float, step: float | None) -> FloatDecision:
        if step is None:
            raise InputError(f"decision {name!r}: a float without a step is continuous; give step=... "
                             "(only finite decisions can be searched across devices)")
        values = (low, high, step)
        if not all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and math.isfinite(v)
                   for v in values):
            raise InputError(f"decision {name!r}: low, high and step must be finite numbers, got {values!r}")
        if step <= 0 or high < low:
            raise InputError(f"decision {name!r}: needs low <= high and step > 0, got {low}..{high} step {step}")
        n = int(math.floor((high - low) / step + 1e-8)) + 1
        if n > 100_000:
            raise InputError(f"decision {name!r}: {n} grid points; use a coarser step")
        choices = tuple(_clean(low + i * step) for i in range(n))
        return cls(name, choices, float(low), choices[-1], float(step))

    def index(self, value: Any) -> int:
        if isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_)):
            pos = round((float(value) - self.low) / self.step)
            if 0 <= pos < len(self.choices) and abs(float(value) - self.choices[pos]) <= 1e-6 * self.step:
                return int(pos)
        raise KeyError(value)

    def distribution(self) -> Any:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, step=self.step)

    def suggest(self, trial: Any, param_name: str) -> Any:
        return trial.suggest_float(param_name, self.low, self.high, step=self.step)

    def to_spec(self) -> Any:
        return {"type": "float", "low": self.low, "high": self.high, "step": self.step}


def _clean(value: float) -> float:
    """``0.30000000000000004`` -> ``0.3``: grid points as a person would write them."""
    return float(f"{value:.12g}")


def _json_scalar(value: Any) -> bool:
    if value is None or isinstance(value, (bool, str, int)):
        return True
    return isinstance(value, float) and math.isfinite(value)


def check_decisions(space_name: str, decisions: Sequence[Decision]) -> tuple[Decision, ...]:
    """The decisions of a user space, or one :class:`InputError` line saying what is wrong with them."""
    if not decisions:
        raise InputError(f"space {space_name!r} has no decisions (an empty space has nothing to search)")
    seen: set[str] = set()
    for d in decisions:
        if not isinstance(d.name, str) or not d.name.strip():
            raise InputError(f"space {space_name!r}: decision names must be non-empty strings, got {d.name!r}")
        if d.name in seen:
            raise InputError(f"space {space_name!r}: decision {d.name!r} appears twice")
        seen.add(d.name)
        if len(d.choices) < 2:
            raise InputError(f"space {space_name!r}: decision {d.name!r} has only one choice "
                             f"({', '.join(map(repr, d.choices)) or 'none'}); a fixed value is not a decision")
        bad = [c for c in d.choices if not _json_scalar(c)]
        if bad:
            raise InputError(f"space {space_name!r}: decision {d.name!r}: choice {bad[0]!r} is not a JSON scalar "
                             "(None, bool, int, finite float or str)")
        if len({(type(c).__name__, c) for c in d.choices}) != len(d.choices):
            raise InputError(f"space {space_name!r}: decision {d.name!r} lists a choice twice")
    return tuple(decisions)


class CustomSpace(SearchSpace):
    """A search space defined by the user; see :func:`~edgeopt_plugins.spaces.from_optuna`.

    Args:
        name: Short name (letters, digits, ``_.-``; not a built-in space's name).
        decisions: The decisions, in order.
        build: ``build(params) -> torch.nn.Module`` of one architecture (optional).
        input_shape: The model's input shape without the batch, e.g. ``(3, 32, 32)``,
            or a function of the params (a resolution decision); required with ``build``.
        ref: How to find this space again (``"module:attr"`` or a spec file); set
            by :func:`~edgeopt_plugins.spaces.resolve_space`, recorded in saved models.
        progress: Show a progress bar when many features are computed at once.

    Raises:
        InputError: for an empty space, a decision with one choice, a ``build``
            without ``input_shape``, or a ``build`` that raises or returns no module.

    Example:
        >>> from edgeopt_plugins.spaces import CustomSpace, Decision
        >>> space = CustomSpace("toy", [Decision("k", (3, 5)), Decision("act", ("relu", "gelu"))])
        >>> space.format({"k": 5, "act": "relu"})
        '{"k": 5, "act": "relu"}'
        >>> space.size, space.feature_names
        (4, ())
    """

    def __init__(
        self,
        name: str,
        decisions: Iterable[Decision],
        *,
        build: BuildFn | None = None,
        input_shape: InputShape | None = None,
        ref: str | None = None,
        progress: bool = True,
    ) -> None:
        from edgeopt_plugins.spaces._registry import BUILTIN_NAMES, register_space

        if not isinstance(name, str) or not _NAME.match(name):
            raise InputError(f"space name must be 1-64 letters, digits or '_.-' (starting with a letter or digit), "
                             f"got {name!r}")
        if name in BUILTIN_NAMES:
            raise InputError(f"space name {name!r} is taken by a built-in space; choose another name")
        self.name = name
        self.decisions = check_decisions(name, list(decisions))
        if build is not None and not callable(build):
            raise InputError(f"space {name!r}: build must be a function params -> torch.nn.Module, "
                             f"got {type(build).__name__}")
        if build is not None and input_shape is None:
            raise InputError(f"space {name!r}: a build needs input_shape (e.g. (3, 32, 32), without the batch)")
        if input_shape is not None and not callable(input_shape):
            input_shape = _check_shape(name, input_shape)
        self.build = build
        self.input_shape = input_shape
        self.ref = ref
        self.progress = progress
        self._feature_cache: dict[tuple[int, ...], np.ndarray] = {}
        self._leaf_flops: dict[tuple, int] = {}  # FLOPs of each distinct leaf-module call, counted once
        self._checked = 0
        self._whole_model = False  # set when a model has FLOPs outside its leaf modules
        self._cache_file: Path | None = None
        if build is not None:
            self.features(self.from_indices(np.zeros(len(self.decisions), dtype=np.int64)))  # fail early, one line
        register_space(self)

    # ----------------------------------------------------------------- canonical form
    def _parse_values(self, text: str) -> list[Any]:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            raise ArchitectureError(f"malformed JSON ({err.msg} at character {err.pos})") from None
        if not isinstance(obj, dict):
            raise ArchitectureError(f"expected a JSON object with keys {', '.join(self.names)}")
        missing = [n for n in self.names if n not in obj]
        extra = [k for k in obj if k not in self.names]
        if missing:
            raise ArchitectureError(f"missing key(s) {', '.join(map(repr, missing))}")
        if extra:
            raise ArchitectureError(f"unknown key(s) {', '.join(map(repr, extra))}")
        return [obj[n] for n in self.names]

    def _format_values(self, values: Sequence[Any]) -> str:
        return json.dumps({n: (v.item() if isinstance(v, np.generic) else v) for n, v in zip(self.names, values)})

    # ----------------------------------------------------------------- the model
    @property
    def has_build(self) -> bool:
        """Whether the space builds PyTorch models (and so has features and can be measured)."""
        return self.build is not None

    def input_shape_of(self, arch: ArchLike) -> tuple[int, ...]:
        """Input shape (without the batch) of an architecture's model."""
        if self.input_shape is None:
            raise InputError(f"space {self.name!r} has no input_shape")
        if callable(self.input_shape):
            params = self.parse(self.format(arch))
            try:
                shape = self.input_shape(params)
            except Exception as err:  # noqa: BLE001 - a user's function: one line naming it
                raise InputError(f"space {self.name!r}: input_shape({params}) raised {type(err).__name__}: {err}"
                                 ) from None
            return _check_shape(self.name, shape)
        return tuple(self.input_shape)

    def build_model(self, arch: ArchLike) -> Any:
        """The ``torch.nn.Module`` of ``arch`` (from the user's ``build``), in eval mode.

        Raises:
            InputError: when the space has no build, or the build raises or returns no module.
        """
        import torch

        if self.build is None:
            raise InputError(f"space {self.name!r} has no build function (give build=... to measure or count it)")
        canonical = self.format(arch)
        params = self.parse(canonical)
        try:
            model = self.build(dict(params))
        except Exception as err:  # noqa: BLE001 - a user's builder: one line naming the architecture
            reason = (str(err).strip().splitlines() or [""])[0][:200]
            raise InputError(f"space {self.name!r}: build raised {type(err).__name__} for {canonical}: {reason}"
                             ) from None
        if not isinstance(model, torch.nn.Module):
            raise InputError(f"space {self.name!r}: build returned {type(model).__name__} for {canonical}, "
                             "not a torch.nn.Module")
        return model.eval()

    # ----------------------------------------------------------------- features
    @property
    def costly_features(self) -> bool:  # type: ignore[override]
        return self.build is not None

    @property
    def cost_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("mflops", "mparams") if self.build is not None else ()

    @property
    def feature_names(self) -> tuple[str, ...]:
        from edgeopt_plugins.spaces._layerstats import LAYER_FEATURES

        return LAYER_FEATURES if self.build is not None else ()

    def _costs(self, indices: np.ndarray) -> np.ndarray:
        return self.features(indices)[:, : len(self.cost_names)]

    def features(self, archs: Iterable[ArchLike] | np.ndarray) -> np.ndarray:
        idx = self.to_indices(archs)
        width = len(self.feature_names)
        if self.build is None or not len(idx):
            return np.zeros((len(idx), width))
        keys = [tuple(row) for row in idx.tolist()]
        todo = [k for k in dict.fromkeys(keys) if k not in self._feature_cache]
        if todo:
            from tqdm.auto import tqdm

            from edgeopt_plugins._threads import torch_threads

            bar = tqdm(todo, desc=f"{self.name}: layer statistics", unit="arch", leave=False,
                       disable=not self.progress or len(todo) < _PROGRESS_FROM)
            with torch_threads(1):
                for key in bar:
                    self._feature_cache[key] = self._count(self.from_indices(np.array(key))[0])
            if self._cache_file is not None:
                self._save_cache()
        return np.stack([self._feature_cache[k] for k in keys])

    def cache_features(self, path: str | os.PathLike[str]) -> int:
        """Keep this space's features in ``path`` (``.npz``) across runs; returns how many were loaded.

        The file records the space's fingerprint, its build function and the feature
        names; a file written for another space or build is ignored (and replaced).
        Delete it when you change the builder's code.

        Example:
            >>> import tempfile, pathlib  # doctest: +SKIP
            >>> SPACE.cache_features(pathlib.Path(tempfile.mkdtemp()) / "features.npz")  # doctest: +SKIP
            0
        """
        self._cache_file = Path(path)
        if self._cache_file.suffix != ".npz":
            raise InputError(f"{self._cache_file}: a feature cache must end in .npz")
        loaded = self._load_cache()
        if len(self._feature_cache) > loaded:  # designs counted before the file was attached
            self._save_cache()
        return loaded

    def _load_cache(self) -> int:
        assert self._cache_file is not None
        if not self._cache_file.exists():
            return 0
        try:
            with np.load(self._cache_file, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                archs, values = data["archs"].tolist(), np.asarray(data["values"], dtype=np.float64)
        except (OSError, ValueError, KeyError) as err:
            warnings.warn(f"{self._cache_file}: unreadable feature cache ignored ({err})", EdgeOptWarning,
                          stacklevel=3)
            return 0
        if meta != self._cache_meta() or values.shape != (len(archs), len(self.feature_names)):
            warnings.warn(f"{self._cache_file}: feature cache of another space or build ignored", EdgeOptWarning,
                          stacklevel=3)
            return 0
        for arch, row in zip(archs, values):
            self._feature_cache[self.indices_of(arch)] = row
        return len(archs)

    def _cache_meta(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "build": _function_ref(self.build) or repr(self.build),
                "features": list(self.feature_names)}

    def _save_cache(self) -> None:
        from edgeopt_plugins._io import atomic_write

        assert self._cache_file is not None
        keys = list(self._feature_cache)
        with atomic_write(self._cache_file, "wb") as handle:
            np.savez(handle, meta=np.array(json.dumps(self._cache_meta())),
                     archs=np.array(self.from_indices(np.array(keys, dtype=np.int64))),
                     values=np.stack([self._feature_cache[k] for k in keys]))

    def _count(self, arch: str) -> np.ndarray:
        import torch

        from edgeopt_plugins.spaces._layerstats import layer_statistics

        model = self.build_model(arch)
        example = torch.zeros(1, *self.input_shape_of(arch))
        try:
            if self._whole_model:
                return layer_statistics(model, example)
            fast = layer_statistics(model, example, leaf_flops=self._leaf_flops)
            if self._checked < _CHECK_WHOLE_MODEL:  # are there FLOPs outside leaf modules?
                self._checked += 1
                whole = layer_statistics(model, example)
                if not np.allclose(whole, fast, rtol=1e-9, atol=0.0):
                    self._whole_model = True
                    return whole
            return fast
        except Exception as err:  # noqa: BLE001 - the user's model failed to run
            reason = (str(err).strip().splitlines() or [""])[0][:200]
            raise InputError(f"space {self.name!r}: the model of {arch} failed on an input of shape "
                             f"{tuple(example.shape)} ({type(err).__name__}: {reason})") from None

    # ----------------------------------------------------------------- spec
    def to_spec(self) -> dict[str, Any]:
        """JSON description: name, decisions, and where the build and the space come from.

        Saved models and profile sidecars record it, so that a space can be checked
        (:attr:`fingerprint`) and, without a build, recreated (:func:`space_from_spec`).
        """
        shape = None if self.input_shape is None or callable(self.input_shape) else list(self.input_shape)
        return {
            "name": self.name,
            "decisions": {d.name: d.to_spec() for d in self.decisions},
            "build": _function_ref(self.build),
            "input_shape": shape,
            "ref": self.ref,
            "features": list(self.feature_names),
            "fingerprint": self.fingerprint,
        }

    @property
    def fingerprint(self) -> str:
        """Hash of the name and decisions: two spaces with the same fingerprint name the same architectures."""
        body = json.dumps([self.name, [[d.name, d.to_spec()] for d in self.decisions]], sort_keys=True)
        return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


def _check_shape(name: str, shape: Any) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in shape)
        ok = all(float(v) == int(v) for v in shape) and all(v >= 1 for v in out) and 1 <= len(out) <= 5
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"space {name!r}: input_shape must be 1-5 positive integers without the batch, "
                         f"e.g. (3, 32, 32), got {shape!r}")
    if math.prod(out) > 50_000_000:
        raise InputError(f"space {name!r}: input_shape {out} is too large for one input")
    return out


def _function_ref(fn: Any) -> str | None:
    """``"module:qualname"`` of an importable function, else ``None`` (lambdas, closures, ``__main__``)."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def spec_decisions(space_name: str, decisions: Mapping[str, Any]) -> list[Decision]:
    """Decisions from the ``"decisions"`` object of a spec (see :func:`~edgeopt_plugins.spaces.space_from_spec`)."""
    if not isinstance(decisions, Mapping):
        raise InputError(f"space {space_name!r}: 'decisions' must be an object name -> choices")
    out: list[Decision] = []
    for name, spec in decisions.items():
        if isinstance(spec, list):
            out.append(Decision(name, tuple(spec)))
        elif isinstance(spec, Mapping) and "choices" in spec:
            if not isinstance(spec["choices"], list):
                raise InputError(f"space {space_name!r}: decision {name!r}: 'choices' must be a list")
            out.append(Decision(name, tuple(spec["choices"])))
        elif isinstance(spec, Mapping) and {"low", "high"} <= set(spec):
            unknown = set(spec) - {"type", "low", "high", "step", "log"}
            if unknown:
                raise InputError(f"space {space_name!r}: decision {name!r}: unknown key(s) {sorted(unknown)}")
            kind = spec.get("type") or ("int" if all(isinstance(spec.get(k, 1), int) for k in ("low", "high", "step"))
                                        else "float")
            if kind == "int":
                out.append(IntDecision.make(name, spec["low"], spec["high"], spec.get("step", 1),
                                            bool(spec.get("log", False))))
            elif kind == "float":
                if spec.get("log"):
                    raise InputError(f"space {space_name!r}: decision {name!r}: a log-scaled float is continuous")
                out.append(FloatDecision.make(name, spec["low"], spec["high"], spec.get("step")))
            else:
                raise InputError(f"space {space_name!r}: decision {name!r}: type must be 'int' or 'float', got {kind!r}")
        else:
            raise InputError(f"space {space_name!r}: decision {name!r} must be a list of choices, "
                             "{'choices': [...]} or {'low': ..., 'high': ..., 'step': ...}")
    return out
