"""The service in process, through BentoML's ASGI app: answers, refusals, limits, audit, docs."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from serving.http.api import MAX_BODY_BYTES
from serving.records.audit import AuditLog
from serving.scoring.schemas import ErrorBody, ScoreResponse

SCORED_FIELDS = {
    "customer_id",
    "found",
    "error",
    "churn_probability",
    "complaint_probability",
    "risk_tier",
    "value_tier",
    "reasons",
    "action",
    "channel",
    "callback_due",
    "callback_rule",
    "priority",
    "model_versions",
    "features_as_of",
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def error_of(response, status: int, code: str) -> ErrorBody:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = ErrorBody.model_validate_json(response.content)
    assert body.error == code
    return body


@pytest.fixture(scope="module")
def own_ids(serving_setup, scorer) -> dict[str, list[str]]:
    """A few known customers of each test RM."""
    c, keys, known = serving_setup.customers, serving_setup.keys, set(scorer.snapshot.ids)
    return {
        rm: [i for i in c.loc[c.rm_id == rm_id, "customer_id"] if i in known][:3]
        for rm, rm_id in (("a", keys.rm_a_id), ("b", keys.rm_b_id))
    }


def test_score_answers_every_field(client, serving_setup, scorer):
    ids = scorer.snapshot.ids[:5].tolist()
    r = client.post("/score", json={"customer_ids": ids}, headers=bearer(serving_setup.keys.crm))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    results = r.json()["results"]
    assert [x["customer_id"] for x in results] == ids
    for item in results:
        assert set(item) == SCORED_FIELDS
        for field in (
            "churn_probability",
            "complaint_probability",
            "risk_tier",
            "value_tier",
            "action",
            "channel",
            "priority",
            "features_as_of",
        ):
            assert item[field] is not None, field
        assert 0 < len(item["reasons"]) <= 3
        assert set(item["reasons"][0]) == {"feature", "value", "direction", "sentence"}
        assert item["model_versions"] == scorer.model_versions
    ScoreResponse.model_validate_json(r.content)
    direct = [x.model_dump(mode="json") for x in scorer.score_ids(ids, _crm(serving_setup))]
    assert results == direct


def _crm(serving_setup):
    from serving.records.keys import KeyStore

    store = KeyStore(serving_setup.workspace.path(serving_setup.config.paths.keys))
    return store.authenticate(serving_setup.keys.crm)


def test_unknown_ids_are_reported_in_their_item(client, serving_setup, scorer):
    known = scorer.snapshot.ids[0]
    ids = ["NOBODY-7", known, "NOBODY-8"]
    r = client.post("/score", json={"customer_ids": ids}, headers=bearer(serving_setup.keys.crm))
    assert r.status_code == 200
    results = r.json()["results"]
    assert [(x["customer_id"], x["found"]) for x in results] == [
        ("NOBODY-7", False),
        (known, True),
        ("NOBODY-8", False),
    ]
    assert results[0]["error"] and results[0]["churn_probability"] is None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer kw_0123456789ab_nope"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        "revoked",
    ],
)
def test_no_valid_key_is_401(client, serving_setup, scorer, headers):
    if headers == "revoked":
        headers = bearer(serving_setup.keys.revoked)
    for path, body in (
        ("/score", {"customer_ids": [scorer.snapshot.ids[0]]}),
        ("/score/features", {"rows": []}),
    ):
        r = client.post(path, json=body, headers=headers)
        error_of(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"


def test_rm_key_gets_403_for_another_rms_customer(client, serving_setup, own_ids):
    keys = serving_setup.keys
    ok = client.post("/score", json={"customer_ids": own_ids["a"]}, headers=bearer(keys.rm_a))
    assert ok.status_code == 200 and all(x["found"] for x in ok.json()["results"])
    mixed = own_ids["a"] + own_ids["b"][:1]
    body = error_of(
        client.post("/score", json={"customer_ids": mixed}, headers=bearer(keys.rm_a)),
        403,
        "forbidden",
    )
    assert body.detail.startswith("1 of 4 customer id(s)")
    unknown = error_of(
        client.post(
            "/score", json={"customer_ids": [*own_ids["a"], "NOBODY"]}, headers=bearer(keys.rm_a)
        ),
        403,
        "forbidden",
    )
    assert unknown.detail.startswith("1 of 4 customer id(s)")  # same answer: existence not told
    assert client.post("/score", json={"customer_ids": mixed}, headers=bearer(keys.crm)).is_success


def test_oversized_body_is_413(client, serving_setup):
    ids = [f"C{i:063d}" for i in range(MAX_BODY_BYTES["/score"] // 60)]
    r = client.post("/score", json={"customer_ids": ids}, headers=bearer(serving_setup.keys.crm))
    error_of(r, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_ids": [f"C{i}" for i in range(1001)]}, "customer_ids"),
        ({"customer_ids": []}, "customer_ids"),
        ({"customer_ids": [True]}, "customer_ids.0"),
        ({"customer_ids": [12345]}, "customer_ids.0"),
        ({"customer_ids": ["C1"], "limit": 3}, "(unknown field)"),  # the key is not echoed
        ({"customer_ids": ["C1", "C1"]}, "customer_ids"),
        ({"customer_ids": ["Nia Barros"]}, "customer_ids.0"),
        ({}, "customer_ids"),
    ],
)
def test_invalid_score_request_is_422_naming_the_field(client, serving_setup, body, field):
    r = client.post("/score", json=body, headers=bearer(serving_setup.keys.crm))
    err = error_of(r, 422, "invalid_request")
    assert field in [f.field for f in err.fields]
    assert "Nia Barros" not in r.text  # a rejected value is never echoed


def test_malformed_json_is_422(client, serving_setup):
    r = client.post(
        "/score",
        content=b'{"customer_ids": [',
        headers={**bearer(serving_setup.keys.crm), "Content-Type": "application/json"},
    )
    assert error_of(r, 422, "invalid_request").fields[0].field == "(body)"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded", None]
)
def test_wrong_content_type_is_415(client, serving_setup, content_type):
    headers = bearer(serving_setup.keys.crm)
    if content_type:
        headers["Content-Type"] = content_type
    r = client.post("/score", content=b'{"customer_ids": ["C1"]}', headers=headers)
    error_of(r, 415, "unsupported_media_type")


def _feature_rows(scorer, ids: list[str]) -> list[dict]:
    """The stored features of `ids` as JSON-ready `/score/features` rows."""
    rows = scorer.snapshot.take(scorer.snapshot.positions(ids))
    kinds = {"int64": int, "boolean": bool, "float64": float}
    out = []
    for i, cid in enumerate(ids):
        record: dict = {"customer_id": cid}
        for name in scorer.row_features:
            value, dtype = rows.columns[name][i], rows.dtypes[name]
            if dtype == "string" or value is None:
                record[name] = value
            else:
                record[name] = None if np.isnan(value) else kinds[dtype](value)
        out.append(record)
    return out


def test_feature_rows_score_like_ids(client, serving_setup, scorer):
    ids = scorer.snapshot.ids[10:15].tolist()
    headers = bearer(serving_setup.keys.crm)
    by_rows = client.post(
        "/score/features", json={"rows": _feature_rows(scorer, ids)}, headers=headers
    )
    by_ids = client.post("/score", json={"customer_ids": ids}, headers=headers)
    assert by_rows.status_code == 200, by_rows.text
    assert by_rows.json() == by_ids.json()


def test_feature_rows_name_every_missing_or_out_of_range_field(client, serving_setup, scorer):
    rows = _feature_rows(scorer, scorer.snapshot.ids[:2].tolist())
    del rows[0]["txn_count_30d"]
    rows[0]["login_count_90d"] = -1
    rows[1]["aum_latest"] = True  # strict: a boolean is not a number
    rows[1]["segment"] = "gold"
    rows[1]["colour"] = "red"
    r = client.post("/score/features", json={"rows": rows}, headers=bearer(serving_setup.keys.crm))
    named = {f.field for f in error_of(r, 422, "invalid_request").fields}
    assert {
        "rows.0.txn_count_30d",
        "rows.0.login_count_90d",
        "rows.1.aum_latest",
        "rows.1.segment",
        "rows.1.(unknown field)",  # a key the caller chose is not echoed
    } <= named


def test_feature_rows_beyond_int64_are_422(client, serving_setup, scorer):
    rows = _feature_rows(scorer, scorer.snapshot.ids[:1].tolist())
    rows[0]["tenure_days"] = 2**70
    r = client.post("/score/features", json={"rows": rows}, headers=bearer(serving_setup.keys.crm))
    assert [f.field for f in error_of(r, 422, "invalid_request").fields] == ["rows.0.tenure_days"]


def test_wrong_method_and_unknown_path_get_error_bodies(client, serving_setup):
    r = client.get("/score", headers=bearer(serving_setup.keys.crm))
    error_of(r, 405, "invalid_request")
    assert r.headers["allow"] == "POST"
    error_of(client.get("/no/such/thing"), 404, "not_found")


def test_health_metrics_and_docs_are_open(client):
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    doc = client.get("/docs.json")
    assert doc.status_code == 200
    assert {"/score", "/score/features"} <= set(doc.json()["paths"])


def test_docs_page_loads_nothing_from_outside(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "googletagmanager" not in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets)
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    init = client.get("/docs/init.js").text
    assert "validatorUrl: null" in init and "http" not in init


def test_audit_log_records_each_call_with_its_outcome(client, serving_setup, own_ids):
    keys, ws = serving_setup.keys, serving_setup.workspace
    audit = AuditLog(ws.path(serving_setup.config.paths.audit_log))
    target = own_ids["b"][0]
    before = {e.call_id for e in audit.who_scored(target)}
    client.post("/score", json={"customer_ids": [target]}, headers=bearer(keys.crm))
    client.post("/score", json={"customer_ids": [target]}, headers=bearer(keys.rm_a))  # 403
    client.post("/score", json={"customer_ids": [target]}, headers=bearer(keys.rm_b))
    new = [e for e in audit.who_scored(target) if e.call_id not in before]
    seen = sorted((e.caller_key_id, e.role, e.status) for e in new)
    assert seen == sorted(
        [
            (keys.key_ids["crm"], "crm", 200),
            (keys.key_ids["rm_a"], f"rm:{keys.rm_a_id}", 403),
            (keys.key_ids["rm_b"], f"rm:{keys.rm_b_id}", 200),
        ]
    )
    assert all(e.endpoint == "/score" and e.features_as_of is not None for e in new)
    count = audit.count()
    client.post("/score", json={"customer_ids": [target]})  # 401: recorded without a caller
    last = audit.entries()[-1]
    assert audit.count() == count + 1
    assert (last.caller_key_id, last.role, last.status) == (None, None, 401)
    assert audit.verify() == audit.count()


def test_no_name_or_phone_in_answers_or_the_audit_log(client, serving_setup, scorer):
    people = pd.read_parquet(serving_setup.bank / "customers.parquet", columns=["name", "phone"])
    ids = scorer.snapshot.ids[:200].tolist()
    headers = bearer(serving_setup.keys.crm)
    texts = [
        client.post("/score", json={"customer_ids": ids}, headers=headers).text,
        client.post(
            "/score/features", json={"rows": _feature_rows(scorer, ids[:50])}, headers=headers
        ).text,
    ]
    audit = serving_setup.workspace.path(serving_setup.config.paths.audit_log)
    stored = b"".join(p.read_bytes() for p in audit.parent.glob(audit.name + "*"))
    words = set(people["name"].str.split().explode()) | set(people["phone"])
    words = {w for w in words if len(w) >= 4}
    assert len(words) > 100  # the bank has names and phone numbers to leak
    leaked = {w for w in words if any(w in t for t in texts) or w.encode() in stored}
    assert not leaked
