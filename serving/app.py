"""HTTP API over :class:`serving.recommend.RunRecommender` (FastAPI); start it with ``python -m serving.recommend_server``.

Endpoints (JSON in and out):

* ``GET /health`` -> ``{"status": "ok", "run_id", "n_users", "n_items"}``
* ``GET /model`` -> run and dataset metadata, validation/evaluation metrics, request limits, the fold-in rule
* ``GET /users/{user_id}/recommendations?k=10&exclude_seen=true`` -> top-K for a known user (external id)
* ``POST /recommendations/batch`` ``{"users": [...], "k": 10, "exclude_seen": true}`` -> one list per user
* ``POST /recommendations/fold-in`` ``{"items": [...], "k": 10}`` -> top-K for a new user from an item history

Every item in an answer carries ``item_id, title, year, genres, score``, best first. Bad input never reaches the
ranking code: unknown ids, K out of range and malformed bodies are answered with 4xx and ``{"detail": message}``
naming the bad value (404 for an unknown user in the path, 422 otherwise). A body larger than
``limits.max_body_bytes`` is answered with 413 before anything parses it, whether it declares its size
(Content-Length) or arrives chunked (`BodySizeLimit`). Handlers are plain functions, so FastAPI
runs them in its thread pool and a ranking in progress does not block the event loop.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from .config import ServingLimits
from .recommend import Recommendation, RunRecommender, ServingInputError

log = logging.getLogger(__name__)

#: An external id as JSON: ids are strings in the dataset tables; integers (MovieLens ids) are accepted as such.
ExternalId = StrictStr | StrictInt


class BatchRequest(BaseModel):
    """Body of ``POST /recommendations/batch``."""

    model_config = ConfigDict(extra="forbid")
    users: list[ExternalId] = Field(min_length=1, description="external user ids (users table)")
    k: StrictInt = Field(10, description="items per user")
    exclude_seen: StrictBool = Field(True, description="exclude the user's train and validation items")


class FoldInRequest(BaseModel):
    """Body of ``POST /recommendations/fold-in``."""

    model_config = ConfigDict(extra="forbid")
    items: list[ExternalId] = Field(min_length=1, description="external item ids the new user liked")
    k: StrictInt = Field(10, description="items to return")


Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodySizeLimit:
    """ASGI middleware: answer 413 to a request body larger than `max_bytes`, before the app (and its JSON parser)
    sees any of it.

    A declared Content-Length above the limit is refused at once, without reading the body; otherwise the body is
    counted as it arrives (chunked bodies declare no size) and refused as soon as the count passes the limit, so at
    most `max_bytes` (plus one chunk) are ever held. An accepted body is handed to the app in one message.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _refuse(send, 400, f"Content-Length {declared[:40].decode(errors='replace')!r} is not a "
                                         "number of bytes; send a valid Content-Length or none (chunked)")
                return
            if int(declared) > self.max_bytes:
                await _refuse(send, 413, f"request body of {int(declared)} bytes is larger than the limit of "
                                         f"{self.max_bytes} bytes (max_body_bytes); send fewer users or items per "
                                         "request, or start the server with a larger --max-body-bytes")
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _refuse(send, 413, f"request body is larger than the limit of {self.max_bytes} bytes "
                                         f"(max_body_bytes; {size} bytes received so far); send fewer users or "
                                         "items per request, or start the server with a larger --max-body-bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the app expects

        await self.app(scope, replay, send)


async def _refuse(send: Send, status: int, detail: str) -> None:
    """Send ``{"detail": ...}`` with `status` and close the connection (the unread rest of the body is dropped)."""
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _items(recs: list[Recommendation]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in recs]


def _describe_validation_error(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    """One readable sentence per problem, naming where it is and the value received (truncated)."""
    parts, errors = [], []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        received = repr(err.get("input"))
        received = received if len(received) <= 80 else received[:77] + "..."
        parts.append(f"{where}: {err.get('msg')} (got {received})")
        errors.append({"loc": [str(p) for p in err.get("loc", ())], "msg": err.get("msg"), "input": received})
    message = "invalid request: " + "; ".join(parts)
    if any(isinstance(err.get("input"), bytes) for err in exc.errors()):
        # FastAPI leaves a body unparsed unless it is declared JSON; say so instead of only "not an object".
        message += "; send the body as JSON with the header 'Content-Type: application/json'"
    return message, errors


def render_api_docs(spec: dict[str, Any]) -> str:
    """A self-contained HTML page (no script, no external asset) describing every operation of an OpenAPI `spec`:
    method, path, summary, parameters and the JSON schema of the request body, with the raw schema linked."""
    schemas = spec.get("components", {}).get("schemas", {})
    rows = []
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            params = "".join(
                f"<li><code>{html.escape(p['name'])}</code> ({html.escape(p.get('in', ''))}"
                f"{', required' if p.get('required') else ''}): {html.escape(p.get('description', ''))}</li>"
                for p in op.get("parameters", []))
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            ref = body.get("$ref", "").rsplit("/", 1)[-1]
            body_html = (f"<p>JSON body <code>{html.escape(ref)}</code>:</p><pre>"
                         f"{html.escape(json.dumps(schemas.get(ref, body), indent=2))}</pre>") if body else ""
            rows.append(f"<section><h2><code>{method.upper()} {html.escape(path)}</code></h2>"
                        f"<p>{html.escape(op.get('summary', ''))}</p>"
                        f"{'<ul>' + params + '</ul>' if params else ''}{body_html}</section>")
    info = spec.get("info", {})
    return ("<!doctype html><html><head><meta charset='utf-8'><title>"
            f"{html.escape(info.get('title', 'API'))}</title><style>body{{font-family:sans-serif;max-width:60rem;"
            "margin:2rem auto;padding:0 1rem}}pre{{background:#f4f4f4;padding:.5rem;overflow-x:auto}}</style>"
            f"</head><body><h1>{html.escape(info.get('title', 'API'))}</h1>"
            f"<p>{html.escape(info.get('description', ''))}. Machine-readable schema: "
            f"<a href='/openapi.json'>/openapi.json</a>.</p>{''.join(rows)}</body></html>")


def create_app(run_dir: str | Path, dataset_dir: str | Path | None = None, *,
               limits: ServingLimits | None = None) -> FastAPI:
    """Load the run at `run_dir` (and its dataset; see :class:`RunRecommender`) and build the API around it.

    Loading happens here, before any request, so an incomplete or foreign run fails at startup with an
    ArtifactError instead of on the first request.
    """
    rec = RunRecommender(run_dir, dataset_dir, limits)
    # FastAPI's own /docs and /redoc pages load their scripts from a CDN, so they are blank in an air-gapped lab;
    # /docs is rendered here from the OpenAPI schema instead, as one page with no external asset.
    app = FastAPI(title="llmrec_local recommendations",
                  description=f"top-K recommendations from run {rec.run_dir.name}", version="1",
                  docs_url=None, redoc_url=None)
    app.state.recommender = rec
    app.add_middleware(BodySizeLimit, max_bytes=rec.limits.max_body_bytes)

    @app.exception_handler(ServingInputError)
    async def _input_error(request: Request, exc: ServingInputError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content={"detail": str(exc)})

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, errors = _describe_validation_error(exc)
        return JSONResponse(status_code=422, content={"detail": message, "errors": errors})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug must cost one request, not the service: log the traceback, answer 500 with the error's type.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": f"internal error ({type(exc).__name__}); see the "
                                                                f"server log"})

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(render_api_docs(app.openapi()))

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "run_id": rec.run_dir.name, "n_users": rec.n_users, "n_items": rec.n_items}

    @app.get("/model")
    def model() -> dict[str, Any]:
        return rec.describe()

    @app.get("/users/{user_id}/recommendations")
    def user_recommendations(
        user_id: str, k: int = Query(10, description="items to return"),
        exclude_seen: bool = Query(True, description="exclude the user's train and validation items"),
    ) -> dict[str, Any]:
        rec.user_index(user_id)  # a path id that is unknown is a missing resource: 404, not 422
        recs = rec.recommend([user_id], k, exclude_seen=exclude_seen)[0]
        return {"user_id": user_id, "k": k, "exclude_seen": exclude_seen, "items": _items(recs)}

    @app.post("/recommendations/batch")
    def batch(body: BatchRequest) -> dict[str, Any]:
        users = [str(u) for u in body.users]
        results = rec.recommend(users, body.k, exclude_seen=body.exclude_seen)
        return {"k": body.k, "exclude_seen": body.exclude_seen,
                "results": [{"user_id": u, "items": _items(r)} for u, r in zip(users, results)]}

    @app.post("/recommendations/fold-in")
    def fold_in(body: FoldInRequest) -> dict[str, Any]:
        history = [str(i) for i in body.items]
        recs = rec.recommend_fold_in(history, body.k)
        return {"k": body.k, "history": list(dict.fromkeys(history)), "items": _items(recs)}

    return app
