"""localstripe, the fake stateful Stripe, as the embedded payment peer.

`python -m portal.localstripe --port P --state FILE` serves it on loopback only, keeping its
state in FILE (localstripe itself always writes /tmp/localstripe.pickle and binds every
interface). `start()` launches that as a child process; `register_webhook()` points its event
deliveries at the storefront.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

SECRET_KEY = "sk_test_localstripe"  # noqa: S105  (localstripe accepts any sk_ key)
PUBLISHABLE_KEY = "pk_test_localstripe"


def _serve(port: int, state: Path | None) -> None:
    from aiohttp import web
    from localstripe import resources, server

    def load(store) -> None:
        if state is not None and state.exists():
            with state.open("rb") as f:
                old = pickle.load(f)  # noqa: S301  (our own state file)
            store.clear()
            store.update(old)

    def dump(store) -> None:
        if state is not None:
            tmp = state.with_suffix(".tmp")
            with tmp.open("wb") as f:
                pickle.dump(store, f, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(state)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump
    server.store.try_load_from_disk()
    web.run_app(server.app, host="127.0.0.1", port=port, print=None, access_log=None)


def start(*, port: int, state: Path | None, log: Path | None = None) -> subprocess.Popen:
    """Run localstripe on 127.0.0.1:`port` as a child process; returns once it answers."""
    args = [sys.executable, "-m", "portal.localstripe", "--port", str(port)]
    if state is not None:
        state.parent.mkdir(parents=True, exist_ok=True)
        args += ["--state", str(state)]
    output = open(log, "a") if log else subprocess.DEVNULL  # noqa: SIM115  (the child owns it)
    proc = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"{base}/js.stripe.com/v3/", timeout=1):  # noqa: S310
                return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"localstripe did not start on port {port}") from None
            time.sleep(0.05)


def _post(url: str, fields: dict) -> None:
    data = urllib.parse.urlencode(fields, doseq=True).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=5):  # noqa: S310
        pass


def register_webhook(*, api_base: str, name: str, url: str, secret: str) -> None:
    """Deliver every event to `url`, signed with `secret` (registrations live in memory only)."""
    _post(f"{api_base}/_config/webhooks/{name}", {"url": url, "secret": secret})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m portal.localstripe")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCALSTRIPE_PORT", 8420)))
    parser.add_argument("--state", type=Path, default=None, help="state file; none: in memory")
    args = parser.parse_args(argv)
    _serve(args.port, args.state)


if __name__ == "__main__":
    main()
