"""Storage URLs: every credential form is hidden in errors and reports; bad hosts and ports are one line."""

from __future__ import annotations

import pytest

from benchmarks._faults import CREDENTIAL_URLS, SECRET
from edgeopt_plugins.exceptions import InputError, StorageError
from edgeopt_plugins.fleet import describe_storage, open_storage

@pytest.mark.parametrize("url", CREDENTIAL_URLS)
def test_no_credential_reaches_a_message_or_a_report(url):
    assert SECRET not in describe_storage(url)
    with pytest.raises((InputError, StorageError)) as caught:
        open_storage(url, retries=1)
    assert SECRET not in str(caught.value) and "***" in str(caught.value)


def test_harmless_query_parameters_stay_readable():
    url = f"postgresql://ann:{SECRET}@db:5432/runs?sslmode=require&password={SECRET}"
    assert describe_storage(url) == "postgresql://ann:***@db:5432/runs?sslmode=require&password=***"
    assert describe_storage("sqlite:///runs.db") == "sqlite:///runs.db"


@pytest.mark.parametrize(("url", "fragment"), [
    ("postgresql://ann@db:port/runs", "Port could not be cast"),
    ("postgresql://ann@db:99999/runs", "Port out of range"),
    ("postgresql://ann@[::1/runs", "Invalid IPv6 URL"),
])
def test_bad_ports_and_hosts_are_input_errors(url, fragment):
    with pytest.raises(InputError, match=f"not a valid URL.*{fragment}"):
        open_storage(url)


def test_the_cli_prints_one_line_without_the_password(run_cli, tiny_model_dir, data_dir, tmp_path):
    code, _, err = run_cli("fleet", "--model", tiny_model_dir, "--data-dir", data_dir, "--simulated", "2",
                           "--budget-percentile", "30",
                           "--storage", f"mysql://ann@host/db?password={SECRET}", "--out", tmp_path / "o")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert SECRET not in err
