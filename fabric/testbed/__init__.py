"""Test beds and demo data, kept apart from the production code: FakeNOS switches over SSH
(``switches``, ``fakenos_peer``), the sushy-tools Redfish emulator (``bmcs``), a lab inventory
(``inventory``), tenant networks built in Linux namespaces (``linux``), the GPU servers as
namespaces powered by their emulated BMCs (``servers``) and a demo fleet (``fleet``).
docs/lab.md describes the lab."""
