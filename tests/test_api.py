"""The REST API (``/api/v1``, ``/healthz``, OpenAPI) through the real FastAPI app, without the UI."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from assistant.adapters.web import create_app
from assistant.core.errors import InvalidProfileError
from assistant.core.fields import FIELD_NAMES, FIELDS
from assistant.core.schemas import parse_profile
from assistant.core.settings import Settings
from assistant.model.data import clean_customers
from assistant.model.synthetic import generate_customers

GOOD = {"age": 38, "income": 52000, "total_spending": 600, "web_purchases": 4, "store_purchases": 6,
        "web_visits_per_month": 5, "recency_days": 30}


@pytest.fixture(scope="module")
def app(service):
    return create_app(Settings(max_batch_items=50, max_request_bytes=200_000), service=service, ui=False)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def profiles() -> list[dict]:
    return clean_customers(generate_customers(300, seed=11)).features.to_dict("records")


# ---------------------------------------------------------------------------- POST /api/v1/segment


def test_segment_returns_the_services_result(client, service):
    r = client.post("/api/v1/segment", json=GOOD)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body == json.loads(service.assign(parse_profile(GOOD)).model_dump_json())
    assert body["segment_key"] in service.cluster_keys
    assert body["segment_name"] == service.segment_name(body["segment_key"])


def test_segment_agrees_with_the_service_on_many_customers(client, service, profiles):
    for row in profiles[:120]:
        r = client.post("/api/v1/segment", json=row)
        assert r.status_code == 200, r.text
        assert r.json()["segment_key"] == service.label(parse_profile(row))


def test_every_segment_is_reachable_through_the_api(client, profiles):
    keys = {client.post("/api/v1/segment", json=row).json()["segment_key"] for row in profiles}
    assert keys == {"casual_shoppers", "vip_customers", "browsers_without_conversion", "digital_enthusiasts"}


@pytest.mark.parametrize("change, message", [
    ({"age": 250}, "age=250 is above the maximum of 110"),
    ({"age": 17}, "age=17 is below the minimum of 18"),
    ({"income": "lots"}, "income='lots' is not a number"),
    ({"web_purchases": 2.5}, "web_purchases=2.5 must be a whole number"),
    ({"recency_days": -1}, "recency_days=-1 is below the minimum of 0"),
    ({"age": None}, "age is required"),
    ({"colour": "red"}, "colour is not an accepted field"),
])
def test_segment_rejects_bad_values_naming_value_and_rule(client, change, message):
    r = client.post("/api/v1/segment", json={**GOOD, **change})
    assert r.status_code == 422
    assert message in r.json()["detail"]


def test_segment_lists_every_problem(client):
    body = {k: v for k, v in GOOD.items() if k != "income"} | {"age": 250, "recency_days": 99999}
    answer = client.post("/api/v1/segment", json=body).json()
    assert sorted(answer["detail"]) == sorted(["age=250 is above the maximum of 110", "income is required",
                                               "recency_days=99999 is above the maximum of 3,650"])
    assert answer["fields"] == {"age": ["age=250 is above the maximum of 110"], "income": ["income is required"],
                                "recency_days": ["recency_days=99999 is above the maximum of 3,650"]}
    bad_json = client.post("/api/v1/segment", content=b"{", headers={"content-type": "application/json"}).json()
    assert bad_json["detail"] and bad_json["fields"] == {}          # not about one field


def test_segment_accepts_numbers_written_as_text(client, service):
    r = client.post("/api/v1/segment", json={**GOOD, "income": "52,000", "age": "38"})
    assert r.status_code == 200
    assert r.json()["customer"]["income"] == 52000


@pytest.mark.parametrize("content, message", [
    (b"{not json", "the request body is not valid JSON"),
    (b"[1, 2]", "the request body [1, 2] is not accepted"),
    (b"", "the request body is missing"),
])
def test_segment_rejects_a_broken_body_plainly(client, content, message):
    r = client.post("/api/v1/segment", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert any(d.startswith(message) for d in r.json()["detail"]), r.json()


# ---------------------------------------------------------------------------- batch


def test_batch_keeps_order_and_reports_bad_items_in_place(client, service, profiles):
    items = [profiles[0], {**GOOD, "age": 250}, "not a customer", profiles[1], {"age": 40}, profiles[2]]
    r = client.post("/api/v1/segment/batch", json=items)
    assert r.status_code == 200
    out = r.json()
    assert len(out) == len(items)
    for i in (0, 3, 5):
        profile = parse_profile(items[i])
        assert out[i]["segment_key"] == service.label(profile)
        assert out[i]["segment_name"] == service.segment_name(out[i]["segment_key"])
        full = service.assign(profile)
        assert out[i]["confidence"] == full.confidence.level
        assert out[i]["margin"] == pytest.approx(full.confidence.margin)
    assert out[1] == {"error": "age=250 is above the maximum of 110"}
    assert out[2]["error"].startswith("item 2 (counting from 0), 'not a customer', is not a JSON object")
    assert "income is required" in out[4]["error"] and "recency_days is required" in out[4]["error"]


def test_batch_full_detail_gives_whole_results(client, service, profiles):
    items = profiles[:5] + [{**GOOD, "age": 5}]
    out = client.post("/api/v1/segment/batch", params={"detail": "full"}, json=items).json()
    for item, got in zip(items[:5], out[:5]):
        assert got == json.loads(service.assign(parse_profile(item)).model_dump_json())
    assert out[5] == {"error": "age=5 is below the minimum of 18"}


def test_batch_labels_match_the_service_for_many_rows(client, service, profiles):
    items = profiles[:50]
    out = client.post("/api/v1/segment/batch", json=items).json()
    assert [o["segment_key"] for o in out] == [service.label(parse_profile(p)) for p in items]


def test_batch_above_the_item_limit_is_refused(client):
    r = client.post("/api/v1/segment/batch", json=[GOOD] * 51)
    assert r.status_code == 413
    assert r.json()["detail"] == ["the batch has 51 items, above the maximum of 50 per request: "
                                  "split it into several requests"]


def test_batch_must_be_a_list(client):
    r = client.post("/api/v1/segment/batch", json=GOOD)
    assert r.status_code == 422
    assert "Input should be a valid list" in r.json()["detail"][0]


def test_empty_batch_gives_empty_list(client):
    r = client.post("/api/v1/segment/batch", json=[])
    assert r.status_code == 200 and r.json() == []


def test_batch_detail_must_be_known(client):
    r = client.post("/api/v1/segment/batch", params={"detail": "everything"}, json=[GOOD])
    assert r.status_code == 422
    assert r.json()["detail"][0].startswith("detail='everything'")


# ---------------------------------------------------------------------------- size limit


def test_body_above_the_limit_is_refused_by_content_length(client):
    r = client.post("/api/v1/segment/batch", content=b"[" + b" " * 300_000 + b"]",
                    headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json() == {"detail": ["the request body is 300,002 bytes, above the limit of 200,000"]}


def test_streamed_body_above_the_limit_is_refused(client):
    def chunks():
        yield b"["
        for _ in range(30):
            yield b"1," * 5000
        yield b"1]"

    r = client.post("/api/v1/segment/batch", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json() == {"detail": ["the request body is above the limit of 200,000 bytes"]}


# ---------------------------------------------------------------------------- segments, health


def test_segments_lists_the_knowledge_base_with_sizes(client, service):
    r = client.get("/api/v1/segments")
    assert r.status_code == 200
    body = r.json()
    assert body == [s.model_dump(mode="json") for s in service.segments()]
    assert {s["key"] for s in body} == set(service.cluster_keys)
    assert sum(s["size"] for s in body) == service.card["data"]["rows_kept"]
    for s in body:
        assert set(s["averages"]) == set(FIELD_NAMES)
        assert s["strategy"]["tactics"]


def test_healthz_names_the_model(client, service):
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["model_loaded"] is True
    info = service.model_info()
    assert body["model_version"] == info["model_version"] and body["data_sha256"] == info["data_sha256"]


def test_unknown_route_is_404(client):
    assert client.get("/api/v1/nothing").status_code == 404


# ---------------------------------------------------------------------------- chat


def test_chat_starts_a_session_and_continues_it(client):
    first = client.post("/api/v1/chat", json={"message": "hello"})
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"session_id", "reply", "profile", "complete", "result"}
    assert body["reply"] and body["complete"] is False and body["result"] is None
    sid = body["session_id"]
    second = client.post("/api/v1/chat", json={"session_id": sid, "message": "She is 38 years old"}).json()
    assert second["session_id"] == sid
    assert second["profile"]["age"] == 38


def test_chat_completes_a_profile_and_returns_the_result(client, service):
    sid = None
    message = ("38 years old, income 52000, spent 600, 4 web purchases, 6 store purchases, "
               "5 web visits per month, last purchase 30 days ago")
    body = client.post("/api/v1/chat", json={"session_id": sid, "message": message}).json()
    assert body["complete"] is True, body["reply"]
    assert body["result"]["segment_key"] == service.label(parse_profile(GOOD))
    assert body["result"]["segment_name"] in body["reply"]


def test_chat_sessions_are_isolated(client):
    a = client.post("/api/v1/chat", json={"message": "she is 38 years old"}).json()
    b = client.post("/api/v1/chat", json={"message": "he is 61 years old and earns 90000"}).json()
    assert a["session_id"] != b["session_id"]
    a2 = client.post("/api/v1/chat", json={"session_id": a["session_id"], "message": "income 41000"}).json()
    b2 = client.post("/api/v1/chat", json={"session_id": b["session_id"], "message": "spent 1500"}).json()
    assert (a2["profile"]["age"], a2["profile"]["income"], a2["profile"]["total_spending"]) == (38, 41000, None)
    assert (b2["profile"]["age"], b2["profile"]["income"], b2["profile"]["total_spending"]) == (61, 90000, 1500)
    assert "61" not in a2["reply"] and "90,000" not in a2["reply"] and "90000" not in a2["reply"]


def test_chat_unknown_session_starts_a_new_one(client):
    body = client.post("/api/v1/chat", json={"session_id": "no-such-session", "message": "hi"}).json()
    assert body["session_id"] != "no-such-session"
    assert all(v is None for v in body["profile"].values())


def test_chat_message_above_the_limit_is_422(service):
    app = create_app(Settings(max_message_chars=100), service=service, ui=False)
    with TestClient(app) as c:
        r = c.post("/api/v1/chat", json={"message": "x" * 101})
        assert r.status_code == 422
        assert r.json() == {"detail": ["message is 101 characters long, above the maximum of 100"], "fields": {}}
        assert c.post("/api/v1/chat", json={"message": "x" * 100}).status_code == 200


@pytest.mark.parametrize("body, message", [
    ({}, "message is required"),
    ({"message": 5}, "message=5: Input should be a valid string"),
    ({"message": "hi", "extra": 1}, "extra is not an accepted field"),
])
def test_chat_bad_body_is_422(client, body, message):
    r = client.post("/api/v1/chat", json=body)
    assert r.status_code == 422
    assert message in r.json()["detail"]


# ---------------------------------------------------------------------------- logs


def test_logs_never_contain_customer_values(client, caplog):
    odd = {"age": 77, "income": 123457, "total_spending": 98765, "web_purchases": 23, "store_purchases": 11,
           "web_visits_per_month": 17, "recency_days": 313}
    with caplog.at_level(logging.DEBUG):
        client.post("/api/v1/segment", json=odd)
        client.post("/api/v1/segment/batch", json=[odd, {**odd, "age": 999}])
        client.post("/api/v1/chat", json={"message": "she is 77 and earns 123457 zebra-secret"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "batch: 2 items, 1 scored, 1 rejected" in text
    for value in ("123457", "123,457", "98765", "98,765", "999", "zebra-secret"):
        assert value not in text


# ---------------------------------------------------------------------------- OpenAPI


def test_openapi_shares_the_service_models(client):
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for name in ("CustomerProfile", "SegmentResult", "SegmentInfo", "ChatRequest", "ChatResponse"):
        assert name in schemas
    profile = schemas["CustomerProfile"]
    assert sorted(profile["required"]) == sorted(FIELD_NAMES)
    for f in FIELDS:
        prop = profile["properties"][f.name]
        assert prop["minimum"] == f.minimum and prop["maximum"] == f.maximum
    assert {"segment_key", "segment_name"} <= set(schemas["SegmentResult"]["required"])
    segment = doc["paths"]["/api/v1/segment"]["post"]
    assert segment["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/CustomerProfile")
    assert segment["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SegmentResult")
    assert segment["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    batch = doc["paths"]["/api/v1/segment/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert batch["maxItems"] == 50 and batch["items"]["$ref"].endswith("/CustomerProfile")
    assert set(doc["paths"]) >= {"/api/v1/segment", "/api/v1/segment/batch", "/api/v1/segments", "/api/v1/chat",
                                 "/healthz"}
    assert client.get("/docs").status_code == 200


# ---------------------------------------------------------------------------- properties


_values = st.one_of(st.none(), st.integers(-10**9, 10**9), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=12), st.booleans(), st.lists(st.integers(), max_size=2))
_bodies = st.dictionaries(st.sampled_from(list(FIELD_NAMES) + ["other"]), _values, max_size=9)


@hyp_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies)
def test_any_json_object_gets_200_or_a_plain_422(client, service, body):
    try:
        expected = service.label(parse_profile(body))
    except InvalidProfileError as exc:
        expected = exc
    try:
        payload = json.dumps(body, allow_nan=False)
    except ValueError:  # NaN/inf are not JSON; send them as the strings a client might send
        body = {k: (str(v) if isinstance(v, float) else v) for k, v in body.items()}
        payload = json.dumps(body)
        try:
            expected = service.label(parse_profile(body))
        except InvalidProfileError as exc:
            expected = exc
    r = client.post("/api/v1/segment", content=payload, headers={"content-type": "application/json"})
    if isinstance(expected, str):
        assert r.status_code == 200 and r.json()["segment_key"] == expected
    else:
        assert r.status_code == 422
        detail = r.json()["detail"]
        assert detail and all(isinstance(d, str) and d for d in detail)
        assert "Traceback" not in r.text


@given(profile=st.fixed_dictionaries({f.name: (st.integers(int(f.minimum), int(f.maximum)) if f.integer
                                               else st.floats(f.minimum, f.maximum)) for f in FIELDS}))
@hyp_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_valid_profile_is_segmented_like_the_service(client, service, profile):
    r = client.post("/api/v1/segment", json=profile)
    assert r.status_code == 200
    assert r.json()["segment_key"] == service.label(parse_profile(profile))


# ---------------------------------------------------------------------------- schemathesis


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_openapi_contract_holds_and_nothing_is_a_500(app, mode):
    """Schemathesis generates requests from /openapi.json for every operation (valid ones, then
    invalid ones): never a 5xx, and every answer matches its documented status and schema."""
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.config import SchemathesisConfig

    # 413 is our documented answer to a batch above the item limit: a rejection like 422
    config = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {
        "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422]}}})
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/v1/segment", "/api/v1/segment/batch", "/api/v1/chat"}
    for operation in operations:
        if mode == "negative" and operation.method.upper() == "GET":
            continue  # nothing to get wrong: the GET routes take no parameters
        strategy = operation.as_strategy(generation_mode=GenerationMode(mode))

        @hyp_settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=strategy)
        def check(case):
            response = case.call()
            assert response.status_code < 500, f"{case.method} {case.path}: {response.text}"
            if mode == "positive" or response.status_code in (413, 422):
                case.validate_response(response)

        check()


def test_segment_profile_endpoint(client, service):
    response = client.get("/api/v1/segments/vip_customers/profile")
    assert response.status_code == 200
    body = response.json()
    assert body["segment_key"] == "vip_customers" and body["segment_name"] == "VIP Customers"
    assert body["summary"] and body["evidence"]
    assert abs(body["profile"]["share"] - service.card["profiles"]["segments"]["vip_customers"]["share"]) < 1e-9
    missing = client.get("/api/v1/segments/whales/profile")
    assert missing.status_code == 404 and "whales" in missing.json()["detail"][0]
