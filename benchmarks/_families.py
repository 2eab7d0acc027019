"""The hold-out protocol shared by every cross-device benchmark: hardware families and classes.

A device *setting* (a column of a table: ``titanx_32``) belongs to a *family*: its chip with every
batch size and precision, with near-identical chips of one generation merged (the Pascal GP102
cards ``1080ti``, ``titanx``, ``titanxp``; the Turing TU102 cards ``2080ti``, ``titan_rtx``; the four
Xeon settings; the two Snapdragon 835 phones). Families belong to *classes* (desktop GPU, server
CPU, phone, Raspberry Pi, ASIC/FPGA simulator).

Leaving out one *setting* while its near copies stay among the proxies measures how well a
predictor finds a sibling, not how it does on new hardware (0.97 against 0.77 here). Every
benchmark therefore holds out a whole family (``leave-one-family-out``) and, as a harsher check,
a whole class (``leave-one-class-out``): the held-out devices and every device of their family
(class) are removed from the proxies and the training devices before anything is built.

A third split, :func:`novel_splits`, imitates hardware unlike everything in the data: a target
keeps only the devices outside its family that rank the table's architectures at most 0.85 like
it does. It is chosen *with* hindsight (the target's own full column decides which devices stay):
a stress test of the predictors' fall-back, not a protocol a user could follow.

The map is a fact about the public data sets, written out so that a reader can check it; the
library itself never looks at device names.

Example:
    >>> family_of("titanx_256"), family_of("1080ti_1"), class_of("samsung_s7")
    ('pascal_gpu', 'pascal_gpu', 'phone')
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from edgeopt_plugins.data import MetricTable

__all__ = ["CLASSES", "FAMILIES", "PROTOCOLS", "batch_of", "class_of", "family_of", "group_devices", "holdout_splits",
           "novel_splits", "protocol_splits"]

#: Hold-out protocols, harshest last but one: ``setting`` is the old leave-one-setting-out (near copies
#: stay), kept beside the others for comparison with earlier reports.
PROTOCOLS: dict[str, str] = {
    "family": "leave-one-family-out",
    "class": "leave-one-class-out",
    "novel": "novel hardware (proxies ranking the target at most 0.85 alike; chosen with hindsight)",
    "setting": "leave-one-setting-out (old protocol: near copies stay)",
}

#: chip (device name without its batch suffix) -> family.
FAMILIES: dict[str, str] = {
    # desktop GPUs: one family per generation of near-identical chips
    "1080ti": "pascal_gpu",
    "titanx": "pascal_gpu",
    "titanxp": "pascal_gpu",
    "titan_xp": "pascal_gpu",
    "2080ti": "turing_gpu",
    "titan_rtx": "turing_gpu",
    "v100": "volta_gpu",
    "a100": "ampere_gpu",
    "3090": "ampere_gpu",
    # server CPUs (Skylake / Cascade Lake Xeons)
    "gold_6226": "xeon",
    "gold_6240": "xeon",
    "silver_4114": "xeon",
    "silver_4210r": "xeon",
    # phones
    "pixel2": "snapdragon_835",
    "essential_ph": "snapdragon_835",
    "pixel3": "snapdragon_845",
    "samsung_a50": "exynos_9610",
    "samsung_s7": "exynos_8890",
    # boards and simulators
    "raspi4": "raspberry_pi_4",
    "eyeriss": "eyeriss",
    "fpga": "fpga_sim",
    "zcu102": "xilinx_zynq_fpga",
    "vck190": "xilinx_versal_fpga",
    "tpuv2": "tpu",
    "tpuv3": "tpu",
}

#: family -> class.
CLASSES: dict[str, str] = {
    "pascal_gpu": "desktop_gpu",
    "turing_gpu": "desktop_gpu",
    "volta_gpu": "desktop_gpu",
    "ampere_gpu": "desktop_gpu",
    "xeon": "server_cpu",
    "snapdragon_835": "phone",
    "snapdragon_845": "phone",
    "exynos_9610": "phone",
    "exynos_8890": "phone",
    "raspberry_pi_4": "raspberry_pi",
    "eyeriss": "asic_fpga_sim",
    "fpga_sim": "asic_fpga_sim",
    "xilinx_zynq_fpga": "fpga",
    "xilinx_versal_fpga": "fpga",
    "tpu": "tpu",
}

_SUFFIX = re.compile(r"(_per_image|_\d+)$")


def _chip(device: str) -> str:
    """The chip of a setting: the longest known chip name left after stripping batch suffixes."""
    name = device
    while name not in FAMILIES:
        stripped = _SUFFIX.sub("", name)
        if stripped == name:
            return _SUFFIX.sub("", device)
        name = stripped
    return name


def batch_of(device: str) -> int:
    """The batch size of a setting (``titanx_256`` -> 256), 1 when its name gives none.

    Example:
        >>> batch_of("titanx_256"), batch_of("gold_6226"), batch_of("pixel3")
        (256, 1, 1)
    """
    suffix = device[len(_chip(device)):].lstrip("_")
    return int(suffix) if suffix.isdigit() else 1


def family_of(device: str) -> str:
    """The hardware family of a device setting (unknown chips are a family of their own)."""
    chip = _chip(device)
    return FAMILIES.get(chip, chip)


def class_of(device: str) -> str:
    """The hardware class of a device setting (unknown families are a class of their own)."""
    family = family_of(device)
    return CLASSES.get(family, family)


def group_devices(devices: Iterable[str], level: str = "family") -> dict[str, list[str]]:
    """Devices grouped by ``level`` (``"family"`` or ``"class"``), groups in first-seen order."""
    key = {"family": family_of, "class": class_of}.get(level)
    if key is None:
        raise ValueError(f"level must be 'family' or 'class', got {level!r}")
    out: dict[str, list[str]] = {}
    for device in devices:
        out.setdefault(key(device), []).append(device)
    return out


def holdout_splits(devices: Iterable[str], level: str = "family") -> list[tuple[str, list[str], list[str]]]:
    """``(group, held-out devices, remaining devices)`` for each group at ``level``.

    Example:
        >>> [(g, len(out), len(rest)) for g, out, rest in holdout_splits(["titanx_1", "titanx_32", "pixel3"])]
        [('pascal_gpu', 2, 1), ('snapdragon_845', 1, 2)]
    """
    devices = list(devices)
    groups = group_devices(devices, level)
    return [(g, members, [d for d in devices if d not in members]) for g, members in groups.items()]


def spearman_matrix(values: np.ndarray) -> np.ndarray:
    """Spearman correlation between the columns of ``values`` (tie-averaged ranks)."""
    from scipy import stats

    ranks = stats.rankdata(values, axis=0)
    z = (ranks - ranks.mean(axis=0)) / ranks.std(axis=0)
    return z.T @ z / len(z)


def novel_splits(table: MetricTable, *, max_spearman: float = 0.85, min_proxies: int = 3
                 ) -> list[tuple[str, list[str], list[str]]]:
    """``(family, [target], proxies)``: one target per family, with only dissimilar proxies.

    A target's proxies are the devices outside its family whose Spearman with it over every fully
    measured architecture of ``table`` is at most ``max_spearman``. Each family contributes its first
    device (in the table's column order) that keeps at least ``min_proxies`` of them; a family with
    none is left out. The split looks at the target's whole column: a stress test, not a method.

    Example:
        >>> import numpy as np
        >>> from edgeopt_plugins.data import MetricTable
        >>> from edgeopt_plugins.spaces import get_space
        >>> archs = get_space("nb201").sample(40, seed=0); rng = np.random.default_rng(0)
        >>> base = rng.random(40)
        >>> cols = [base, base + 0.01 * rng.random(40)] + [rng.random(40) for _ in range(3)]
        >>> names = ["titanx_1", "titanx_32", "pixel3", "raspi4", "eyeriss"]
        >>> table = MetricTable("nb201", "latency_ms", archs, names, np.column_stack(cols) + 1)
        >>> [(t[0], len(p)) for _, t, p in novel_splits(table, max_spearman=0.5)]
        [('titanx_1', 3), ('pixel3', 4), ('raspi4', 4), ('eyeriss', 4)]
    """
    devices = list(table.devices)
    rho = spearman_matrix(table.values[np.flatnonzero(table.complete_rows)])
    out: list[tuple[str, list[str], list[str]]] = []
    for j, target in enumerate(devices):
        family = family_of(target)
        if any(f == family for f, _, _ in out):
            continue
        proxies = [d for i, d in enumerate(devices) if family_of(d) != family and rho[i, j] <= max_spearman]
        if len(proxies) >= min_proxies:
            out.append((family, [target], proxies))
    return out


def protocol_splits(table: MetricTable, protocol: str) -> list[tuple[str, list[str], list[str]]]:
    """``(group, targets, proxies)`` of one of :data:`PROTOCOLS` over the devices of ``table``."""
    if protocol == "setting":
        return [(d, [d], [o for o in table.devices if o != d]) for d in table.devices]
    if protocol == "novel":
        return novel_splits(table)
    if protocol in ("family", "class"):
        return holdout_splits(table.devices, protocol)
    raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
