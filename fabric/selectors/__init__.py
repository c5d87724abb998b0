"""The fabric's read side: the inventory and capacity (availability, allocations, bookings).
Other apps read the fabric through these."""
