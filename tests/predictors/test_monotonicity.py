"""Monotonicity statistics: tie-aware Spearman/Kendall, matrices and the full report."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from edgeopt_plugins.data import MetricTable
from edgeopt_plugins.exceptions import InputError
from edgeopt_plugins.predictors import (
    kendall,
    monotonicity_matrix,
    monotonicity_report,
    spearman,
)
from edgeopt_plugins.spaces import get_space


def _table(values: np.ndarray, names: list[str]) -> MetricTable:
    archs = get_space("nb201").sample(values.shape[0], seed=3)
    return MetricTable("nb201", "latency_ms", archs, names, values)


def test_ties_use_average_ranks_and_tau_b():
    # A "phone" that reports whole milliseconds: many ties.
    a = np.array([1.2, 1.4, 2.6, 2.9, 3.1, 4.8, 5.2, 5.4])
    phone = np.round(a)  # 1, 1, 3, 3, 3, 5, 5, 5
    assert spearman(a, phone) == pytest.approx(stats.spearmanr(a, phone).statistic)
    assert kendall(a, phone) == pytest.approx(stats.kendalltau(a, phone, variant="b").statistic)
    # ranks of phone are 1.5, 1.5, 4, 4, 4, 7, 7, 7 (average ranks over ties)
    assert spearman(a, phone) == pytest.approx(0.944911, abs=1e-6)
    assert spearman(a, phone) < 1.0 and kendall(a, phone) < spearman(a, phone)


def test_constant_or_too_short_gives_nan_and_nan_pairs_are_dropped():
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert np.isnan(kendall([1.0], [2.0]))
    assert spearman([1, 2, np.nan, 4], [1, 2, 0, 4]) == pytest.approx(1.0)
    with pytest.raises(InputError, match="same length"):
        spearman([1, 2], [1, 2, 3])


def test_matrix_matches_pairwise_scipy_with_ties():
    rng = np.random.default_rng(0)
    base = rng.uniform(1, 10, size=60)
    vals = np.column_stack([base, np.round(np.abs(base + rng.normal(0, 1, 60))) + 1, np.round(base * 2) / 2 + 0.1])
    t = _table(vals, ["a", "b", "c"])
    for method, ref in (("spearman", lambda x, y: stats.spearmanr(x, y).statistic),
                        ("kendall", lambda x, y: stats.kendalltau(x, y, variant="b").statistic)):
        names, mat = monotonicity_matrix(t, method=method)
        assert names == ["a", "b", "c"]
        np.testing.assert_allclose(mat, mat.T)
        np.testing.assert_allclose(np.diag(mat), 1.0)
        for i in range(3):
            for j in range(3):
                if i != j:
                    assert mat[i, j] == pytest.approx(ref(vals[:, i], vals[:, j]), abs=1e-12)


def test_report_counts_ties_and_names_neighbours():
    vals = np.array([[1.0, 1, 9], [2, 1, 8], [3, 2, 7], [4, 2, 6], [5, 3, 5.5]])
    rep = monotonicity_report(_table(vals, ["x", "phone", "rev"]), methods=("spearman", "kendall"))
    rows = {r["device"]: r for r in rep["per_device"]}
    assert rows["phone"]["distinct_values"] == 3 and rows["phone"]["tied_share"] == pytest.approx(0.8)
    assert rows["x"]["nearest_spearman"] == "phone" and rows["x"]["spearman_to_nearest"] == pytest.approx(
        stats.spearmanr(vals[:, 0], vals[:, 1]).statistic)
    assert rep["summary"]["spearman"]["min"] == pytest.approx(-1.0)  # x and rev are exactly reversed
    assert set(rep["matrices"]) == {"spearman", "kendall"} and rep["archs"] == 5


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"devices": ["x"]}, "at least two devices"),
    ({"devices": ["x", "x"]}, "listed twice"),
    ({"devices": ["x", "nope"]}, "unknown device 'nope'"),
    ({"methods": ("pearson",)}, "unknown rank correlation"),
])
def test_report_bad_input(kwargs, fragment):
    t = _table(np.array([[1.0, 2], [2, 3], [3, 1]]), ["x", "y"])
    with pytest.raises(InputError, match=fragment):
        monotonicity_report(t, **kwargs)


def test_real_nb201_phones_have_ties_and_gpus_agree(nb201_latency):
    rep = monotonicity_report(nb201_latency, devices=["titanx_1", "titanxp_1", "samsung_s7"], methods=("spearman",))
    mat = np.array(rep["matrices"]["spearman"])
    assert mat[0, 1] > 0.95  # same-batch GPUs agree
    phone = rep["per_device"][2]
    assert phone["distinct_values"] < 200 and phone["tied_share"] > 0.9
    assert mat[0, 2] == pytest.approx(stats.spearmanr(nb201_latency.column("titanx_1"),
                                                      nb201_latency.column("samsung_s7")).statistic, abs=1e-6)
