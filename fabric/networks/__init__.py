"""Tenant networks: intent (what a tenant's network is), plans (exact commands per switch),
drivers (one per vendor) and the push that applies a plan and undoes it on failure."""
