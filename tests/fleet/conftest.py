"""Storage fixtures for fleet tests: journal and SQLite always, PostgreSQL when CI provides it."""

from __future__ import annotations

import os
import uuid

import pytest

POSTGRES_ENV = "EDGEOPT_TEST_POSTGRES_URL"


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


def _postgres_or_skip() -> str:
    url = postgres_url()
    if url is None:
        if os.environ.get("EDGEOPT_REQUIRE_POSTGRES"):
            pytest.fail(f"{POSTGRES_ENV} is not set but EDGEOPT_REQUIRE_POSTGRES is (CI must run PostgreSQL tests)")
        pytest.skip(f"no PostgreSQL server: set {POSTGRES_ENV} (.ci/run starts one)")
    return url


@pytest.fixture(params=["journal", "sqlite", "postgres"])
def storage_url(request, tmp_path):
    """A fresh storage URL of each kind; PostgreSQL skips unless a server is configured."""
    if request.param == "journal":
        return str(tmp_path / "fleet.journal")
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fleet.db'}"
    return _postgres_or_skip()


@pytest.fixture
def postgres_url_or_skip():
    """The CI PostgreSQL server's URL (skips, or fails in CI, without one)."""
    return _postgres_or_skip()


@pytest.fixture
def run_name():
    """A unique run name, so tests sharing one PostgreSQL database never collide."""
    return f"test-{uuid.uuid4().hex[:10]}"
