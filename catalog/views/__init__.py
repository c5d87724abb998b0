"""The catalog's pages and endpoints for browsers and JupyterHub, one module per area."""
