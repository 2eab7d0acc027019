"""Reproducible benchmarks of edgeopt-plugins. They report; they never assert.

Each module in :data:`BENCHMARKS` has ``run(*, quick: bool) -> dict`` (writes
``benchmarks/results/<name>.json`` and its PNG plots) and ``report(result) -> str``
(a Markdown section for ``docs/benchmarks.md``). ``python -m benchmarks`` runs them all.
"""

#: Benchmark modules in report order.
BENCHMARKS: tuple[str, ...] = ("devices", "approach1", "approach2", "search", "fleet_scale", "reliability", "own_space")
