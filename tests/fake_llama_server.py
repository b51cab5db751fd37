"""A stand-in for llama-server in tests/test_bench_llama_server.py: the same
command line (the options it needs), /health and /completion with a response
shaped like llama-server's, so that the bench's process handling and parsing are
tested without building llama.cpp. Not a model: its "generation" counts up from
the prompt's last token id.

FAKE_LLAMA_SERVER_FAIL=1 makes it fail as a server that cannot load its model."""

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def completion(body: dict, speculative: bool) -> dict:
    prompt, n = body["prompt"], body["n_predict"]
    tokens = [prompt[-1] + 1 + i for i in range(n)]
    timings = {"prompt_n": len(prompt), "prompt_ms": 5.0, "predicted_n": n, "predicted_ms": 20.0}
    if speculative:
        timings.update(draft_n=6, draft_n_accepted=4)
    return {"tokens": tokens, "stop_type": "limit", "tokens_evaluated": len(prompt), "timings": timings}


def handler(speculative: bool):
    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, obj: dict) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._send(200 if self.path == "/health" else 404, {"status": "ok"})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self._send(200, completion(body, speculative))

        def log_message(self, *args):  # the bench keeps the server's log; nothing to add
            pass

    return Handler


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int)
    ap.add_argument("--version", action="store_true")
    args, rest = ap.parse_known_args()
    if args.version:
        print("version: 1 (fake)", file=sys.stderr)
        return 0
    if os.environ.get("FAKE_LLAMA_SERVER_FAIL"):
        print("error: failed to load model", file=sys.stderr)
        return 1
    speculative = "--spec-type" in rest or "--spec-default" in rest
    HTTPServer(("127.0.0.1", args.port), handler(speculative)).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
