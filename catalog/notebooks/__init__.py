"""Notebooks through JupyterHub: the hub's REST client, starting the hub for `make run` and
the tests, the OAuth application it signs users in with, and the portal's admission rules."""
