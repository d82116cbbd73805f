"""``gatedrec serve``: a run's recommendations over HTTP (FastAPI), a Prometheus ``/metrics`` and a web page at ``/``.

Ids in paths and bodies are the data's raw ids as text. An unknown user or item answers 404, a duplicate new
item 409, malformed input 422, each with a ``detail`` that says what to fix.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import Body, FastAPI, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field

from gatedrec import __version__
from gatedrec.errors import GatedRecError
from gatedrec.serving.recommender import Conflict, Explanation, NewItem, Recommender, UnknownId

MAX_K = 1000
MAX_HISTORY = 10_000
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}

K = Annotated[int, Query(ge=1, le=MAX_K, description="how many items")]
UserId = Annotated[str, Path(description="a user's raw id")]
ItemId = Annotated[str, Path(description="an item's raw id")]


class Because(BaseModel):
    item: str
    title: str | None = None
    contribution: float = Field(description="this history item's term of the score")


class ScoredItem(BaseModel):
    item: str
    score: float
    title: str | None = None
    image: str | None = None
    shares: dict[str, float] | None = Field(None, description="the item's share of each modality (explain=true)")
    because: list[Because] | None = Field(None, description="history items behind the score (explain=true)")
    own: float | None = Field(None, description="the part of the score from the user's own embedding (explain=true)")


class Recommendations(BaseModel):
    user: str | None = None
    items: list[ScoredItem]


class HistoryRequest(BaseModel):
    history: list[str] = Field(min_length=1, max_length=MAX_HISTORY, description="raw ids of the visitor's items")
    k: int = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True
    explain: bool = False


class ItemRequest(BaseModel):
    item: str = Field(min_length=1, max_length=200, description="the new item's raw id")
    title: str | None = Field(None, max_length=1000)
    image: str | None = Field(None, max_length=2000, description="an image URL or path for the page")
    text: str | None = Field(None, max_length=100_000, description="raw text, encoded by the run's text encoder")
    features: dict[str, list[float]] = Field(default_factory=dict, description="feature vectors by modality")


class ItemDetails(BaseModel):
    item: str
    title: str | None = None
    image: str | None = None
    shares: dict[str, float] | None = None
    added: bool


class UserDetails(BaseModel):
    user: str
    history: list[ItemDetails]


class Page(BaseModel):
    total: int
    ids: list[str]


class Metrics:
    """Requests, errors and latency per route, in a registry of the app's own."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("gatedrec_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.errors = Counter("gatedrec_errors", "HTTP requests answered 4xx or 5xx", ["method", "route", "status"],
                              registry=self.registry)
        self.latency = Histogram("gatedrec_request_seconds", "time to answer", ["method", "route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)


class MetricsMiddleware:
    """Counts every request under its route's template (``/v1/items/{item}``, not the id)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            labels = (scope["method"], route)
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - started)
            self.metrics.requests.labels(*labels, str(status[0])).inc()
            if status[0] >= 400:
                self.metrics.errors.labels(*labels, str(status[0])).inc()


def create_app(recommender: Recommender) -> FastAPI:
    app = FastAPI(title="gatedrec", version=__version__,
                  description="Recommendations, explanations and live items from a trained gatedrec run.")
    metrics = Metrics()
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    add_error_handlers(app)
    add_recommendation_routes(app, recommender)
    add_item_routes(app, recommender)
    add_service_routes(app, recommender, metrics)
    return app


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UnknownId)
    async def unknown(request: Request, error: UnknownId):
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(Conflict)
    async def conflict(request: Request, error: Conflict):
        return JSONResponse({"detail": str(error)}, status_code=409)

    @app.exception_handler(GatedRecError)
    async def invalid(request: Request, error: GatedRecError):
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, error: RequestValidationError):
        problems = [f"{' '.join(str(part) for part in problem['loc'])}: {problem['msg']}" for problem in error.errors()]
        return JSONResponse({"detail": "; ".join(problems), "errors": jsonable(error.errors())}, status_code=422)


def jsonable(errors: list[dict]) -> list[dict]:
    return [{"loc": [str(part) for part in problem["loc"]], "msg": problem["msg"], "type": problem["type"]}
            for problem in errors]


def scored(recommender: Recommender, ranked: list[tuple[str, float]], explain_all=None) -> list[dict]:
    """The response rows of ranked (item, score) pairs, with explanations when ``explain_all(items)`` is given."""
    explanations = explain_all([item for item, _ in ranked]) if explain_all is not None and ranked else None
    rows = []
    for position, (item, score) in enumerate(ranked):
        row_index = recommender.item_index[item]
        row = {"item": item, "score": score, "title": recommender.titles.get(str(row_index)),
               "image": recommender.images.get(str(row_index))}
        if explanations is not None:
            row |= explained(recommender, explanations[position])
        rows.append(row)
    return rows


def explained(recommender: Recommender, explanation: Explanation) -> dict:
    because = [{"item": item, "title": recommender.title_of(item),
                "contribution": contribution} for item, contribution in explanation.because]
    return {"shares": explanation.shares, "because": because, "own": explanation.own}


def add_recommendation_routes(app: FastAPI, recommender: Recommender) -> None:
    @app.get("/v1/users/{user}/recommendations", response_model=Recommendations, response_model_exclude_none=True,
             responses={404: {"description": "unknown user"}})
    async def recommend(user: UserId, k: K = 10, exclude_seen: bool = True, explain: bool = False):
        """The user's top-k items, training items excluded unless exclude_seen=false."""
        ranked = recommender.recommend(user, k, exclude_seen)
        explain_all = (lambda items: recommender.explain_many(user, items)) if explain else None
        return {"user": user, "items": scored(recommender, ranked, explain_all)}

    @app.post("/v1/recommendations", response_model=Recommendations, response_model_exclude_none=True,
              responses={404: {"description": "an unknown item in the history"}})
    async def recommend_for_history(request: Annotated[HistoryRequest, Body()]):
        """Top-k for a visitor the model never saw, from the items of its history (fold-in)."""
        ranked = recommender.recommend_for_history(request.history, request.k, request.exclude_seen)
        explain_all = ((lambda items: recommender.explain_many_for_history(request.history, items))
                       if request.explain else None)
        return {"items": scored(recommender, ranked, explain_all)}

    @app.get("/v1/users", response_model=Page)
    async def users(offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=MAX_K)] = 100):
        """A page of the known users' ids."""
        return {"total": len(recommender.user_ids), "ids": recommender.user_ids[offset : offset + limit]}

    @app.get("/v1/users/{user}", response_model=UserDetails, responses={404: {"description": "unknown user"}})
    async def user_details(user: UserId):
        """The user's training items."""
        return {"user": user, "history": [recommender.item_details(item) for item in recommender.history(user)]}


def add_item_routes(app: FastAPI, recommender: Recommender) -> None:
    @app.get("/v1/items", response_model=Page)
    async def items(offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=MAX_K)] = 100,
                    query: Annotated[str | None, Query(max_length=200, description="words of the title")] = None):
        """A page of the items' ids, those whose title contains ``query`` when given."""
        ids = recommender.item_ids[: recommender.n_items]
        if query:
            wanted = query.lower()
            ids = [item for row, item in enumerate(ids) if wanted in recommender.titles.get(str(row), "").lower()
                   or wanted in item.lower()]
        return {"total": len(ids), "ids": ids[offset : offset + limit]}

    @app.get("/v1/items/{item}", response_model=ItemDetails, responses={404: {"description": "unknown item"}})
    async def item_details(item: ItemId):
        return recommender.item_details(item)

    @app.get("/v1/items/{item}/similar", response_model=Recommendations, response_model_exclude_none=True,
             responses={404: {"description": "unknown item"}})
    async def similar(item: ItemId, k: K = 10):
        """The items closest in angle to the item's final embedding."""
        return {"items": scored(recommender, recommender.similar_items(item, k))}

    @app.get("/v1/items/{item}/image", response_class=Response,
             responses={200: {"content": {"image/*": {}}}, 307: {"description": "the image's URL"},
                        404: {"description": "unknown item, or no image for it"}})
    async def image(item: ItemId):
        """The item's image: a redirect to its URL, or the file the data folder named."""
        where = recommender.item_details(item)["image"]
        if where and where.startswith(("http://", "https://")):
            return RedirectResponse(where)
        if where and FilePath(where).is_file():
            return FileResponse(where)
        raise UnknownId(f"item '{item}' has no image here" + (f" (its file {where} is not on this machine)"
                                                               if where else ""))

    @app.post("/v1/items", status_code=201, response_model=ItemDetails,
              responses={409: {"description": "the id exists already"}})
    async def add_item(request: Annotated[ItemRequest, Body()]):
        """Add an item by its content (feature vectors, or text for a run whose text encoder is known); it is
        recommendable in the next request and kept across restarts."""
        new_item = NewItem(request.item, request.title, request.image, request.text, features=request.features)
        if request.text:  # encoding takes a model's forward pass: off the event loop
            await run_in_threadpool(recommender.add_items, [new_item])
        else:  # a few milliseconds: in a worker thread it would wait on the event loop for the GIL
            recommender.add_items([new_item])
        return recommender.item_details(request.item)


def add_service_routes(app: FastAPI, recommender: Recommender, metrics: Metrics) -> None:
    @app.get("/healthz")
    async def health():
        return {"status": "ok", "model": recommender.manifest.model, "users": len(recommender.user_ids),
                "items": recommender.n_items}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/info")
    async def info():
        return recommender.describe()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse(static_text("index.html"))

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str):
        if name not in STATIC_FILES:
            return JSONResponse({"detail": f"no static file '{name}'"}, status_code=404)
        return Response(static_text(name), media_type=STATIC_FILES[name])


def static_text(name: str) -> str:
    return resources.files("gatedrec.serving").joinpath("static", name).read_text(encoding="utf-8")
