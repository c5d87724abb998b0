"""The token gateway: an OpenAI-compatible API sold per token (keys, limits, metering, the
ASGI app in front of the model backends)."""
