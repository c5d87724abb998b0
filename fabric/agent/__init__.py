"""The node agent: a standalone program run on each GPU server. It reads the GPUs (NVML) and
network interfaces (sysfs), and posts what it found to the portal, which compares it with the
inventory. It is copied onto servers, so it imports only the standard library and, lazily,
`pynvml`; nothing from Django or the rest of this project."""

AGENT_VERSION = "1.0"
