"""A lean HTTP/1.1 load generator for the benchmarks: one keep-alive connection per simulated
client, requests written by hand and answers parsed just enough (status, headers, body). It
costs a fraction of what a full client (httpx) does per request, so on a two-core machine the
server under test, not the load generator, runs out first."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit


class Connection:
    """One keep-alive connection to `base` (http://host:port); `call` sends a request and returns
    (status, body)."""

    def __init__(self, base: str, headers: dict | None = None):
        parts = urlsplit(base)
        self.host, self.port, self.netloc = parts.hostname, parts.port, parts.netloc
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    def prepare(self, method: str, path: str, body: dict | bytes | None = None) -> bytes:
        """The bytes of a request, built once for requests sent many times."""
        data = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.netloc}\r\n{self.headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        return head.encode() + data

    async def send(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        try:
            return await self._exchange(request)
        except (ConnectionError, asyncio.IncompleteReadError, IndexError, ValueError):
            self.close()  # the server closed a kept-alive connection: one more try, fresh
            await self.open()
            return await self._exchange(request)

    async def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        return await self.send(self.prepare(method, path, body))

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        reader, writer = self.reader, self.writer
        writer.write(request)
        status = int((await reader.readline()).split()[1])
        length, chunked, close = 0, False, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name = name.lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and "close" in value.lower():
                close = True
        if chunked:
            parts = []
            while (size := int((await reader.readline()).strip(), 16)) != 0:
                parts.append((await reader.readexactly(size + 2))[:-2])
            await reader.readline()
            body = b"".join(parts)
        else:
            body = await reader.readexactly(length)
        if close:
            self.close()
        return status, body


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
