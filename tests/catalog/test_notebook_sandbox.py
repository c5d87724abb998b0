"""A notebook must not own the platform. Two customers launch notebooks from the portal; one of
them, through the Jupyter REST and kernel API with a token of their own, runs code that tries
to reach what the platform keeps: the database and Redis (TCP and Unix sockets), the portal,
the hub's secrets and environment, the other customer's files and server. Each attempt fails,
while the hub's API (which the server needs) stays reachable and the code runs as the
customer's own unprivileged account."""

import json
import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
import requests
from django.conf import settings
from websockets.sync.client import connect

from catalog.models import OrderState
from catalog.notebooks import hub, sandbox
from catalog.services.orders import order_place
from catalog.services.products import product_upsert
from portal.services.audit import Actor
from tests.catalog.lab import customer
from tests.catalog.test_notebooks import h100_node, wait_for
from tests.portal.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PROBE = r"""
import json, os, pwd, socket

def tcp(port, host="127.0.0.1"):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, port))
        return "connected"
    except OSError as exc:
        return type(exc).__name__
    finally:
        s.close()

def unix(path):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        return "connected"
    except OSError as exc:
        return type(exc).__name__
    finally:
        s.close()

def read(path):
    try:
        with open(path, "rb") as f:
            f.read(64)
        return "read"
    except OSError as exc:
        return type(exc).__name__

def listing(path):
    try:
        os.listdir(path)
        return "listed"
    except OSError as exc:
        return type(exc).__name__

T = json.loads(%(targets)r)
print(json.dumps({
    "uid": os.getuid(), "user": pwd.getpwuid(os.getuid()).pw_name, "home": os.getcwd(),
    "environ": dict(os.environ),
    "tcp": {name: tcp(port) for name, port in T["tcp"].items()},
    "unix": {path: unix(path) for path in T["unix"]},
    "read": {path: read(path) for path in T["read"]},
    "list": {path: listing(path) for path in T["list"]},
    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
}))
"""


def launch(user, product):
    order = order_place(
        membership=user.memberships.get(), product=product, spec={"profile": "h100-1g"},
        actor=Actor(user=user),
    )  # fmt: skip
    order = wait_for(order, (OrderState.ACTIVE, OrderState.FAILED))
    assert order.state == OrderState.ACTIVE, order.message
    return hub.hub_name(user.pk), f"o{order.pk}"


def signed_in(portal_url: str, user, name: str, server: str) -> requests.Session:
    """The customer's browser, without a browser: sign in to the portal, open the notebook (the
    hub signs in through the portal), keep the cookies JupyterLab would hold."""
    browser = requests.Session()
    browser.get(f"{portal_url}/accounts/login/", timeout=15)
    answer = browser.post(
        f"{portal_url}/accounts/login/",
        data={
            "login": user.email, "password": PASSWORD,
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
        headers={"Referer": f"{portal_url}/accounts/login/"}, timeout=15,
    )  # fmt: skip
    assert answer.ok and "/accounts/login/" not in answer.url, answer.url
    lab = browser.get(hub.server_url(name, server), timeout=60)
    assert lab.ok and f"/user/{name}/{server}/lab" in lab.url, lab.url
    return browser


def run_in_kernel(browser: requests.Session, name: str, server: str, code: str) -> dict:
    """Start a kernel through the server's REST API and execute `code` over its websocket,
    with the customer's cookies."""
    base = f"{settings.JUPYTERHUB_URL}/user/{name}/{server}"
    prefix = f"/user/{name}/{server}"
    xsrf = next(c.value for c in browser.cookies if c.name == "_xsrf" and c.path.startswith(prefix))
    kernel = browser.post(f"{base}/api/kernels", headers={"X-XSRFToken": xsrf}, json={}, timeout=60)
    assert kernel.status_code == 201, kernel.text
    cookie = "; ".join(
        f"{c.name}={c.value}"
        for c in browser.cookies
        if prefix.startswith(c.path.rstrip("/")) or c.path.startswith(prefix)
    )
    ws_url = base.replace("http", "ws", 1) + f"/api/kernels/{kernel.json()['id']}/channels"
    msg_id = uuid.uuid4().hex
    request = {
        "header": {
            "msg_id": msg_id, "msg_type": "execute_request", "username": name,
            "session": uuid.uuid4().hex, "version": "5.3",
        },
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False},
    }  # fmt: skip
    output = []
    with connect(
        ws_url + f"?_xsrf={xsrf}", additional_headers={"Cookie": cookie}, open_timeout=30
    ) as socket:
        socket.send(json.dumps(request))
        while True:
            message = json.loads(socket.recv(timeout=60))
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if message["msg_type"] == "stream":
                output.append(message["content"]["text"])
            if message["msg_type"] == "error":
                raise AssertionError("\n".join(message["content"]["traceback"]))
            # The output comes on iopub, the reply on shell, in no fixed order between them:
            # iopub's "idle" for this request is what says all its output has been sent.
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
    return json.loads("".join(output))


def route_port(hub_process, name: str, server: str) -> int:
    """Where the proxy sends a server's traffic: the port a neighbour would try."""
    config = hub_process.config
    routes = requests.get(
        f"http://127.0.0.1:{config['proxy_api_port']}/api/routes",
        headers={"Authorization": f"token {config['token']}-proxy"},
        timeout=10,
    ).json()
    return urlsplit(routes[f"/user/{name}/{server}"]["target"]).port


def socket_target(url: str) -> tuple[str | None, int | None]:
    """(Unix socket path, TCP port) of a database or Redis URL."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path, None
    host = parts.hostname or ""
    if host.startswith("/") or not host:  # PostgreSQL over a socket directory
        directory = re.search(r"host=([^&]+)", parts.query)
        path = host or (directory and directory[1]) or "/run/postgresql"
        return f"{path}/.s.PGSQL.{parts.port or 5432}", None
    return None, parts.port or {"redis": 6379, "postgres": 5432}.get(parts.scheme.split("+")[0])


def test_a_notebook_runs_as_its_customer_and_reaches_nothing_of_the_platform(
    jupyterhub, live_stack
):
    h100_node()
    product = product_upsert(slug="notebook", name="Notebook", kind="notebook", summary="-")
    alice, bob = customer(), customer()
    name, server = launch(alice, product)
    neighbour, neighbour_server = launch(bob, product)
    config = jupyterhub.config
    prefix, homes = config["account_prefix"], Path(config["homes"])
    neighbour_home = homes / sandbox.account_name(prefix, neighbour)
    (neighbour_home / "secret.txt").write_text("bob's work")

    db_socket, db_port = socket_target(live_stack.env["DATABASE_URL"])
    redis_socket, redis_port = socket_target(live_stack.env["REDIS_URL"])
    tcp = {
        "hub api": config["internal_port"],
        "portal": urlsplit(live_stack.url).port,
        "localstripe": urlsplit(live_stack.env["STRIPE_API_BASE"]).port,
        "hub proxy api": config["proxy_api_port"],
        "neighbour's server": route_port(jupyterhub, neighbour, neighbour_server),
    }
    tcp.update({"database": db_port} if db_port else {})
    tcp.update({"redis": redis_port} if redis_port else {})
    unix_sockets = [path for path in (db_socket, redis_socket) if path]
    unix_sockets += [str(p) for p in Path("/run/postgresql").glob(".s.PGSQL.*")]
    hub_pid = jupyterhub.process.pid
    targets = {
        "tcp": tcp,
        "unix": unix_sockets,
        "read": [
            f"/proc/{hub_pid}/environ", str(Path(config["data"]) / "hub-config.json"),
            str(neighbour_home / "secret.txt"),
        ],
        "list": [str(neighbour_home), str(homes), config["data"]],
    }  # fmt: skip

    browser = signed_in(live_stack.url, alice, name, server)
    seen = run_in_kernel(browser, name, server, PROBE % {"targets": json.dumps(targets)})

    account = sandbox.account_name(prefix, name)
    assert seen["uid"] != 0 and seen["user"] == account
    assert seen["home"] == str(homes / account)
    assert seen["tcp"].pop("hub api") == "connected"  # what the server needs, and only that
    assert set(seen["tcp"].values()) == {"ConnectionRefusedError"}, seen["tcp"]
    assert unix_sockets and set(seen["unix"].values()) <= {
        "FileNotFoundError", "PermissionError", "ConnectionRefusedError",
    }, seen["unix"]  # fmt: skip
    assert set(seen["read"].values()) <= {"PermissionError", "FileNotFoundError"}, seen["read"]
    assert set(seen["list"].values()) <= {"PermissionError", "FileNotFoundError"}, seen["list"]
    assert hub_pid not in seen["pids"]  # other accounts' processes are invisible

    secrets = [
        config["token"], config["client_secret"], settings.STRIPE_SECRET_KEY,
        live_stack.env["DATABASE_URL"], live_stack.env["REDIS_URL"],
    ]  # fmt: skip
    environ = json.dumps(seen["environ"])
    assert not [secret for secret in secrets if secret in environ]
    # Nor in the hub's own environment, or any process of the customer's account (as root).
    accounts = {account, sandbox.account_name(prefix, neighbour)}
    processes = [psutil.Process(hub_pid)] + [
        process for process in psutil.process_iter(["username"])
        if process.info["username"] in accounts
    ]  # fmt: skip
    assert len(processes) >= 3  # the hub, two servers (and alice's kernel)
    for process in processes:
        environ = "\n".join(f"{k}={v}" for k, v in process.environ().items())
        assert not [secret for secret in secrets if secret in environ], process
