"""A fast local OpenAI-compatible upstream for the gateway benchmark: answers every chat
completion at once with a fixed reply and its usage (served by uvicorn, one worker)."""

import json

REPLY = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "fast",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
}).encode()  # fmt: skip
MODELS = json.dumps({"object": "list", "data": [{"id": "fast", "object": "model"}]}).encode()


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = MODELS if scope["path"].endswith("/models") else REPLY
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
