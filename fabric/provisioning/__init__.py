"""The provisioning network: dnsmasq's configuration (DHCP reservations, the iPXE chain) and
each server's iPXE script, rendered from typed, validated values. Nothing here reads the
database: `fabric.services.provisioning` gathers the inventory and passes it in, and the
`provisioning_dnsmasq` command runs dnsmasq. See docs/networks.md."""
