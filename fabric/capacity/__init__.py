"""Capacity: an in-memory placement engine (engine.py) over a snapshot the database fills
(loader.py); services in fabric/services/capacity.py commit its decisions."""
