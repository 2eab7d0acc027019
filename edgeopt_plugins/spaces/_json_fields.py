"""Spaces whose canonical form is JSON: a list, or an object of lists and scalars.

FBNet (``[7, 8, 1, ...]``), Once-for-All (``{"ks": [...], "e": [...], "d": [...], "r": 224}``)
and MnasNet (``{"e": [...], "k": [...], "l": [...], "se": [...]}``) share this
parsing and formatting; each subclass lists its :class:`Field` s and its costs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeopt_plugins._io import parse_json
from edgeopt_plugins.exceptions import ArchitectureError
from edgeopt_plugins.spaces._base import Decision, SearchSpace

__all__ = ["Field", "JsonFieldsSpace"]


@dataclass(frozen=True)
class Field:
    """One key of the JSON form.

    Attributes:
        key: JSON key (ignored when the space's form is a bare list).
        choices: Allowed values of each position (one tuple per position), or one
            tuple for a scalar field.
        scalar: Whether the field is a single value rather than a list.
    """

    key: str
    choices: tuple[tuple[Any, ...], ...]
    scalar: bool = False

    @property
    def length(self) -> int:
        return 1 if self.scalar else len(self.choices)

    def decisions(self) -> list[Decision]:
        if self.scalar:
            return [Decision(self.key, self.choices[0])]
        return [Decision(f"{self.key}_{i}", c) for i, c in enumerate(self.choices)]


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    return type(value).__name__


class JsonFieldsSpace(SearchSpace):
    """A space whose architectures are JSON objects of fixed keys (or a bare JSON list)."""

    fields: tuple[Field, ...]
    #: When true the canonical form is the bare list of the single field.
    bare_list: bool = False

    def __init__(self) -> None:
        decisions: list[Decision] = []
        for f in self.fields:
            decisions.extend(f.decisions())
        self.decisions = tuple(decisions)

    def _parse_values(self, text: str) -> list[Any]:
        try:
            obj = parse_json(text)
        except ValueError as err:
            raise ArchitectureError(f"malformed JSON ({err})") from None
        if self.bare_list:
            obj = {self.fields[0].key: obj}
        elif not isinstance(obj, dict):
            raise ArchitectureError(f"expected a JSON object with keys {', '.join(f.key for f in self.fields)}")
        else:
            missing = [f.key for f in self.fields if f.key not in obj]
            extra = [k for k in obj if k not in {f.key for f in self.fields}]
            if missing:
                raise ArchitectureError(f"missing key(s) {', '.join(map(repr, missing))}")
            if extra:
                raise ArchitectureError(f"unknown key(s) {', '.join(map(repr, extra))}")
        values: list[Any] = []
        for f in self.fields:
            raw = obj[f.key]
            items = [raw] if f.scalar else raw
            if not f.scalar and not isinstance(raw, list):
                raise ArchitectureError(f"{self._where(f)} must be a list of {f.length} values, got {_kind(raw)}")
            if len(items) != f.length:
                raise ArchitectureError(f"{self._where(f)} must have {f.length} values, found {len(items)}")
            for i, (value, allowed) in enumerate(zip(items, f.choices)):
                expected = _kind(allowed[0])
                if _kind(value) != expected:
                    where = self._where(f) if f.scalar else f"{self._where(f)}[{i}]"
                    raise ArchitectureError(f"{where} must be {expected}, got {value!r}")
                values.append(value)
        return values

    def _indices_of_params(self, params: Any) -> tuple[int, ...]:
        """Also accept the grouped JSON object (``{"ks": [...], ...}``) as a dict."""
        if not self.bare_list and params and set(params) <= {f.key for f in self.fields}:
            return self._indices_of_text(json.dumps(params, default=_plain))
        return super()._indices_of_params(params)

    def _where(self, f: Field) -> str:
        return "the list" if self.bare_list else repr(f.key)

    def _format_values(self, values: Sequence[Any]) -> str:
        obj: dict[str, Any] = {}
        pos = 0
        for f in self.fields:
            chunk = [_plain(v) for v in values[pos : pos + f.length]]
            obj[f.key] = chunk[0] if f.scalar else chunk
            pos += f.length
        return json.dumps(obj[self.fields[0].key] if self.bare_list else obj)

    def field_values(self, indices: np.ndarray, key: str) -> np.ndarray:
        """Values of one field for each row of an index matrix: ``(n, length)``."""
        pos = 0
        for f in self.fields:
            if f.key == key:
                cols = []
                for j, choices in enumerate(f.choices):
                    table = np.asarray(choices, dtype=np.float64)
                    cols.append(table[indices[:, pos + j]])
                return np.stack(cols, axis=1)
            pos += f.length
        raise KeyError(key)


def _plain(value: Any) -> Any:
    """Python scalars for ``json.dumps`` (numpy ints and bools included)."""
    if isinstance(value, np.generic):
        return value.item()
    return value
