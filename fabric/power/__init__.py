"""Power drivers: how the platform switches servers on and off through their BMCs (one module
per protocol, chosen by Bmc.driver, like MAAS's power drivers)."""
