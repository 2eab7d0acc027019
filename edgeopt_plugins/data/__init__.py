"""Benchmark measurement tables and where they come from.

Example:
    >>> from edgeopt_plugins.data import load_table
    >>> latency = load_table("nb201", "latency_ms")  # doctest: +SKIP
    >>> latency.column("pixel3")[:3]  # doctest: +SKIP
"""

from edgeopt_plugins.data._catalog import available_tables, data_info, load_table, nb201_official_order
from edgeopt_plugins.data._loaders import (
    read_accel_nasbench,
    read_help_latency,
    read_nats_bench,
    read_table_csv,
)
from edgeopt_plugins.data._sources import cache_dir, download, manifest, resolve_data_dir
from edgeopt_plugins.data._table import METRICS, MetricTable

__all__ = [
    "MetricTable",
    "METRICS",
    "load_table",
    "available_tables",
    "data_info",
    "nb201_official_order",
    "read_help_latency",
    "read_nats_bench",
    "read_accel_nasbench",
    "read_table_csv",
    "resolve_data_dir",
    "cache_dir",
    "download",
    "manifest",
]
