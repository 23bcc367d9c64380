"""The versioned REST API (``/api/v1``) and ``/healthz``, as a FastAPI router built by a factory.

Everything the routes need (service, dialogue, settings, session store) is passed to
:func:`build_api_router`; the module holds no state. Input is validated once, here, by the
pydantic models shared with the service (``CustomerProfile`` in, ``SegmentResult`` out). Domain
errors become HTTP 422 ``{"detail": [messages]}`` in one place, :func:`install_error_handlers`,
which also rewrites FastAPI's own validation errors so each message names the value and the
rule (``age=250 is above the maximum of 110``).

Speed: ``POST /api/v1/segment`` validates, calls ``service.assign`` and serialises with
pydantic straight to JSON bytes (the declared ``response_model`` is for the documentation).
Logs carry counts, segment keys and timings only, never customer values or messages.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Body, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.adapters.guard import USER_SCOPE_KEY
from assistant.core.errors import AssistantError, InvalidProfileError, InvalidValueError
from assistant.core.fields import FIELD_NAMES, FIELDS_BY_NAME
from assistant.core.schemas import CustomerProfile, SegmentInfo, SegmentResult, validation_problems
from assistant.insights.profiles import SegmentProfile
from assistant.insights.summaries import segment_profile

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
JSON_MEDIA = "application/json"
MAX_SHOWN_VALUE = 40


# ---------------------------------------------------------------------------- wire models


class ErrorResponse(BaseModel):
    """Every error answer: one plain message per problem; a 422 also groups them by customer field."""

    detail: list[str] = Field(examples=[["age=250 is above the maximum of 110", "recency_days is required"]])
    fields: dict[str, list[str]] = Field(
        default_factory=dict, description="The messages of `detail` that concern one customer field, by field",
        examples=[{"age": ["age=250 is above the maximum of 110"], "recency_days": ["recency_days is required"]}])


class BatchItemResult(BaseModel):
    """One scored customer of a batch (``detail=compact``, the default)."""

    segment_key: str
    segment_name: str
    confidence: Literal["clear", "borderline"]
    margin: float = Field(description="Relative margin between the nearest two centroids (0 = exactly between).")


class BatchItemError(BaseModel):
    """A batch item that could not be scored; the other items are unaffected."""

    error: str = Field(examples=["age=250 is above the maximum of 110"])


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str | None = Field(default=None, max_length=200,
                                   description="The id from a previous answer; omit it (or send an unknown or "
                                               "expired one, or another user's) to start a new conversation.")
    message: str = Field(description="What the user typed.")


class ChatResponse(BaseModel):
    session_id: str = Field(description="Send it back with the next message to continue this conversation.")
    reply: str
    profile: dict[str, float | None] = Field(description="The values gathered so far (None: not given yet).")
    complete: bool
    result: SegmentResult | None


class Health(BaseModel):
    status: Literal["ok"]
    model_loaded: bool
    model_version: str
    trained_at: str
    k: int
    data_sha256: str
    bundle_sha256: str
    rows_kept: int


_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Credentials required (HTTP Basic) when the server runs with --auth"},
    429: {"model": ErrorResponse, "description": "Too many failed sign-ins for this user or from this address: "
                                                 "wait the seconds given in Retry-After"}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The request body cannot be parsed"},
    422: {"model": ErrorResponse, "description": "Invalid input: one message per problem"},
    413: {"model": ErrorResponse, "description": "Request body or batch too large"},
    **_AUTH_ERRORS}
BODY_PARSE_ERROR = "There was an error parsing the body"     # FastAPI's own words for an unreadable body
BODY_PARSE_MESSAGE = ("the request body cannot be parsed: send JSON text in UTF-8 "
                      "(whole numbers may have at most 4,300 digits)")


# ---------------------------------------------------------------------------- errors -> 422


def _show(value: Any) -> str:
    if isinstance(value, str):
        text = repr(value)
    else:
        text = json.dumps(value, default=str) if isinstance(value, (list, dict)) else str(value)
    return text if len(text) <= MAX_SHOWN_VALUE else text[:MAX_SHOWN_VALUE - 3] + "..."


def request_problems(errors: list[dict[str, Any]]) -> list[str]:
    """FastAPI's validation errors as plain messages naming value and rule."""
    problems = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header"):
            where_kind, loc = loc[0], loc[1:]
        else:
            where_kind = ""
        where = ".".join(loc)
        kind = err.get("type", "")
        if kind in ("invalid_value", "missing_value"):
            problems.append(str(err["msg"]))
        elif kind == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "JSON decode error")
            problems.append(f"the request body is not valid JSON ({reason} at character {where or 0})")
        elif kind == "missing" and not where:
            problems.append("the request body is missing (send JSON with Content-Type: application/json)")
        elif kind == "missing":
            problems.append(f"{where} is required")
        elif kind == "extra_forbidden":
            problems.append(f"{where} is not an accepted field")
        elif not where and where_kind == "body":
            problems.append(f"the request body {_show(err.get('input'))} is not accepted: {err['msg']}")
        else:
            problems.append(f"{where}={_show(err.get('input'))}: {err['msg']}")
    return problems


_FIELD_FIRST = re.compile(r"([a-z_]+)(?:=| is )")


def problems_by_field(problems: list[str]) -> dict[str, list[str]]:
    """The messages that start by naming a customer field (``age=250 is ...``, ``income is required``)."""
    fields: dict[str, list[str]] = {}
    for problem in problems:
        m = _FIELD_FIRST.match(problem)
        if m and m.group(1) in FIELDS_BY_NAME:
            fields.setdefault(m.group(1), []).append(problem)
    return fields


def error_response(status: int, problems: list[str], headers: Mapping[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": problems}
    if status == 422:
        body["fields"] = problems_by_field(problems)
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """The one place where domain errors (and FastAPI's validation errors) become HTTP 422, and where
    every other HTTP error gets the same shape."""

    # Starlette types a handler as taking any Exception; each is registered for one class only.
    async def on_assistant_error(request: Request, exc: Exception) -> JSONResponse:
        problems = exc.problems if isinstance(exc, InvalidProfileError) else [str(exc)]
        return error_response(422, problems)

    async def on_request_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, request_problems(list(exc.errors())))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return error_response(exc.status_code, http_problems(exc.detail), headers=exc.headers)

    app.add_exception_handler(AssistantError, on_assistant_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


def http_problems(detail: Any) -> list[str]:
    """An HTTP error's detail as the one error shape, a list of messages (FastAPI and Starlette give a
    string for an unreadable body, a wrong method or an unknown route)."""
    if isinstance(detail, list):
        return [str(message) for message in detail]
    return [BODY_PARSE_MESSAGE if detail == BODY_PARSE_ERROR else str(detail)]


# ---------------------------------------------------------------------------- the router


def build_api_router(*, service, dialogue, settings, sessions) -> APIRouter:
    """``/api/v1/*`` and ``/healthz`` for one loaded service, dialogue and session store."""
    router = APIRouter()
    max_items = settings.max_batch_items
    max_chars = settings.max_message_chars

    # Fixed answers are serialised once.
    segments_body = json.dumps([s.model_dump(mode="json") for s in service.segments()]).encode()
    health_body = json.dumps({"status": "ok", "model_loaded": True, **service.model_info()}).encode()

    @router.get("/healthz", response_model=Health, tags=["health"],
                summary="Liveness: the model is loaded (no credentials needed)")
    async def healthz() -> Response:
        return Response(health_body, media_type=JSON_MEDIA)

    @router.post(f"{API_PREFIX}/segment", response_model=SegmentResult, responses=_ERRORS, tags=["segments"],
                 summary="Segment one customer")
    async def segment(profile: CustomerProfile) -> Response:
        result = service.assign(profile)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("segment: %s", result.segment_key)
        return Response(result.model_dump_json(), media_type=JSON_MEDIA)

    batch_schema = {"type": "array", "maxItems": max_items,
                    "items": {"$ref": "#/components/schemas/CustomerProfile"}}

    @router.post(f"{API_PREFIX}/segment/batch", tags=["segments"],
                 response_model=list[BatchItemResult | BatchItemError | SegmentResult], responses=_ERRORS,
                 summary=f"Segment up to {max_items:,} customers; bad items get an error, the rest are scored",
                 openapi_extra={"requestBody": {"required": True,
                                                "content": {JSON_MEDIA: {"schema": batch_schema}}}})
    def segment_batch(
        items: Annotated[list[Any], Body()],
        detail: Annotated[Literal["compact", "full"], Query(
            description="compact: key, name, confidence, margin per customer; full: the whole SegmentResult",
        )] = "compact",
    ) -> Response:
        started = time.perf_counter()
        if len(items) > max_items:
            return error_response(413, [f"the batch has {len(items):,} items, above the maximum of {max_items:,} "
                                        f"per request: split it into several requests"])
        out: list[Any] = [None] * len(items)
        valid_positions: list[int] = []
        valid_profiles: list[Any] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                out[i] = {"error": f"item {i} (counting from 0), {_show(item)}, is not a JSON object with the fields "
                                   f"{', '.join(FIELD_NAMES)}"}
                continue
            try:
                profile = CustomerProfile.model_validate(item)
            except ValidationError as exc:
                out[i] = {"error": "; ".join(validation_problems(exc))}
                continue
            valid_positions.append(i)
            valid_profiles.append(profile)
        if detail == "full":
            for i, profile in zip(valid_positions, valid_profiles, strict=True):
                out[i] = service.assign(profile).model_dump(mode="json")
        elif valid_profiles:
            X = np.array([[getattr(p, n) for n in FIELD_NAMES] for p in valid_profiles], dtype=np.float64)
            scored = service.score_array(X)
            keys, names, conf, margin = (scored["segment_key"].tolist(), scored["segment_name"].tolist(),
                                         scored["confidence"].tolist(), scored["margin"].tolist())
            for j, i in enumerate(valid_positions):
                out[i] = {"segment_key": keys[j], "segment_name": names[j], "confidence": conf[j], "margin": margin[j]}
        log.info("batch: %d items, %d scored, %d rejected in %.1f ms", len(items), len(valid_profiles),
                 len(items) - len(valid_profiles), 1000 * (time.perf_counter() - started))
        return Response(json.dumps(out, separators=(",", ":")), media_type=JSON_MEDIA)

    @router.get(f"{API_PREFIX}/segments", response_model=list[SegmentInfo], tags=["segments"],
                responses=_AUTH_ERRORS, summary="The segments with descriptions, strategies, sizes and averages")
    async def segments() -> Response:
        return Response(segments_body, media_type=JSON_MEDIA)

    @router.get(f"{API_PREFIX}/segments/{{key}}/profile", response_model=SegmentProfile, tags=["segments"],
                responses={**_AUTH_ERRORS, 404: {"model": ErrorResponse, "description": "No segment with that key"},
                           422: _ERRORS[422]},
                summary="What a segment buys, how it shops, how it answered past campaigns (aggregates only)")
    def profile(key: str) -> Response:
        try:
            body = segment_profile(service, key)
        except InvalidValueError as exc:
            raise HTTPException(status_code=404, detail=[str(exc)]) from None
        return Response(body.model_dump_json(), media_type=JSON_MEDIA)

    @router.post(f"{API_PREFIX}/chat", response_model=ChatResponse, responses=_ERRORS, tags=["chat"],
                 summary="One chat turn; the conversation is kept server-side under session_id")
    def chat(body: ChatRequest, request: Request) -> Response:
        if len(body.message) > max_chars:
            raise AssistantError(f"message is {len(body.message):,} characters long, above the maximum of "
                                 f"{max_chars:,}")
        owner = request.scope.get(USER_SCOPE_KEY)          # the signed-in user (None without --auth)
        session = sessions.open(body.session_id, owner)
        turn = dialogue.respond(session.state, body.message)  # None: a new conversation
        sessions.save(session.session_id, turn.state, owner)
        payload = turn.as_json()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("chat turn: new_session=%s complete=%s", session.is_new, payload.get("complete"))
        return Response(json.dumps({"session_id": session.session_id, **payload}, default=str), media_type=JSON_MEDIA)

    return router
