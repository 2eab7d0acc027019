"""NAS-Bench-201: a cell of 4 nodes, 6 edges, 5 operations per edge (15,625 cells).

Canonical form: the NB201 string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` where
group ``j`` lists the edges into node ``j`` from nodes ``0..j-1``. The official
NB201 index (the row order of the benchmark files) is not derivable from the
cell: it is read from the benchmark data on first use (see :meth:`NB201Space.index`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from edgeopt_plugins.exceptions import ArchitectureError, InputError
from edgeopt_plugins.spaces._base import ArchLike, Decision, SearchSpace

__all__ = ["NB201Space", "NB201_OPS", "NB201_EDGES"]

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (to_node, from_node) of each decision, in canonical string order.
NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))

_TOKEN = re.compile(r"^([A-Za-z0-9_]+)~(\d+)$")

# Cost of one op on one edge per unit of (channels^2 x pixels) or (channels x pixels),
# summed over the NB201 skeleton: 3 stages x 5 cells, C = 16/32/64 at 32/16/8 pixels.
_STAGES = ((16, 32), (32, 16), (64, 8))
_CELLS_PER_STAGE = 5


def _edge_costs() -> tuple[np.ndarray, np.ndarray]:
    """MFLOPs and Mparams of each op on one edge, summed over all 15 cells."""
    flops = np.zeros(len(NB201_OPS))
    params = np.zeros(len(NB201_OPS))
    for channels, pixels in _STAGES:
        hw = pixels * pixels
        c2 = channels * channels
        per_op_flops = {
            "none": 0.0,
            "skip_connect": 0.0,
            "nor_conv_1x1": 2.0 * c2 * hw + 4.0 * channels * hw,  # conv + BN/ReLU
            "nor_conv_3x3": 2.0 * 9 * c2 * hw + 4.0 * channels * hw,
            "avg_pool_3x3": 9.0 * channels * hw,
        }
        per_op_params = {"nor_conv_1x1": c2 + 2 * channels, "nor_conv_3x3": 9 * c2 + 2 * channels}
        for i, op in enumerate(NB201_OPS):
            flops[i] += _CELLS_PER_STAGE * per_op_flops[op]
            params[i] += _CELLS_PER_STAGE * per_op_params.get(op, 0)
    return flops / 1e6, params / 1e6


_OP_MFLOPS, _OP_MPARAMS = _edge_costs()


class NB201Space(SearchSpace):
    """The NAS-Bench-201 cell space.

    Decisions are named ``edge_<to>_<from>`` (``edge_1_0`` ... ``edge_3_2``) with the
    five NB201 operation names as choices.

    Example:
        >>> from edgeopt_plugins.spaces import get_space
        >>> space = get_space("nb201")
        >>> space.size
        15625
        >>> space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")["edge_3_2"]
        'skip_connect'
    """

    name = "nb201"
    decisions = tuple(Decision(f"edge_{to}_{frm}", NB201_OPS) for to, frm in NB201_EDGES)
    cost_names = ("mflops", "mparams", *(f"n_{op}" for op in NB201_OPS))

    def __init__(self) -> None:
        self._official: dict[str, Any] = {}

    def _parse_values(self, text: str) -> list[Any]:
        if not (text.startswith("|") and text.endswith("|")):
            raise ArchitectureError("expected the NB201 form |op~0|+|op~0|op~1|+|op~0|op~1|op~2|")
        groups = text.split("+")
        if len(groups) != 3:
            raise ArchitectureError(f"expected 3 node groups separated by '+', found {len(groups)}")
        values: list[Any] = []
        for node, group in enumerate(groups, start=1):
            if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
                raise ArchitectureError(f"node {node} group {group!r} must start and end with '|'")
            tokens = group[1:-1].split("|")
            if len(tokens) != node:
                raise ArchitectureError(f"node {node} must have {node} incoming edge(s), found {len(tokens)}")
            for source, token in enumerate(tokens):
                match = _TOKEN.match(token)
                if not match:
                    raise ArchitectureError(f"edge {node}<-{source}: malformed token {token!r} (expected op~{source})")
                op, src = match.group(1), int(match.group(2))
                if src != source:
                    raise ArchitectureError(f"edge {node}<-{source}: token {token!r} names source node {src}")
                if op not in NB201_OPS:
                    raise ArchitectureError(
                        f"edge {node}<-{source}: unknown op {op!r} (expected one of {', '.join(NB201_OPS)})"
                    )
                values.append(op)
        return values

    def _format_values(self, values: Sequence[Any]) -> str:
        v = list(values)
        return f"|{v[0]}~0|+|{v[1]}~0|{v[2]}~1|+|{v[3]}~0|{v[4]}~1|{v[5]}~2|"

    def _costs(self, indices: np.ndarray) -> np.ndarray:
        counts = np.stack([(indices == i).sum(axis=1) for i in range(len(NB201_OPS))], axis=1)
        mflops = _OP_MFLOPS[indices].sum(axis=1)
        mparams = _OP_MPARAMS[indices].sum(axis=1)
        return np.column_stack([mflops, mparams, counts]).astype(np.float64)

    # ----------------------------------------------------------------- official order
    def official_order(self, data_dir: str | os.PathLike[str] | None = None) -> list[str]:
        """All 15,625 cells in official NB201 index order, read from the benchmark data.

        Args:
            data_dir: Data folder (default: ``EDGEOPT_DATA_DIR`` or the user cache).

        Raises:
            DataNotFoundError: if no NB201 data is found.
        """
        key = str(data_dir) if data_dir is not None else ""
        if key not in self._official:
            from edgeopt_plugins.data import nb201_official_order  # data depends on spaces, not the reverse

            order = nb201_official_order(data_dir)
            self._official[key] = (order, {a: i for i, a in enumerate(order)})
        return list(self._official[key][0])

    def enumerate(self) -> list[str]:
        """All 15,625 cells in official NB201 index order (needs the benchmark data)."""
        return self.official_order()

    def index(self, arch: ArchLike, *, data_dir: str | os.PathLike[str] | None = None) -> int:
        """Official NB201 index of ``arch`` (the row in the benchmark files)."""
        self.official_order(data_dir)
        key = str(data_dir) if data_dir is not None else ""
        return int(self._official[key][1][self.format(arch)])

    def indices(self, archs: Iterable[ArchLike], *, data_dir: str | os.PathLike[str] | None = None) -> np.ndarray:
        """Official NB201 indices of many architectures."""
        if isinstance(archs, (str, dict)):
            raise InputError("nb201: indices() expects a list of architectures")
        self.official_order(data_dir)
        key = str(data_dir) if data_dir is not None else ""
        lookup = self._official[key][1]
        return np.array([lookup[self.format(a)] for a in archs], dtype=np.int64)
