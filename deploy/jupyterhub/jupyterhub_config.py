"""JupyterHub for the storefront. The portal is the identity provider (OAuth2 through
django-oauth-toolkit, auto-login: a signed-in portal user lands in the notebook without a
second login), the portal is a service with a scoped token that creates users and starts named
servers by REST, and the pre-spawn hook asks the portal whether each start is allowed (quota,
budget, a launch the portal made), so the hub's own UI cannot go around the rules.

Locally (make run, tests) servers are local processes behind configurable-http-proxy from npm,
each user's as their own unprivileged account in a sandbox (catalog/notebooks/sandbox.py):
the hub runs as root, its servers never do. Production: see the KubeSpawner block at the end.
Everything comes from the root-only file that catalog/notebooks/runner.py writes; the hub's
environment holds no secret, so nothing it spawns inherits one."""

import json
import os
import urllib.request
from pathlib import Path

from tornado import web

from catalog.notebooks import sandbox

with open(os.environ["STOREFRONT_HUB_CONFIG"]) as config_file:
    conf = json.load(config_file)
c = get_config()  # noqa: F821  (JupyterHub's config loader provides it)

PORTAL = conf["portal_url"].rstrip("/")
PORTAL_PUBLIC = conf.get("portal_public_url", PORTAL).rstrip("/")
TOKEN = conf["token"]
DATA = conf["data"]
PREFIX = conf["account_prefix"]
HOMES = Path(conf["homes"])

c.JupyterHub.bind_url = conf["url"]
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{conf['internal_port']}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{conf['proxy_api_port']}"
c.ConfigurableHTTPProxy.command = [conf["chp"]]
c.ConfigurableHTTPProxy.auth_token = TOKEN + "-proxy"
c.JupyterHub.db_url = f"sqlite:///{DATA}/jupyterhub.sqlite"  # the hub's own state
c.JupyterHub.cookie_secret_file = f"{DATA}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = f"{DATA}/jupyterhub.pid"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 5

# --- identity: the portal ----------------------------------------------------------------------
c.JupyterHub.authenticator_class = "generic-oauth"
c.GenericOAuthenticator.client_id = conf["client_id"]
c.GenericOAuthenticator.client_secret = conf["client_secret"]
c.GenericOAuthenticator.oauth_callback_url = conf["url"] + "/hub/oauth_callback"
c.GenericOAuthenticator.authorize_url = f"{PORTAL_PUBLIC}/oauth/authorize/"
c.GenericOAuthenticator.token_url = f"{PORTAL}/oauth/token/"
c.GenericOAuthenticator.userdata_url = f"{PORTAL}/oauth/userinfo/"
c.GenericOAuthenticator.username_claim = "username"
c.GenericOAuthenticator.scope = ["read"]
c.GenericOAuthenticator.login_service = "GPU Storefront"
c.GenericOAuthenticator.allow_all = True  # who may start what is the pre-spawn hook's call
c.Authenticator.auto_login = True

# --- the portal as a service --------------------------------------------------------------------
c.JupyterHub.services = [{"name": "storefront", "api_token": TOKEN}]
c.JupyterHub.load_roles = [
    {
        "name": "storefront",
        "services": ["storefront"],
        "scopes": [
            "admin:users",
            "admin:servers",
            "access:servers",
            "list:users",
            "read:users:activity",
            "read:servers",
        ],
    },
    # Users open their own servers; starting them goes through the pre-spawn hook.
    {"name": "user", "scopes": ["self"]},
]

# --- local servers, each in its user's sandbox ---------------------------------------------------
# The spawner starts the launcher as root in a private mount namespace; the launcher hides the
# platform's files and sockets, drops to the user's account and runs the notebook environment's
# jupyterhub-singleuser (catalog/notebooks/sandbox.py). Environment: only JUPYTERHUB_* and the
# portal's decision (the GPU) pass.
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = f"{HOMES}/{PREFIX}-{{username}}"
masks = [word for path in conf["masks"] for word in ("--mask", path)]
c.Spawner.cmd = [
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "--",
    *conf["launcher"],
    "--prefix",
    PREFIX,
    *masks,
    "--",
    conf["singleuser"],
]
# Kernels talk to their server over Unix sockets in the user's home, not loopback TCP (which the
# sandbox's firewall closes, and where any local process could knock on them).
c.Spawner.args = ["--KernelManager.transport=ipc"]
c.Spawner.env_keep = ["LANG", "LC_ALL"]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60


def ask_portal(spawner):
    """The portal decides: a start it did not launch, or over quota or budget, is refused
    with the portal's message; an allowed one gets the GPU the portal allocated."""
    body = json.dumps(
        {
            "user": spawner.user.name,
            "server": spawner.name,
            "user_options": spawner.user_options or {},
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310  (the portal URL from our own config)
        f"{PORTAL}/api/v1/notebooks/admission/",
        data=body,
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            decision = json.load(answer)
    except urllib.error.HTTPError as refused:
        try:
            message = json.load(refused).get("message", "")
        except ValueError:
            message = ""
        raise web.HTTPError(403, message or "The storefront refused this start.") from refused
    except OSError as exc:
        raise web.HTTPError(503, "The storefront could not be asked; try again.") from exc
    spawner.environment.update(decision.get("environment", {}))
    sandbox.account_ensure(prefix=PREFIX, hub_user=spawner.user.name, homes=HOMES)


c.Spawner.pre_spawn_hook = ask_portal

# --- production ---------------------------------------------------------------------------------
# With Kubernetes, replace the local block by KubeSpawner and put the GPU in the pod:
#
#   c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
#   c.KubeSpawner.image = "quay.io/jupyter/pytorch-notebook:cuda12-latest"
#   c.KubeSpawner.extra_resource_limits = {"nvidia.com/gpu": "1"}  # or a MIG profile such as
#   #   "nvidia.com/mig-1g.10gb": "1", chosen from user_options["profile"] in the hook
#   c.KubeSpawner.node_selector = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
#
# The pre-spawn hook stays: the portal still allocates and decides.
