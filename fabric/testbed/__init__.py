"""Test-bed peers that speak real protocols: FakeNOS switches over SSH (``switches``)."""
