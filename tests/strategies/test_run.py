"""run_nni_search: in-process, no server, no files; NNI's trial globals restored; input checks."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

pytest.importorskip("nni", reason="NNI is an optional extra: pip install -c constraints.txt -e '.[nni]'")

import nni  # noqa: E402
from nni.nas.evaluator import FunctionalEvaluator  # noqa: E402
from nni.nas.hub.pytorch import NasBench201  # noqa: E402
from nni.nas.space import RawFormatModelSpace  # noqa: E402
from nni.nas.strategy import Random, RegularizedEvolution  # noqa: E402

from edgeopt_plugins.exceptions import InputError, ModelFormatError  # noqa: E402
from edgeopt_plugins.strategies import GuidedStrategy, nni_space, run_nni_search, sample_to_arch  # noqa: E402
from tests.samplers._guides import FormulaGuide, true_accuracy  # noqa: E402
from tests.strategies.test_guided_strategy import BUDGET, evaluate  # noqa: E402


def _inet_socket_inodes() -> set[str]:
    """Inodes of this process's TCP/UDP sockets (Linux /proc)."""
    fds = Path("/proc/self/fd")
    mine = set()
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(target[8:-1])
    inet = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        path = Path("/proc/self/net") / table
        if path.exists():
            inet |= {line.split()[9] for line in path.read_text().splitlines()[1:]}
    return mine & inet


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc")
def test_no_server_no_threads_no_files_under_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    sockets, threads = _inet_socket_inodes(), threading.active_count()
    result = run_nni_search("nb201", evaluate, GuidedStrategy(FormulaGuide(BUDGET), seed=0), max_trials=10)
    stock = run_nni_search("nb201", evaluate, RegularizedEvolution(population_size=4, sample_size=2, seed=0),
                           max_trials=10)
    assert len(result.trials) == len(stock.trials) == 10
    assert _inet_socket_inodes() == sockets
    assert threading.active_count() == threads
    assert list(tmp_path.iterdir()) == []
    assert not (Path(os.path.expanduser("~")) / "nni-experiments").exists()


def test_trial_globals_are_restored(monkeypatch):
    monkeypatch.setattr(nni.trial, "_params", None)  # as in a fresh process (an earlier test drove NNI directly)
    run_nni_search("nb201", evaluate, Random(seed=0), max_trials=3)
    assert nni.get_current_parameter() is None
    model = RawFormatModelSpace(nni_space("nb201"), None).freeze(
        {n: "none" for n in ("edge_1_0", "edge_2_0", "edge_2_1", "edge_3_0", "edge_3_1", "edge_3_2")})
    with FunctionalEvaluator.mock_runtime(model):  # refuses to run on stale globals
        assert nni.get_current_parameter() is model


def test_nni_evaluator_on_the_hub_space_and_trial_records():
    def train(model):  # an NNI FunctionalEvaluator receives the built torch model
        arch = sample_to_arch("nb201", nni.get_current_parameter().sample)
        nni.report_final_result({"default": float(true_accuracy([arch])[0]), "latency_ms": 2.0})

    hub = NasBench201(stem_out_channels=4, num_modules_per_stack=1)
    result = run_nni_search(hub, FunctionalEvaluator(train), Random(seed=1), max_trials=2, space="nb201")
    assert [t.metric for t in result.trials] == pytest.approx([true_accuracy([t.arch])[0] for t in result.trials])
    assert [t.latency_ms for t in result.trials] == [2.0, 2.0]
    assert result.best().metric == max(t.metric for t in result.trials)


def test_bad_arguments():
    with pytest.raises(InputError, match="max_trials"):
        run_nni_search("nb201", evaluate, Random(), max_trials=0)
    with pytest.raises(InputError, match="space="):
        run_nni_search(nni_space("nb201"), evaluate, Random(), max_trials=1)
    with pytest.raises(InputError, match="evaluator"):
        run_nni_search("nb201", 3, Random(), max_trials=1)
    with pytest.raises(InputError, match="not yet bound"):
        run_nni_search(RawFormatModelSpace(nni_space("nb201"), None), evaluate, Random(), max_trials=1, space="nb201")
    with pytest.raises(InputError, match="differs"):
        run_nni_search("nb201", evaluate, Random(), max_trials=1, space="fbnet")
    with pytest.raises(ModelFormatError, match="state needs"):
        run_nni_search("nb201", evaluate, Random(), max_trials=1, state={"engine": {}})
    with pytest.raises(InputError, match="no 'default'"):
        run_nni_search("nb201", lambda a: {"acc": 1.0}, Random(), max_trials=1, continue_on_failure=False)
