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

The map is a fact about the public data sets, written out so that a reader can check it; the
library itself never looks at device names.

Example:
    >>> family_of("titanx_256"), family_of("1080ti_1"), class_of("samsung_s7")
    ('pascal_gpu', 'pascal_gpu', 'phone')
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["CLASSES", "FAMILIES", "batch_of", "class_of", "family_of", "group_devices", "holdout_splits"]

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
