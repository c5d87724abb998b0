"""Which upstreams serve each public model name (settings.INFERENCE_MODELS), and which of them
are healthy: an upstream that fails is skipped for a while; a probe puts it back."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.conf import settings

DOWN_SECONDS = 15.0


@dataclass
class Model:
    name: str
    kind: str  # "chat" (chat and text completions) or "embeddings"
    upstreams: list[str]
    down_until: dict[str, float] = field(default_factory=dict)

    def candidates(self) -> list[str]:
        """Healthy upstreams first, in their configured order; the others last (a try beats
        refusing when every upstream is marked down)."""
        now = time.monotonic()
        up = [u for u in self.upstreams if self.down_until.get(u, 0) <= now]
        return up + [u for u in self.upstreams if u not in up]

    def mark_down(self, upstream: str) -> None:
        self.down_until[upstream] = time.monotonic() + DOWN_SECONDS

    def mark_up(self, upstream: str) -> None:
        self.down_until.pop(upstream, None)


class Registry:
    def __init__(self, models: dict | None = None) -> None:
        models = settings.INFERENCE_MODELS if models is None else models
        self.models = {
            name: Model(
                name=name, kind=spec["kind"], upstreams=[u.rstrip("/") for u in spec["upstreams"]]
            )
            for name, spec in models.items()
        }

    def get(self, name: str) -> Model | None:
        return self.models.get(name)

    async def probe(self, client) -> dict[str, bool]:
        """GET <upstream>/models on every upstream; returns which answered."""
        results = {}
        for model in self.models.values():
            for upstream in model.upstreams:
                try:
                    ok = (await client.get(f"{upstream}/models", timeout=2)).status_code == 200
                except Exception:
                    ok = False
                (model.mark_up if ok else model.mark_down)(upstream)
                results[upstream] = ok
        return results
