"""``TorchDevice``: real latency of architectures on this machine, measured with PyTorch.

Each setting (threads, batch size, dtype, input resolution, CPU or GPU) is a
different device with its own stable name, e.g. ``cpu-intel-xeon-processor-t1-b1-fp32``:
that is how one machine becomes several real targets.

How a measurement is made (:meth:`TorchDevice.measure`):

1. The architectures are taken in groups of ``group_size``. Each model of a group is
   built with random weights (seeded), converted to the dtype, and run ``warmup``
   times.
2. ``repeats`` rounds follow; each round times one forward pass of every model of
   the group, in a freshly shuffled (seeded) order. A burst of background load
   therefore hits a few samples of many architectures rather than all samples of
   one, and per-architecture medians remove it.
3. Per architecture, samples farther than 3 scaled MADs (``1.4826 x MAD``) from
   the median are rejected as outliers; the latency is the median of the rest, with
   its interquartile range (``latency_iqr_ms``) and MAD (``latency_mad_ms``).

The clock (``clock="auto"``):

- CPU with one thread: the CPU time of the thread running the model
  (``time.thread_time_ns``). All the work runs in that thread, so this is the
  wall-clock latency the model has when it has the core to itself, but without the
  time other processes steal from it: on a shared or busy machine it stays stable
  where wall-clock time does not (two 20-architecture NB201 profiles on a shared
  2-core machine under a load average of about 6 agreed at Spearman 0.989-0.998
  with the thread clock, 0.70-0.95 with the wall clock).
- CPU with several threads: wall-clock time (``time.perf_counter_ns``); measure on an
  otherwise idle machine.
- GPU: CUDA events around each run, with synchronisation.
``torch.set_num_threads`` is process-wide: it is set for the measurement and
restored afterwards.

Any space with a PyTorch build is measurable: the built-in NB201 and OFA spaces, and
every user space made with a ``build`` (:func:`~edgeopt_plugins.spaces.from_optuna`),
whose models come from the user's builder and whose input is the space's ``input_shape``.

How much to trust a profile: besides the spread of each architecture's repeats, the
profile's sidecar records ``rank_stability``, the Spearman correlation between the
medians of the even and of the odd rounds. A spread above
:data:`SPREAD_WARNING` or a stability below :data:`STABILITY_WARNING` raises an
:class:`~edgeopt_plugins.exceptions.EdgeOptWarning` (the machine was too busy, or the
setting runs several threads on shared cores).
"""

from __future__ import annotations

import contextlib
import numbers
import platform
import re
import time
import warnings
from functools import cache
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from edgeopt_plugins._memory import require_memory
from edgeopt_plugins._threads import torch_threads
from edgeopt_plugins.devices._base import BaseDevice
from edgeopt_plugins.exceptions import EdgeOptWarning, InputError, MeasurementError
from edgeopt_plugins.spaces import SearchSpace, get_space

__all__ = ["TorchDevice", "MEASURABLE_SPACES", "DTYPES", "SPREAD_WARNING", "STABILITY_WARNING", "cpu_model",
           "summarize_timings", "is_measurable"]

#: Built-in spaces with a PyTorch builder (user spaces with a ``build`` are measurable too).
MEASURABLE_SPACES = ("nb201", "ofa", "ofa_quant")
#: Accepted dtypes and their short form in device names.
DTYPES = {"float32": "fp32", "bfloat16": "bf16", "int8": "int8"}
#: Default models held in memory and interleaved per round, per space (8 for user spaces).
_GROUP_SIZE = {"nb201": 32, "ofa": 8, "ofa_quant": 8}
#: A profile whose median relative IQR of repeats is above this is flagged.
SPREAD_WARNING = 0.15
#: A profile whose split-half rank stability is below this is flagged.
STABILITY_WARNING = 0.9
#: Fewer architectures give no rank stability (a correlation of a handful of points says nothing).
_STABILITY_MIN_ARCHS = 8
_NB201_RESOLUTION = 32
#: Activation values held at once per input pixel and image (a lower bound: NB201 keeps ~4 tensors of 16
#: channels at full resolution; OFA's widest tensors are at a quarter of it), for the memory check; and the
#: largest OFA resolution (each OFA architecture carries its own).
_ACTIVATIONS_PER_PIXEL = {"nb201": 64, "ofa": 16, "ofa_quant": 16}
_OFA_MAX_RESOLUTION = 224
#: Outlier threshold in scaled MADs, and the MAD-to-sigma factor of a normal distribution.
_OUTLIER_MADS = 3.0
_MAD_SIGMA = 1.4826


def summarize_timings(samples: np.ndarray, *, outlier_mads: float = _OUTLIER_MADS) -> dict[str, np.ndarray]:
    """Robust per-row statistics of repeated timings.

    Args:
        samples: ``(n_archs, repeats)`` timings in ms.
        outlier_mads: Samples farther than this many scaled MADs from the row
            median are rejected (none are when the MAD is zero).

    Returns:
        ``latency_ms`` (median of the kept samples), ``latency_iqr_ms`` and
        ``latency_mad_ms`` (of the kept samples) and ``outliers`` (how many were rejected).

    Example:
        >>> import numpy as np
        >>> s = summarize_timings(np.array([[5.0, 5.1, 4.9, 5.0, 50.0]]))
        >>> float(s["latency_ms"][0]), int(s["outliers"][0])
        (5.0, 1)
    """
    x = np.asarray(samples, dtype=np.float64)
    med = np.median(x, axis=1, keepdims=True)
    mad = np.median(np.abs(x - med), axis=1, keepdims=True)
    outlier = np.abs(x - med) > outlier_mads * _MAD_SIGMA * mad
    kept = np.where(outlier, np.nan, x)
    q25, q50, q75 = np.nanpercentile(kept, [25, 50, 75], axis=1)
    return {
        "latency_ms": q50,
        "latency_iqr_ms": q75 - q25,
        "latency_mad_ms": np.nanmedian(np.abs(kept - q50[:, None]), axis=1),
        "outliers": outlier.sum(axis=1).astype(np.float64),
    }


@cache
def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo``, else :mod:`platform`), e.g. ``"Intel(R) Xeon(R) Processor"``."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware", "cpu model") and value.strip():
                    return value.strip()
    return platform.processor() or platform.machine() or "unknown-cpu"


def _slug(text: str, limit: int = 40) -> str:
    """``"Intel(R) Xeon(R) CPU @ 2.40GHz"`` -> ``"intel-xeon-cpu-2-40ghz"``."""
    text = re.sub(r"\((r|tm|c)\)", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:limit].strip("-") or "unknown"


def is_measurable(space: SearchSpace) -> bool:
    """Whether :class:`TorchDevice` can build the models of ``space``."""
    return space.name in MEASURABLE_SPACES or bool(getattr(space, "has_build", False))


def _user_space_bytes(space: Any) -> float:
    """Memory of one input of a user space's first design: its largest activation (a lower bound)."""
    first = space.from_indices(np.zeros(len(space.decisions), dtype=np.int64))
    peak_mb = float(space.features(first)[0][space.feature_names.index("peak_activation_mb")])
    return max(peak_mb * 1e6, 4.0 * float(np.prod(space.input_shape_of(first[0]))))


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InputError(f"TorchDevice: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _quantize_int8(model: nn.Module, example: torch.Tensor, seed: int) -> nn.Module:
    """Static int8 post-training quantization (FX graph mode, calibrated on random data)."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    engine = torch.backends.quantized.engine
    if engine not in ("x86", "fbgemm", "qnnpack", "onednn"):
        raise InputError(f"TorchDevice: int8 needs a quantized engine; this PyTorch build has {engine!r}")
    generator = torch.Generator().manual_seed(seed)
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated upstream in favour of torchao, which is not a dependency.
        warnings.simplefilter("ignore")
        prepared = prepare_fx(model, get_default_qconfig_mapping(engine), example_inputs=(example,))
        with torch.no_grad():
            prepared(torch.randn(4, *example.shape[1:], generator=generator))
        return convert_fx(prepared)


class TorchDevice(BaseDevice):
    """This machine, measured for real with PyTorch, under one setting.

    Args:
        space: ``"nb201"``, ``"ofa"``, ``"ofa_quant"`` or a user space with a ``build``.
        threads: Intra-op CPU threads during the measurement.
        batch_size: Images per forward pass.
        dtype: ``"float32"``, ``"bfloat16"`` (whole model and input cast) or ``"int8"``:
            OFA through the builder's quantization policy (all five stages int8, stem
            and head float), NB201 by static post-training quantization (FX graph
            mode, random calibration data) and so are user spaces (their models must
            be traceable by ``torch.fx``). ``ofa_quant`` architectures carry their
            own per-stage policy, so that space takes ``"float32"`` only.
        resolution: Input height = width. ``None``: 32 for NB201, the architecture's
            own ``r`` for OFA, the space's ``input_shape`` for a user space.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available). int8 is CPU only.
        clock: ``"auto"`` (see the module docs), ``"thread"`` (CPU time of the calling
            thread; one CPU thread only) or ``"wall"``. How, not what, is measured: it
            is recorded in the metadata but not in the name.
        warmup: Untimed forward passes per model before timing.
        repeats: Timed forward passes per model (at least 3).
        group_size: Models built and interleaved together (default 32 for NB201,
            8 for OFA); bounds the memory used.
        seed: Seed of the weights, inputs and round orders.

    Raises:
        InputError: for an unsupported space, setting or combination.

    Example:
        >>> from edgeopt_plugins.devices import TorchDevice
        >>> dev = TorchDevice("nb201", threads=1, batch_size=1, repeats=5)
        >>> dev.name.startswith("cpu-") and dev.name.endswith("-t1-b1-fp32")
        True
        >>> arch = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|"
        >>> float(dev.measure([arch])["latency_ms"][0]) > 0  # doctest: +SKIP
        True
    """

    def __init__(
        self,
        space: str | SearchSpace,
        *,
        threads: int = 1,
        batch_size: int = 1,
        dtype: str = "float32",
        resolution: int | None = None,
        device: str = "cpu",
        clock: str = "auto",
        warmup: int = 3,
        repeats: int = 10,
        group_size: int | None = None,
        seed: int = 0,
    ) -> None:
        self.space = get_space(space)
        if not is_measurable(self.space):
            raise InputError(
                f"TorchDevice: no PyTorch builder for space {self.space.name!r} "
                f"(measurable: {', '.join(MEASURABLE_SPACES)} and user spaces with a build)"
            )
        self.threads = _positive_int("threads", threads)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.warmup = _positive_int("warmup", warmup, 0)
        self.repeats = _positive_int("repeats", repeats, 3)
        self.group_size = _positive_int("group_size", group_size or _GROUP_SIZE.get(self.space.name, 8))
        self.seed = _positive_int("seed", seed, 0)
        if dtype not in DTYPES:
            raise InputError(f"TorchDevice: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if self.space.name == "ofa_quant" and dtype != "float32":
            raise InputError(
                "TorchDevice: ofa_quant architectures carry their own quantization policy; use dtype='float32'"
            )
        self.dtype = dtype
        is_nb201 = self.space.name == "nb201"
        if resolution is not None and self.space.name not in MEASURABLE_SPACES:
            raise InputError(f"TorchDevice: the input of space {self.space.name!r} is its input_shape; "
                             "resolution applies to nb201 and ofa only")
        if resolution is not None:
            resolution = _positive_int("resolution", resolution, 8 if is_nb201 else 32)
        self.resolution = _NB201_RESOLUTION if is_nb201 and resolution is None else resolution
        if self.space.name in MEASURABLE_SPACES:
            pixels = (self.resolution or _OFA_MAX_RESOLUTION) ** 2
            require_memory(self.batch_size * pixels * _ACTIVATIONS_PER_PIXEL[self.space.name] * 4,
                           f"TorchDevice: batch {self.batch_size} at resolution "
                           f"{self.resolution or _OFA_MAX_RESOLUTION}", "lower the batch size or the resolution")
        else:
            require_memory(self.batch_size * _user_space_bytes(self.space),
                           f"TorchDevice: batch {self.batch_size} of {self.space.name}", "lower the batch size")
        self.device = self._resolve_device(device)
        self.clock = self._resolve_clock(clock)
        self.name = self._make_name(is_nb201 and self.resolution == _NB201_RESOLUTION)
        self.metadata = self._make_metadata()

    # ----------------------------------------------------------------- identity
    def _resolve_device(self, device: str) -> str:
        if device not in ("cpu", "cuda", "auto"):
            raise InputError(f"TorchDevice: device must be 'cpu', 'cuda' or 'auto', got {device!r}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() and self.dtype != "int8" else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise InputError("TorchDevice: device='cuda' but PyTorch sees no CUDA GPU")
        if device == "cuda" and self.dtype == "int8":
            raise InputError(
                "TorchDevice: int8 runs on the CPU only (PyTorch has no CUDA int8 kernels for these models)"
            )
        return device

    def _resolve_clock(self, clock: str) -> str:
        if clock not in ("auto", "thread", "wall"):
            raise InputError(f"TorchDevice: clock must be 'auto', 'thread' or 'wall', got {clock!r}")
        if self.device == "cuda":
            if clock == "thread":
                raise InputError("TorchDevice: clock='thread' is for the CPU; GPU runs are timed with CUDA events")
            return "cuda_events"
        if clock == "thread" and self.threads != 1:
            raise InputError(f"TorchDevice: clock='thread' needs threads=1 (got {self.threads}); use clock='wall'")
        if clock == "auto":
            return "thread" if self.threads == 1 else "wall"
        return clock

    def _hardware(self) -> str:
        return torch.cuda.get_device_name() if self.device == "cuda" else cpu_model()

    def _make_name(self, default_resolution: bool) -> str:
        parts = [self.device, _slug(self._hardware())]
        if self.device == "cpu":
            parts.append(f"t{self.threads}")
        parts += [f"b{self.batch_size}", DTYPES[self.dtype]]
        if self.resolution is not None and not default_resolution:
            parts.append(f"r{self.resolution}")
        return "-".join(parts)

    def _make_metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "kind": "torch",
            "space": self.space.name,
            **({"space_ref": self.space.ref} if getattr(self.space, "ref", None) else {}),
            "device": self.device,
            "threads": self.threads,
            "batch_size": self.batch_size,
            "dtype": self.dtype,
            "resolution": self.resolution if self.resolution is not None else (
                "arch" if self.space.name in MEASURABLE_SPACES else "input_shape"),
            "cpu_model": cpu_model(),
            "machine": platform.machine(),
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "clock": self.clock,
            "warmup": self.warmup,
            "repeats": self.repeats,
            "seed": self.seed,
            "statistic": f"median of {self.repeats} interleaved runs after rejecting runs more than "
                         f"{_OUTLIER_MADS:g} scaled MADs from the median",
        }
        shape = getattr(self.space, "input_shape", None)
        if shape is not None and not callable(shape):
            meta["input_shape"] = list(shape)
        if self.device == "cuda":
            meta["cuda_device"] = torch.cuda.get_device_name()
            meta["cuda_version"] = torch.version.cuda
        if self.dtype == "int8":
            meta["quantized_engine"] = torch.backends.quantized.engine
        return meta

    # ----------------------------------------------------------------- models
    def _input_shape(self, row: np.ndarray) -> tuple[int, ...]:
        """Input shape of one architecture, without the batch."""
        if self.space.name not in MEASURABLE_SPACES:
            return tuple(self.space.input_shape_of(self.space.from_indices(row)[0]))  # type: ignore[attr-defined]
        if self.resolution is not None:
            return (3, self.resolution, self.resolution)
        r = int(self.space.field_values(row[None, :], "r")[0, 0])  # type: ignore[attr-defined]
        return (3, r, r)

    def _input(self, shape: tuple[int, ...]) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed)
        x = torch.randn(self.batch_size, *shape, generator=generator)
        return x.to(torch.bfloat16) if self.dtype == "bfloat16" else x

    def model_and_input(self, arch: Any) -> tuple[nn.Module, torch.Tensor]:
        """The model and the input this device times for ``arch`` (on the CPU, in eval mode).

        Example:
            >>> dev = TorchDevice("nb201", batch_size=2)
            >>> model, x = dev.model_and_input("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
            >>> tuple(x.shape)
            (2, 3, 32, 32)
        """
        row = self.space.to_indices([arch])[0]
        x = self._input(self._input_shape(row))
        return self._build(row, x), x

    def _build(self, row: np.ndarray, x: torch.Tensor) -> nn.Module:
        """The model of one architecture, converted to the dtype (still on the CPU)."""
        if self.space.name not in MEASURABLE_SPACES:
            with torch.random.fork_rng():
                torch.manual_seed(self.seed)
                model = self.space.build_model(self.space.from_indices(row)[0])  # type: ignore[attr-defined]
            if self.dtype == "int8":
                model = self._quantized(model, x, row)
        elif self.space.name == "nb201":
            from edgeopt_plugins.spaces._torch_nb201 import build_nb201_model

            ops = [self.space.decisions[j].choices[int(i)] for j, i in enumerate(row)]
            model = build_nb201_model(ops, seed=self.seed)
            if self.dtype == "int8":
                model = _quantize_int8(model, x, self.seed)
        else:
            from edgeopt_plugins.spaces._torch_ofa import build_ofa_model

            def field(key: str) -> list[int]:
                return [int(v) for v in self.space.field_values(row[None, :], key)[0]]

            wbits = field("wbits") if self.space.name == "ofa_quant" else None
            if self.dtype == "int8":
                wbits = [8] * 5
            model = build_ofa_model(field("ks"), field("e"), field("d"), wbits=wbits, seed=self.seed)
        if self.dtype == "bfloat16":
            model = model.to(torch.bfloat16)
        return model

    # ----------------------------------------------------------------- timing
    def _time_ms(self, model: nn.Module, x: torch.Tensor) -> float:
        if self.device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            model(x)
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))
        clock = time.thread_time_ns if self.clock == "thread" else time.perf_counter_ns
        t0 = clock()
        model(x)
        return (clock() - t0) / 1e6

    def _measure(self, indices: np.ndarray, *, progress: bool) -> dict[str, np.ndarray]:
        n = len(indices)
        samples = np.empty((n, self.repeats))
        rng = np.random.default_rng(self.seed)
        bar = tqdm(total=n * (self.warmup + self.repeats), disable=not progress, desc=self.name, unit="run",
                   leave=False)
        with bar, torch_threads(self.threads):
            for start in range(0, n, self.group_size):
                rows = indices[start : start + self.group_size]
                inputs = [self._input(self._input_shape(row)) for row in rows]
                models = [self._build(row, x).to(self.device) for row, x in zip(rows, inputs)]
                inputs = [x.to(self.device) for x in inputs]
                with torch.inference_mode():
                    for row, model, x in zip(rows, models, inputs):
                        self._warm_up(row, model, x)
                        bar.update(self.warmup)
                    for r in range(self.repeats):
                        for j in rng.permutation(len(models)):
                            samples[start + j, r] = self._time_ms(models[j], inputs[j])
                        bar.update(len(models))
        out = summarize_timings(samples)
        out["split_even_ms"] = np.median(samples[:, 0::2], axis=1)
        out["split_odd_ms"] = np.median(samples[:, 1::2], axis=1)
        return out

    def _summary(self, measured: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, Any]:
        rel_iqr = measured["latency_iqr_ms"][keep] / measured["latency_ms"][keep]
        spread = float(np.median(rel_iqr))
        stability = None
        if keep.sum() >= _STABILITY_MIN_ARCHS and self.repeats >= 4:
            from scipy.stats import spearmanr

            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # constant halves: no correlation to report
                rho = spearmanr(measured["split_even_ms"][keep], measured["split_odd_ms"][keep])[0]
            stability = round(float(rho), 4) if np.isfinite(rho) else None
        problems = []
        if spread > SPREAD_WARNING:
            problems.append(f"repeats spread {spread:.0%} (median relative IQR, flagged above {SPREAD_WARNING:.0%})")
        if stability is not None and stability < STABILITY_WARNING:
            problems.append(f"the ranking of even and odd repeats agrees at Spearman {stability:.2f} "
                            f"(flagged below {STABILITY_WARNING})")
        if problems:
            warnings.warn(f"device {self.name}: {'; '.join(problems)}: the machine was busy or the setting is noisy; "
                          "measure again on an idle machine, or with more --repeats", EdgeOptWarning, stacklevel=3)
        return {
            "median_relative_iqr": round(spread, 4),
            "rank_stability": stability,
            "outliers_rejected": int(measured["outliers"][keep].sum()),
            "noisy": bool(problems),
        }

    def _quantized(self, model: nn.Module, x: torch.Tensor, row: np.ndarray) -> nn.Module:
        """Static int8 quantization of a user model (FX graph mode), or one line saying why not."""
        try:
            return _quantize_int8(model, x, self.seed)
        except InputError:
            raise
        except Exception as err:  # noqa: BLE001 - FX tracing of a user's model can fail in many ways
            arch = self.space.from_indices(row)[0]
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise InputError(f"device {self.name}: {arch} cannot be quantized to int8 with torch.fx ({reason})"
                             ) from None

    def _warm_up(self, row: np.ndarray, model: nn.Module, x: torch.Tensor) -> None:
        try:
            for _ in range(self.warmup):
                model(x)
        except RuntimeError as err:
            arch = self.space.from_indices(row)[0]
            reason = (str(err).strip().splitlines() or ["unknown error"])[0]
            raise MeasurementError(f"device {self.name}: {arch} failed to run ({reason})") from None
