"""The write path of the portal app, one module per idea; import from the module."""
