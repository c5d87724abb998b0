"""The JupyterHub REST API, as the portal's service (settings.JUPYTERHUB_URL and the shared
JUPYTERHUB_API_TOKEN). Hub user names are `u<portal user id>`: never the user's own text,
which would otherwise reach paths on the notebook host."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import requests
from django.conf import settings
from django.utils.dateparse import parse_datetime


class HubUnavailable(Exception):
    """The hub did not answer or failed on its side: try again."""


class HubRefused(Exception):
    """The hub (or its pre-spawn hook, i.e. the portal's rules) refused; the message says why."""


@dataclass(frozen=True)
class ServerState:
    exists: bool
    ready: bool
    pending: str | None
    url: str
    last_activity: datetime | None


def hub_name(user_id: int) -> str:
    return f"u{user_id}"


def _call(method: str, path: str, **kwargs) -> requests.Response:
    try:
        answer = requests.request(
            method,
            f"{settings.JUPYTERHUB_URL}/hub/api{path}",
            headers={"Authorization": f"token {settings.JUPYTERHUB_API_TOKEN}"},
            timeout=kwargs.pop("timeout", 15),
            **kwargs,
        )
    except requests.RequestException as exc:
        raise HubUnavailable(f"JupyterHub did not answer: {type(exc).__name__}") from exc
    if answer.status_code >= 500:
        raise HubUnavailable(f"JupyterHub failed ({answer.status_code}).")
    return answer


def _message(answer: requests.Response) -> str:
    try:
        return answer.json().get("message") or answer.reason
    except ValueError:
        return answer.reason


def user_ensure(name: str) -> None:
    answer = _call("POST", f"/users/{name}")
    if answer.status_code not in (201, 409):
        raise HubRefused(_message(answer))


def server_start(name: str, server: str, options: dict) -> None:
    """Ask for a named server; returns once the hub accepted (it may still be starting)."""
    answer = _call("POST", f"/users/{name}/servers/{server}", json=options, timeout=60)
    if answer.status_code in (201, 202):
        return
    if answer.status_code == 400 and "already" in _message(answer).lower():
        return  # a retried start: it runs or is pending already
    raise HubRefused(_message(answer))


def server_state(name: str, server: str) -> ServerState:
    answer = _call("GET", f"/users/{name}", params={"include_stopped_servers": "1"})
    if answer.status_code == 404:
        return ServerState(False, False, None, "", None)
    if answer.status_code != 200:
        raise HubRefused(_message(answer))
    found = answer.json().get("servers", {}).get(server)
    if not found:
        return ServerState(False, False, None, "", None)
    activity = found.get("last_activity")
    return ServerState(
        exists=True,
        ready=bool(found.get("ready")),
        pending=found.get("pending"),
        url=found.get("url") or "",
        last_activity=parse_datetime(activity) if activity else None,
    )


def server_stop(name: str, server: str) -> None:
    answer = _call("DELETE", f"/users/{name}/servers/{server}", json={"remove": True})
    if answer.status_code not in (202, 204, 404):
        if answer.status_code == 400 and "pending" in _message(answer).lower():
            raise HubUnavailable(_message(answer))  # still starting: stop it once it settles
        raise HubRefused(_message(answer))


def server_url(name: str, server: str) -> str:
    """Where the browser goes: the hub logs it in through the portal, then JupyterLab."""
    return f"{settings.JUPYTERHUB_URL}/user/{name}/{server}/lab"
