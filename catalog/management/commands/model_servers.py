"""Run the model backends for `make run`: SmolLM2 (llama.cpp's OpenAI server) and MiniLM
embeddings, on the ports INFERENCE_MODELS names, until Ctrl-C."""

import signal
import threading
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand

from catalog.gateway.backends import runner
from portal import stack


def _port(kind: str) -> int:
    spec = next(m for m in settings.INFERENCE_MODELS.values() if m["kind"] == kind)
    return urlsplit(spec["upstreams"][0]).port


class Command(BaseCommand):
    help = "Start the chat and embedding model servers the token gateway sends to."

    def handle(self, *args, **options):
        logs = Path(settings.BASE_DIR) / "var" / "models"
        logs.mkdir(parents=True, exist_ok=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        chat = runner.start_chat(port=_port("chat"), log=logs / "chat.log")
        embeddings = runner.start_embeddings(port=_port("embeddings"), log=logs / "embeddings.log")
        self.stdout.write(
            f"model servers up: chat :{_port('chat')}, embeddings :{_port('embeddings')}"
        )
        self.stdout.flush()
        try:
            stop.wait()
        finally:
            for process in (chat, embeddings):
                stack.stop(process)
