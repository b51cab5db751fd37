"""Client errors of the HTTP server answered with HTTP 400, not 500.

llama-cpp-python's server wraps every route in `RouteErrorHandler`, which turns
any exception into HTTP 500 with the exception's text: for a request the client
got wrong (a field of the wrong type or out of range) that text is pydantic's
dump plus a stack excerpt with file paths, and for malformed JSON the handler
itself fails (it re-reads the body as JSON) and the client gets a bare 500.

Two pieces fix that without touching llama-cpp-python's routes:

- `RequestCheck`, an ASGI middleware, reads the body of a POST to a route
  whose request model it knows, checks it is JSON and validates it with that
  model (llama-cpp-python's own pydantic types), and answers a bad one itself:
  400 with an OpenAI-shaped body naming the field. Good requests go on with
  the body replayed.
- `ClientError` (an HTTPException, which the route wrapper lets through) is
  what the served `Llama` raises for arguments it refuses (ValueError,
  TypeError, NotImplementedError); `install` registers its 400 answer.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Tuple

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from llama_cpp.server import types as _types
from pydantic import ValidationError
from starlette.middleware import Middleware

__all__ = ["ClientError", "RequestCheck", "error_body", "install"]

# the request model of each POST route of llama_cpp.server.app
_BODY_MODELS: Dict[str, type] = {
    "/v1/completions": _types.CreateCompletionRequest,
    "/v1/engines/copilot-codex/completions": _types.CreateCompletionRequest,
    "/v1/chat/completions": _types.CreateChatCompletionRequest,
    "/v1/embeddings": _types.CreateEmbeddingRequest,
    "/extras/tokenize": _types.TokenizeInputRequest,
    "/extras/tokenize/count": _types.TokenizeInputRequest,
    "/extras/detokenize": _types.DetokenizeInputRequest,
}
_MAX_BODY = 64 << 20  # a request body larger than this is refused (413), not buffered


def error_body(message: str, param: Optional[str] = None, code: Optional[str] = None) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


class ClientError(HTTPException):
    """A request the model refuses: answered 400 with an OpenAI-shaped body."""

    def __init__(self, message: str, param: Optional[str] = None):
        super().__init__(status_code=400, detail=message)
        self.message, self.param = message, param


def _validation_message(err: ValidationError) -> Tuple[str, Optional[str]]:
    """`field: what is wrong` for each problem, and the first field's name."""
    lines, param = [], None
    for e in err.errors(include_url=False):
        # loc[0] is the field; members of a union add their type name after it,
        # which says nothing to the client (('prompt', 'str'), ('prompt', 'list[str]'))
        field = str(e["loc"][0]) if e.get("loc") else None
        param = param or field
        lines.append(f"{field or 'request body'}: {e.get('msg', 'invalid value')}")
    return "; ".join(dict.fromkeys(lines)) or "invalid request", param


def check_body(model: type, body: bytes) -> Optional[Tuple[int, dict]]:
    """None if `body` is a valid request for `model`, else (status, error body)."""
    try:
        fields = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        return 400, error_body(f"the request body is not valid JSON: {e}")
    if not isinstance(fields, dict):
        return 400, error_body(f"the request body must be a JSON object, not {type(fields).__name__}")
    try:
        model.model_validate(fields)
    except ValidationError as e:
        message, param = _validation_message(e)
        return 400, error_body(message, param)
    return None


class RequestCheck:
    """ASGI middleware: validate the JSON body of known POST routes first."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        model = _BODY_MODELS.get(scope.get("path", "")) if scope["type"] == "http" else None
        if model is None or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > _MAX_BODY:
                return await JSONResponse(error_body("the request body is too large"), 413)(scope, receive, send)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = check_body(model, body)
        if problem is not None:
            return await JSONResponse(problem[1], problem[0])(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # e.g. a streaming response listening for disconnect

        await self.app(scope, replay, send)


async def _client_error_answer(request: Any, exc: ClientError) -> JSONResponse:
    return JSONResponse(error_body(exc.message, exc.param), status_code=400)


def install(app) -> None:
    """Add the body check and the 400 answer for ClientError to a FastAPI app."""
    # innermost of the app's middleware (appended, not add_middleware's
    # outermost): a 400 still passes through llama-cpp-python's CORS middleware
    if app.middleware_stack is not None:
        raise RuntimeError("install() must run before the app serves its first request")
    app.user_middleware.append(Middleware(RequestCheck))
    app.add_exception_handler(ClientError, _client_error_answer)
