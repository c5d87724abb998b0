"""Run JupyterHub for `make run`: its OAuth application in the portal (a fresh client secret
each start), then the hub itself (deploy/jupyterhub/jupyterhub_config.py), until Ctrl-C."""

import os
import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog.notebooks import runner
from catalog.notebooks.oauth import hub_application_ensure


class Command(BaseCommand):
    help = "Start JupyterHub signed in through this portal."

    def add_arguments(self, parser):
        parser.add_argument(
            "--portal", default=f"http://127.0.0.1:{os.environ.get('WEB_PORT', '8000')}"
        )

    def handle(self, *args, portal, **options):
        if not settings.JUPYTERHUB_API_TOKEN:
            raise CommandError("Set JUPYTERHUB_API_TOKEN (make run sets a random one).")
        url = settings.JUPYTERHUB_URL
        client_id, secret = hub_application_ensure(redirect_uri=f"{url}/hub/oauth_callback")
        data = Path(settings.BASE_DIR) / "var" / "jupyterhub"
        config = runner.hub_config(
            url=url,
            portal_url=portal,
            token=settings.JUPYTERHUB_API_TOKEN,
            client_id=client_id,
            client_secret=secret,
            data=data,
            account_prefix=os.environ.get("STOREFRONT_NOTEBOOK_ACCOUNT_PREFIX", "sfnb"),
        )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        data.mkdir(parents=True, exist_ok=True)
        hub = runner.start(config=config, log=data / "jupyterhub.log")
        self.stdout.write(f"JupyterHub up: {url} (log: {data / 'jupyterhub.log'})")
        self.stdout.flush()
        try:
            stop.wait()
        finally:
            hub.stop()
