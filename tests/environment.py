"""The test run's environment, set before Django's settings load (a `-p` plugin in pyproject's
pytest options: pytest-django imports the settings before any conftest).

The suite runs under the development defaults (DEBUG on: plain-HTTP cookies, no HTTPS
redirect) with secrets of its own, random for each run unless the environment names them
(`make test` passes the install's development ones). Processes the tests start (the live stack,
the hub) inherit them, so all of them sign and encrypt with the same keys.
"""

import base64
import os
import secrets

os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault(
    "STOREFRONT_SECRETS_KEYS", base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
)
