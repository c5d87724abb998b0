"""Operator pages of the fabric: the inventory and its spreadsheets."""
