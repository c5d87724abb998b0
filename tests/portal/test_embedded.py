"""The embedded runtime starts real servers from wheels, reuses them, and stops them."""

import os
import subprocess
import sys

import psycopg
import pytest
import redis

from portal import embedded


@pytest.fixture
def var_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded, "VAR_DIR", tmp_path / "var")
    yield embedded.VAR_DIR
    embedded.redis_stop()
    embedded.postgres_stop()


def test_given_no_servers_when_asked_for_urls_then_postgres_and_redis_start_and_answer(var_dir):
    database_url = embedded.postgres_url("shop")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("shop",)
    redis_url = embedded.redis_url()
    assert redis.Redis.from_url(redis_url).ping()
    assert (var_dir / "pgdata" / "PG_VERSION").exists()

    # Asking again reuses the running servers.
    assert embedded.postgres_url("shop") == database_url
    assert embedded.redis_url() == redis_url

    embedded.redis_stop()
    embedded.postgres_stop()
    assert not embedded.redis_running()
    assert not embedded.postgres_running()


def test_given_the_run_wrapper_then_the_command_sees_both_urls_and_servers_stop_after(var_dir):
    script = (
        "import os, psycopg, redis;"
        "psycopg.connect(os.environ['DATABASE_URL']).close();"
        "redis.Redis.from_url(os.environ['REDIS_URL']).ping()"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from portal import embedded; from pathlib import Path;"
            f"embedded.VAR_DIR = Path({str(var_dir)!r});"
            f"sys.exit(embedded.run([sys.executable, '-c', {script!r}]))",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "embedded postgres started" in result.stderr
    assert "embedded redis stopped" in result.stderr
    assert not embedded.redis_running()
    assert not embedded.postgres_running()
