"""The OpenAI-compatible token gateway: a plain ASGI app in front of the model backends, mounted
at /v1 by portal.asgi and served by the same web server. Per request: the key from a local cache
(the database only on a miss), limits and budget reserved in Redis by one script, the request
forwarded with aiohttp (a stream with httpx, passed through chunk by chunk), the reservation
settled to what the backend says it used, and the usage queued for the ledger. Errors come in
OpenAI's shape."""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid

import aiohttp
import httpx
from asgiref.sync import sync_to_async

from catalog.gateway import limits
from catalog.gateway.keys import KeyInfo, inference_key_lookup
from catalog.gateway.registry import Registry

MAX_BODY = 1 << 20
DEFAULT_MAX_TOKENS = 256
PROBE_SECONDS = 10.0
LOCAL_SECONDS = 2.0
MAX_LOCAL_KEYS = 10_000  # how long this process trusts a key it looked up (revocation: at most)
ENDPOINTS = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "chat",
    "/v1/embeddings": "embeddings",
}


class Refusal(Exception):
    def __init__(self, status: int, message: str, kind: str, code: str | None, headers=()):
        super().__init__(message)
        self.status, self.kind, self.code, self.headers = status, kind, code, list(headers)

    def body(self) -> bytes:
        error = {"message": str(self), "type": self.kind, "param": None, "code": self.code}
        return json.dumps({"error": error}).encode()


def _estimate_prompt_tokens(body: dict) -> int:
    """An upper-leaning estimate for the reservation (settled to the real count after)."""
    if "messages" in body:
        text = "".join(str(m.get("content", "")) for m in body["messages"])
        return len(text) // 3 + 8 * len(body["messages"]) + 8
    prompt = body.get("prompt", body.get("input", ""))
    parts = prompt if isinstance(prompt, list) else [prompt]
    return sum(len(str(p)) // 3 + 4 for p in parts)


class Gateway:
    def __init__(self) -> None:
        self.registry = Registry()
        self.keys: dict[str, tuple[KeyInfo | None, float]] = {}
        self.prices: dict[str, tuple[tuple[float, float], float]] = {}
        self.clients: dict = {}
        self.sessions: dict = {}
        self.probed = 0.0
        self.background: set = set()

    # --- plumbing -----------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if loop not in self.clients:
            limits_ = httpx.Limits(max_connections=200, max_keepalive_connections=50)
            self.clients[loop] = httpx.AsyncClient(
                timeout=httpx.Timeout(300, connect=3), limits=limits_
            )
        return self.clients[loop]

    def _session(self) -> aiohttp.ClientSession:
        """The client for answers read whole: aiohttp, whose connection pool costs a fraction
        of httpx's per request (bench/gateway.py); streams and probes go through httpx."""
        loop = asyncio.get_running_loop()
        if loop not in self.sessions:
            self.sessions[loop] = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=300, connect=3),
                connector=aiohttp.TCPConnector(limit=200),
            )
        return self.sessions[loop]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        started = time.time()
        try:
            await self._route(scope, receive, send, started)
        except Refusal as refusal:
            await _respond(send, refusal.status, refusal.body(), refusal.headers)

    def _maybe_probe(self) -> None:
        """Health checks ride on traffic: every PROBE_SECONDS a request starts a probe of the
        upstreams in the background (a down one comes back once it answers)."""
        if time.monotonic() - self.probed > PROBE_SECONDS:
            self.probed = time.monotonic()
            task = asyncio.create_task(self.registry.probe(self._client()))
            self.background.add(task)
            task.add_done_callback(self.background.discard)

    async def _route(self, scope, receive, send, started: float) -> None:
        self._maybe_probe()
        key = await self._authenticate(scope)
        path, method = scope["path"].rstrip("/"), scope["method"]
        if path == "/v1/models" and method == "GET":
            models = [
                {"id": name, "object": "model", "created": 0, "owned_by": "storefront"}
                for name in self.registry.models
                if key.allows(name)
            ]
            await _respond(send, 200, json.dumps({"object": "list", "data": models}).encode())
            return
        if path not in ENDPOINTS or method != "POST":
            raise Refusal(404, f"Unknown endpoint {method} {path}.", "invalid_request_error", None)
        body = await _read_json(receive)
        await self._proxy(scope, receive, send, key, path, body, started)

    async def _authenticate(self, scope) -> KeyInfo:
        header = dict(scope["headers"]).get(b"authorization", b"").decode(errors="replace")
        secret = header[7:].strip() if header.lower().startswith("bearer ") else ""
        cached = self.keys.get(secret)
        if cached is not None and cached[1] > time.monotonic():
            info = cached[0]
        else:
            info = await sync_to_async(inference_key_lookup)(secret) if secret else None
            if len(self.keys) > MAX_LOCAL_KEYS:  # bounded, whatever strangers send
                self.keys.clear()
            self.keys[secret] = (info, time.monotonic() + LOCAL_SECONDS)
        if info is None:
            raise Refusal(
                401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
        if info.expired(time.time()):
            raise Refusal(
                401, "This API key has expired.", "invalid_request_error", "expired_api_key"
            )
        return info

    async def _price(self, model: str) -> tuple[float, float]:
        """Micro-dollars per input and per output token (= dollars per million tokens)."""
        cached = self.prices.get(model)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        prices = await sync_to_async(_prices)(model)
        self.prices[model] = (prices, time.monotonic() + 60)
        return prices

    # --- forwarding ---------------------------------------------------------------------------

    async def _proxy(self, scope, receive, send, key: KeyInfo, path, body, started) -> None:
        name = body.get("model")
        model = self.registry.get(name) if isinstance(name, str) else None
        if model is None or not key.allows(name) or model.kind != ENDPOINTS[path]:
            raise Refusal(
                404,
                f"The model `{name}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            )
        price_in, price_out = await self._price(name)
        prompt = _estimate_prompt_tokens(body)
        most = (
            0
            if model.kind == "embeddings"
            else int(
                body.get("max_tokens") or body.get("max_completion_tokens") or DEFAULT_MAX_TOKENS
            )
        )
        reserved_cost = math.ceil(prompt * price_in + most * price_out)
        decision, minute = await limits.take_async(
            key_id=key.id,
            organization_id=key.organization_id,
            rpm=key.rpm,
            tpm=key.tpm,
            tokens=prompt + most,
            cost_micro=reserved_cost,
            budget_micro=_micro(key.monthly_budget),
        )
        headers = _rate_headers(key, decision, max(price_in, price_out))
        if not decision.allowed:
            raise _refusal_for(decision, headers)
        request_id = uuid.uuid4().hex
        stream = bool(body.get("stream")) and model.kind == "chat"
        used = {"input": 0, "output": 0}
        try:
            if stream:
                await self._stream(receive, send, model, path, body, headers, used)
            else:
                await self._once(send, model, path, body, headers, used)
        finally:
            cost = math.ceil(used["input"] * price_in + used["output"] * price_out)
            record = None
            if used["input"] or used["output"]:
                record = {
                    "id": request_id,
                    "organization": key.organization_id,
                    "key": key.prefix,
                    "model": name,
                    "input": used["input"],
                    "output": used["output"],
                    "started": started,
                    "ended": time.time(),
                }
            await limits.settle_async(
                key_id=key.id,
                organization_id=key.organization_id,
                minute=minute,
                tokens=used["input"] + used["output"] - prompt - most,
                cost_micro=cost - reserved_cost,
                usage=record,
            )

    async def _once(self, send, model, path, body, headers, used) -> None:
        suffix = path.removeprefix("/v1")
        for upstream in model.candidates():
            try:
                async with self._session().post(upstream + suffix, json=body) as answer:
                    status, content = answer.status, await answer.read()
            except (aiohttp.ClientError, TimeoutError):
                model.mark_down(upstream)
                continue
            if status >= 500:
                model.mark_down(upstream)
                continue
            if status == 200:
                usage = json.loads(content).get("usage") or {}
                used["input"] = int(usage.get("prompt_tokens") or 0)
                used["output"] = int(usage.get("completion_tokens") or 0)
            await _respond(send, status, content, headers)
            return
        raise Refusal(
            502, "The model backend is unavailable; try again.", "api_error", None, headers
        )

    async def _stream(self, receive, send, model, path, body, headers, used) -> None:
        asked = bool((body.get("stream_options") or {}).get("include_usage"))
        upstream_body = {**body, "stream_options": {"include_usage": True}}
        suffix = path.removeprefix("/v1")
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, gone))
        try:
            for upstream in model.candidates():
                try:
                    async with self._client().stream(
                        "POST", upstream + suffix, json=upstream_body
                    ) as answer:
                        if answer.status_code >= 500:
                            model.mark_down(upstream)
                            continue
                        if answer.status_code != 200:
                            await _respond(send, answer.status_code, await answer.aread(), headers)
                            return
                        last = await self._relay(send, answer, headers, asked, used, gone)
                        if gone.is_set():
                            used["input"] = used["input"] or await self._count(
                                upstream, suffix, body
                            )
                            return
                        if not used["input"]:  # the backend sent no usage: count, then tell
                            used["input"] = await self._count(upstream, suffix, body)
                            if asked:
                                await _event(send, json.dumps(_usage_chunk(last, used)))
                        await _event(send, "[DONE]")
                        await send({"type": "http.response.body", "body": b""})
                        return
                except httpx.HTTPError:
                    if used["output"]:
                        return  # broke mid-stream: what was generated is billed
                    model.mark_down(upstream)
                    continue
            raise Refusal(
                502, "The model backend is unavailable; try again.", "api_error", None, headers
            )
        finally:
            watcher.cancel()

    async def _relay(self, send, answer, headers, asked, used, gone) -> dict:
        """Pass the backend's events through until its [DONE] (held back); returns the last
        chunk. The usage chunk the gateway asked for reaches the client only if it asked."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                    *headers,
                ],
            }
        )
        final_usage, last = None, {}
        async for line in answer.aiter_lines():
            if gone.is_set():
                break  # the client left: stop generating; what was made is billed
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            if data:
                chunk = last = json.loads(data)
                if chunk.get("usage"):
                    final_usage = chunk["usage"]
                    if not chunk.get("choices"):
                        if not asked:
                            continue  # the usage chunk we asked for, not the client
                    elif not asked:
                        chunk.pop("usage")
                        data = json.dumps(chunk)
                for choice in chunk.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content") or choice.get("text")
                    if piece:
                        used["output"] += 1  # one token per chunk until the usage says
            try:
                await _event(send, data)
            except OSError:
                gone.set()
                break
        if final_usage:
            used["input"] = int(final_usage.get("prompt_tokens") or 0)
            used["output"] = int(final_usage.get("completion_tokens") or used["output"])
        return last

    async def _count(self, upstream: str, suffix: str, body: dict) -> int:
        """A backend that streams without usage (llama.cpp's server sends one token per chunk
        but ignores include_usage): its prompt count comes from the same request made once
        more without streaming, for one token — the prompt as the backend's own chat template
        and tokenizer see it."""
        probe = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        probe["max_tokens"] = 1
        try:
            reply = await self._client().post(upstream + suffix, json=probe)
            return int(reply.json()["usage"]["prompt_tokens"])
        except (httpx.HTTPError, KeyError, ValueError, TypeError):
            return _estimate_prompt_tokens(body)


def _micro(dollars: str | None) -> int | None:
    return None if dollars is None else int(float(dollars) * limits.MICRO)


def _prices(model: str) -> tuple[float, float]:
    from billing.rating import price_for

    def one(meter: str) -> float:
        try:
            price = price_for(meter, model)
        except LookupError:
            return 0.0
        return float(price.price / price.unit_quantity * limits.MICRO)

    return one("input_tokens"), one("output_tokens")


def _rate_headers(key: KeyInfo, decision, token_price: float) -> list[tuple[bytes, bytes]]:
    """OpenAI's x-ratelimit-* headers, on every answer: the key's own limits where it has
    them, else its organization's, whose remaining tokens are also capped by what the
    organization's allowance (budget or prepaid credit left) pays for at this model's dearer
    token price."""
    org_rpm, org_tpm = limits.organization_limits()
    if key.rpm:
        rpm, requests = key.rpm, decision.requests
    else:
        rpm, requests = org_rpm, decision.organization_requests
    if key.tpm:
        tpm, remaining = key.tpm, key.tpm - decision.tokens
    else:
        tpm, remaining = org_tpm, org_tpm - decision.organization_tokens
        if decision.allowance_micro is not None and token_price > 0:
            remaining = min(remaining, int(decision.allowance_micro / token_price))
    reset = f"{decision.reset_seconds}s".encode()
    return [
        (b"x-ratelimit-limit-requests", str(rpm).encode()),
        (b"x-ratelimit-remaining-requests", str(max(rpm - requests, 0)).encode()),
        (b"x-ratelimit-reset-requests", reset),
        (b"x-ratelimit-limit-tokens", str(tpm).encode()),
        (b"x-ratelimit-remaining-tokens", str(max(remaining, 0)).encode()),
        (b"x-ratelimit-reset-tokens", reset),
    ]


def _refusal_for(decision, headers) -> Refusal:
    if decision.reason in ("requests", "tokens"):
        return Refusal(
            429,
            f"Rate limit reached for {decision.reason} per minute; try again in "
            f"{decision.reset_seconds} s.",
            "requests",
            "rate_limit_exceeded",
            [*headers, (b"retry-after", str(decision.reset_seconds).encode())],
        )
    message = {
        "budget": "This key's monthly budget cannot cover the request.",
        "credit": "Your organization's remaining budget or prepaid credit cannot cover the "
        "request.",
    }.get(decision.reason, "Your organization's budget or prepaid credit is used up.")
    return Refusal(402, message, "insufficient_quota", "insufficient_quota", headers)


async def _read_json(receive) -> dict:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refusal(400, "The client went away.", "invalid_request_error", None)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise Refusal(413, "The request body is too large.", "invalid_request_error", None)
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    try:
        body = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        raise Refusal(400, "The body is not valid JSON.", "invalid_request_error", None) from None
    if not isinstance(body, dict):
        raise Refusal(400, "The body must be a JSON object.", "invalid_request_error", None)
    return body


async def _watch_disconnect(receive, gone: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


async def _event(send, data: str) -> None:
    await send(
        {"type": "http.response.body", "body": f"data: {data}\n\n".encode(), "more_body": True}
    )


def _usage_chunk(last: dict, used: dict) -> dict:
    usage = {
        "prompt_tokens": used["input"],
        "completion_tokens": used["output"],
        "total_tokens": used["input"] + used["output"],
    }
    fields = ("id", "object", "created", "model")
    return {**{k: last[k] for k in fields if k in last}, "choices": [], "usage": usage}


async def _respond(send, status: int, body: bytes, headers=()) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


application = Gateway()
