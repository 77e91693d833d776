"""The RM page in process (the service's ASGI app): sign-in, own list only, outcomes, CSRF,
sessions, errors, headers, audit and no PII. Until the planner writes lists, `write_lists` writes
a list folder in its documented format (<rm_id>.parquet and .csv, summary.json, book_mix.parquet).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keepwell.contract.report import mask_value
from keepwell.io import atomic_dir
from serving.http.rm_http import SECURITY_HEADERS
from serving.http.rm_session import COOKIE, SECRET_BYTES, Sessions, _b64
from serving.planning.lists import LIST_COLUMNS, ListReader
from serving.records.audit import AuditLog
from serving.records.outcomes import OutcomeStore

DAY = dt.date(2031, 3, 3)  # Monday; far from the planner tests' dates
EARLIER = dt.date(2031, 2, 28)
BROKEN = dt.date(2031, 1, 6)  # a folder whose list file misses a column
VERSIONS = "churn:1,complaint:1"
RULE_CYCLE = ("complaint_response", "post_sale", "quarterly", "risk", "risk", "risk", "risk")
CHANNEL = {"hnw": "rm_call", "retail": "call_centre", "institutional": "visit"}
BY = ("rule", "value_tier", "risk_tier", "channel")
REASONS = (
    "Transactions fell by 40 % over the last 90 days.",
    "A complaint is still open after 9 days.",
    "Logged in to the app twice in 90 days, against 30 before.",
)


def write_lists(
    lists_root: Path, day: dt.date, bank: Path, rm_ids: list[str], per_rm: int = 6
) -> dict[str, pd.DataFrame]:
    """A list folder for `day` in the planner's format: `per_rm` tasks for each of `rm_ids` (their
    first customers by id), summary.json and book_mix.parquet over every customer of the bank."""
    columns = ["customer_id", "rm_id", "branch_id", "segment", "phone", "disabled"]
    customers = pd.read_parquet(bank / "customers.parquet", columns=columns)
    customers = customers.sort_values("customer_id", ignore_index=True)
    digests = [hashlib.sha256(c.encode()).digest() for c in customers.customer_id]
    customers["value_tier"] = [("VIP", "Priority", "Standard")[d[0] % 3] for d in digests]
    customers["risk_tier"] = [("High", "Medium", "Low")[d[1] % 3] for d in digests]
    lists: dict[str, pd.DataFrame] = {}
    for rm_id in rm_ids:
        b = customers[customers.rm_id == rm_id].head(per_rm).reset_index(drop=True)
        i = np.arange(len(b))
        rules = [RULE_CYCLE[k % len(RULE_CYCLE)] for k in i]
        churn = np.round(0.62 - 0.05 * i, 4)
        hours = pd.to_timedelta(np.where(i == 1, -30, 17), unit="h")  # rank 2 is overdue
        complaint = f"complaint opened {day - dt.timedelta(days=1)}"
        lists[rm_id] = pd.DataFrame(
            {
                "rank": i + 1,
                "task_id": f"{day}:" + b.customer_id,
                "list_date": day,
                "rm_id": rm_id,
                "branch_id": b.branch_id,
                "customer_id": b.customer_id,
                "phone_masked": [mask_value("phone", p) for p in b.phone],
                "segment": b.segment,
                "rule": rules,
                "rules": [r if r == "risk" else f"{r},risk" for r in rules],
                "deadline": (pd.Timestamp(day, tz="UTC") + hours).as_unit("us"),
                "overdue": i == 1,
                "carried_from": [day - dt.timedelta(days=3) if k == 4 else None for k in i],
                "channel": b.segment.map(CHANNEL),
                "special_care": b.disabled.astype(bool) | (i == 2),
                "value_tier": b.value_tier,
                "risk_tier": b.risk_tier,
                "churn_probability": churn,
                "complaint_probability": np.round(0.31 - 0.03 * i, 4),
                "rank_score": np.round(churn * 25_000, 2),
                "action": "RM call today: retention conversation",
                "reasons": " | ".join(REASONS),
                "detail": [complaint if r.startswith("complaint") else None for r in rules],
                "model_versions": VERSIONS,
            },
            columns=list(LIST_COLUMNS),
        )
    tasks = pd.concat(lists.values())
    summary = {
        "date": day.isoformat(),
        "features_as_of": (day - dt.timedelta(days=1)).isoformat(),
        "rank_by": "value_at_risk",
        "model_versions": {"churn": "1", "complaint": "1"},
        "customers": len(customers),
        "rms": len(lists),
        "tasks": len(tasks),
        **{f"by_{c}": tasks[c].value_counts().to_dict() for c in BY},
        "special_care": int(tasks.special_care.sum()),
        "carried_over": int(tasks.carried_from.notna().sum()),
        **dict.fromkeys(("held_out", "dropped_by_capacity", "overloaded_rms"), 0),
        "rm_load": [
            {"rm_id": rm_id, "branch_id": x.branch_id.iloc[0], "capacity": 25, "tasks": len(x)}
            | {"mandatory": int((x.rule != "risk").sum()), "risk": int((x.rule == "risk").sum())}
            | {"special_care": int(x.special_care.sum()), "load": round(len(x) / 25, 3)}
            for rm_id, x in lists.items()
        ],
    }
    book_mix = customers.groupby(["rm_id", "value_tier", "risk_tier"]).size()
    with atomic_dir(lists_root / day.isoformat()) as tmp:
        for rm_id, frame in lists.items():
            frame.to_parquet(tmp / f"{rm_id}.parquet", index=False)
            frame.to_csv(tmp / f"{rm_id}.csv", index=False)
        book_mix.rename("customers").reset_index().to_parquet(tmp / "book_mix.parquet")
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return lists


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lists(serving_setup):
    """Lists of RMs a and b (and one other RM) for DAY and EARLIER, and a broken folder."""
    root = serving_setup.workspace.path(serving_setup.config.paths.lists)
    keys = serving_setup.keys
    rms = serving_setup.customers.rm_id.value_counts().index.tolist()
    written = write_lists(root, DAY, serving_setup.bank, [keys.rm_a_id, keys.rm_b_id, rms[2]])
    write_lists(root, EARLIER, serving_setup.bank, [keys.rm_a_id], per_rm=3)
    write_lists(root, BROKEN, serving_setup.bank, [keys.rm_a_id], per_rm=2)
    broken = root / BROKEN.isoformat() / f"{keys.rm_a_id}.parquet"
    pq.write_table(pq.read_table(broken).drop_columns(["reasons"]), broken)
    yield written
    for day in (DAY, EARLIER, BROKEN):
        shutil.rmtree(root / day.isoformat(), ignore_errors=True)


def new_client(client):
    """A client of the same in-process service with its own cookie jar (one browser each)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    return TestClient(client.app, raise_server_exceptions=False, follow_redirects=False)


def sign_in(client, key: str):
    browser = new_client(client)
    r = browser.post("/rm/signin", data={"token": key})
    assert r.status_code == 303, r.text
    return browser


def csrf_of(page_html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page_html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def shown_customers(page_html: str) -> list[str]:
    return re.findall(r'data-customer="([^"]+)"', page_html)


def list_page(browser, rm_id: str, day: dt.date = DAY):
    return browser.get(f"/rm/{rm_id}?date={day}")


def post_outcome(browser, rm_id: str, task: str, **form: str):
    return browser.post(f"/rm/{rm_id}/tasks/{task}", data=form)


def row_of(page_html: str, customer_id: str) -> str:
    return page_html[page_html.index(f'id="t-{customer_id}"') :].split("</tr>")[0]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def outcomes(serving_setup) -> OutcomeStore:
    return OutcomeStore(serving_setup.workspace.path(serving_setup.config.paths.outcomes))


@pytest.fixture(scope="module")
def keys(serving_setup):
    return serving_setup.keys


@pytest.fixture(scope="module")
def rm_a(client, serving_setup, lists):
    return sign_in(client, serving_setup.keys.rm_a)


@pytest.fixture(scope="module")
def rm_b(client, serving_setup, lists):
    return sign_in(client, serving_setup.keys.rm_b)


# -- sign-in ---------------------------------------------------------------------------------
def test_signin_form_and_security_headers(client, lists):
    r = new_client(client).get("/rm")
    assert r.status_code == 200
    assert re.search(r'<input id="token" name="token" type="password"', r.text)
    assert '<meta name="viewport"' in r.text
    for name, value in SECURITY_HEADERS.items():
        assert r.headers[name] == value
    assert r.headers["content-security-policy"].startswith("default-src 'none'; style-src 'self'")
    assert "<script" not in r.text and "style=" not in r.text
    css = new_client(client).get("/rm/static/rm.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "@media (max-width: 1099px)" in css.text  # stacked cards on tablets


def test_rm_key_signs_in_with_a_signed_cookie(client, keys, lists):
    r = new_client(client).post("/rm/signin", data={"token": keys.rm_a})
    assert r.status_code == 303 and r.headers["location"] == f"/rm/{keys.rm_a_id}"
    cookie = r.headers["set-cookie"]
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/rm", "Max-Age=28800"):
        assert flag in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    secret = keys.rm_a.split("_", 2)[2]  # kw_<key id>_<secret>; the secret may hold "_" too
    assert secret and keys.rm_a not in value and secret not in value


@pytest.mark.parametrize("key", ["not-a-key", "revoked", "crm"])
def test_refused_keys_get_the_form_again(client, keys, lists, key):
    browser = new_client(client)
    r = browser.post("/rm/signin", data={"token": getattr(keys, key, key)})
    status, message = (403, "for systems, not") if key == "crm" else (401, "not valid or has been")
    assert r.status_code == status and message in r.text and 'name="token"' in r.text
    assert keys.rm_a_id not in r.text  # nothing about which ids exist
    assert COOKIE not in browser.cookies
    assert browser.get(f"/rm/{keys.rm_a_id}").status_code == 401


def test_tampered_cookie_is_signed_out(client, serving_setup, lists):
    browser = sign_in(client, serving_setup.keys.rm_a)
    value = browser.cookies[COOKIE]
    body, mac = value.split(".")
    forged = {"k": "x", "r": f"rm:{serving_setup.keys.rm_b_id}", "e": 4_000_000_000, "s": "0"}
    forgeries = (f"{body}.{mac[:-2]}AA", f"{body[:-2]}x{body[-1]}.{mac}", f"{body}.")
    for bad in (*forgeries, _b64(json.dumps(forged).encode()) + "." + mac):
        browser.cookies.clear()
        browser.cookies.set(COOKIE, bad, domain="testserver.local", path="/rm")
        r = browser.get(f"/rm/{serving_setup.keys.rm_a_id}?date={DAY}")
        assert r.status_code == 401 and 'name="token"' in r.text and "session has ended" in r.text
        assert f"{COOKIE}=;" in r.headers["set-cookie"]  # the bad cookie is deleted


def test_a_revoked_keys_session_stops_working(client, serving_setup, lists):
    from serving.records.keys import KeyStore

    store = KeyStore(serving_setup.workspace.path(serving_setup.config.paths.keys))
    key_id, key = store.create(f"rm:{serving_setup.keys.rm_a_id}", label="test revoke session")
    browser = sign_in(client, key)
    assert list_page(browser, serving_setup.keys.rm_a_id).status_code == 200
    store.revoke(key_id)
    r = list_page(browser, serving_setup.keys.rm_a_id)
    assert r.status_code == 401 and "session has ended" in r.text


def test_sessions_expire_and_their_secret_is_created_once(tmp_path, keys, serving_setup):
    from concurrent.futures import ThreadPoolExecutor

    from serving.http.rm_session import SessionError, load_or_create_secret
    from serving.records.keys import KeyStore, Principal

    sessions = Sessions(KeyStore(serving_setup.workspace.path(serving_setup.config.paths.keys)))
    principal = Principal(keys.key_ids["rm_a"], f"rm:{keys.rm_a_id}", keys.rm_a_id)
    start = dt.datetime(2031, 1, 1, 8, tzinfo=dt.UTC)
    session = sessions.issue(principal, now=start)
    assert sessions.check(session.cookie, now=start + dt.timedelta(hours=7, minutes=59))
    assert sessions.check(session.cookie, now=start + dt.timedelta(hours=8)) is None
    assert sessions.csrf_ok(session, sessions.csrf(session))
    assert not sessions.csrf_ok(session, sessions.csrf(sessions.issue(principal, now=start)))
    path = tmp_path / "keys" / "session.secret"
    with ThreadPoolExecutor(8) as pool:  # workers starting together agree on one secret
        secrets = set(pool.map(lambda _: load_or_create_secret(path), range(16)))
    assert len(secrets) == 1 and len(next(iter(secrets))) == SECRET_BYTES
    assert path.stat().st_mode & 0o777 == 0o600 and list(path.parent.iterdir()) == [path]
    path.chmod(0o644)
    with pytest.raises(SessionError, match="readable by other users"):
        load_or_create_secret(path)


# -- the list --------------------------------------------------------------------------------
def test_own_list_shows_every_row_in_rank_order(rm_a, keys, lists, serving_setup):
    r = rm_a.get(f"/rm/{keys.rm_a_id}?date={DAY}")
    assert r.status_code == 200, r.text
    expected = lists[keys.rm_a_id]
    assert shown_customers(r.text) == expected.customer_id.tolist()
    assert not set(shown_customers(r.text)) & set(lists[keys.rm_b_id].customer_id)
    first = expected.iloc[0]
    shown = "Complaint: first response|Overdue|Special care|Carried over from 2031-02-28|<svg|"
    shown += "RM call today: retention conversation|6 tasks · 0 done · 1 overdue|capacity 25 a day"
    for text in [first.phone_masked, "62 %", "31 %", *REASONS, *shown.split("|")]:
        assert text in r.text, text  # 62 % and 31 %: the probabilities of rank 1
    assert f'<option value="{EARLIER}">' in r.text  # the date picker
    assert r.text.count('class="record"') == len(expected)  # one form per open task
    book = serving_setup.customers.rm_id.eq(keys.rm_a_id).sum()
    assert f"· {book:,} customers" in r.text
    for name, value in SECURITY_HEADERS.items():
        assert r.headers[name] == value
    assert "<script" not in r.text and "style=" not in r.text  # the CSP would block them
    assert "http:" not in r.text and "https:" not in r.text  # nothing external
    newest = ListReader(serving_setup.workspace.path(serving_setup.config.paths.lists)).dates()[0]
    r = rm_a.get(f"/rm/{keys.rm_a_id}")  # the newest list by default
    assert r.status_code == 200 and f'<option value="{newest}" selected>' in r.text
    r = list_page(rm_a, keys.rm_a_id, EARLIER)
    assert shown_customers(r.text) == lists[keys.rm_a_id].customer_id[:3].tolist()


def test_another_rms_list_is_403_and_nothing_is_stored(rm_a, rm_b, keys, lists, serving_setup):
    page = rm_b.get(f"/rm/{keys.rm_a_id}?date={DAY}")
    assert page.status_code == 403 and "only open your own" in page.text
    assert not [c for c in lists[keys.rm_a_id].customer_id if c in page.text]
    csrf = csrf_of(list_page(rm_b, keys.rm_b_id).text)
    task = lists[keys.rm_a_id].task_id[0]
    assert post_outcome(rm_b, keys.rm_a_id, task, outcome="reached", csrf=csrf).status_code == 403
    assert outcomes(serving_setup).history(task) == []
    api = rm_b.get(f"/rm/{keys.rm_a_id}/tasks.json?date={DAY}", headers=bearer(keys.rm_b))
    assert api.status_code == 403 and api.json()["error"] == "forbidden"
    assert not [c for c in lists[keys.rm_a_id].customer_id if c in api.text]


def test_marking_done_stores_the_outcome_and_shows_it(rm_a, keys, lists, serving_setup):
    row = lists[keys.rm_a_id].iloc[2]
    csrf, note = csrf_of(list_page(rm_a, keys.rm_a_id).text), "Call back after the holiday"
    r = post_outcome(rm_a, keys.rm_a_id, row.task_id, outcome="reached", note=note, csrf=csrf)
    assert r.status_code == 303
    assert r.headers["location"] == f"/rm/{keys.rm_a_id}?date={DAY}#t-{row.customer_id}"
    stored = outcomes(serving_setup).latest(rm_id=keys.rm_a_id, list_dates=[DAY])
    mine = stored[stored.task_id == row.task_id].iloc[0]
    assert mine.outcome == "reached" and mine.done and mine.rule == row.rule
    assert mine.recorded_by == keys.key_ids["rm_a"] and mine.note == note
    after = list_page(rm_a, keys.rm_a_id).text
    cell = row_of(after, row.customer_id)
    assert "pill-done" in cell and "Reached" in cell and 'class="record"' not in cell
    assert "1 done" in after


def test_no_answer_keeps_the_task_open(rm_a, keys, lists):
    row = lists[keys.rm_a_id].iloc[3]
    csrf = csrf_of(list_page(rm_a, keys.rm_a_id).text)
    r = post_outcome(rm_a, keys.rm_a_id, row.task_id, outcome="no_answer", csrf=csrf)
    assert r.status_code == 303
    cell = row_of(list_page(rm_a, keys.rm_a_id).text, row.customer_id)
    assert "No answer · still open" in cell and 'class="record"' in cell
    tasks = rm_a.get(f"/rm/{keys.rm_a_id}/tasks.json?date={DAY}").json()["tasks"]
    task = next(t for t in tasks if t["task_id"] == row.task_id)
    assert task["status"] == "open" and task["outcome"] == "no_answer"


def test_csrf_missing_or_wrong_is_403(rm_a, rm_b, keys, lists, serving_setup):
    task = lists[keys.rm_a_id].task_id[4]
    other = csrf_of(list_page(rm_b, keys.rm_b_id).text)
    for form in ({}, {"csrf": "x"}, {"csrf": other}):
        r = post_outcome(rm_a, keys.rm_a_id, task, outcome="reached", **form)
        assert r.status_code == 403 and "Nothing was saved" in r.text
    assert outcomes(serving_setup).history(task) == []


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"outcome": "called"}, "outcome"),
        ({"outcome": ""}, "outcome"),
        ({"outcome": "reached", "note": "x" * 201}, "note"),
        ({"outcome": "reached", "note": "new number 0612 345 678"}, "note"),
        ({"outcome": "reached", "note": "mail her at someone@example.com"}, "note"),
    ],
)
def test_bad_outcome_or_note_is_422_naming_the_field(rm_a, keys, lists, form, field, serving_setup):
    task = lists[keys.rm_a_id].task_id[5]
    csrf = csrf_of(list_page(rm_a, keys.rm_a_id).text)
    r = post_outcome(rm_a, keys.rm_a_id, task, **form, csrf=csrf)
    assert r.status_code == 422 and f"Field &#39;{field}&#39;" in r.text
    assert outcomes(serving_setup).history(task) == []


def test_a_task_not_on_the_list_is_404(rm_a, keys, lists, serving_setup):
    csrf = csrf_of(list_page(rm_a, keys.rm_a_id).text)
    other = lists[keys.rm_b_id].customer_id[0]
    for task in (f"{DAY}:{other}", f"{DAY}:NOBODY", "not-a-task"):
        r = post_outcome(rm_a, keys.rm_a_id, task, outcome="reached", csrf=csrf)
        assert r.status_code == 404, task
    assert outcomes(serving_setup).history(f"{DAY}:{other}") == []


def test_no_name_or_unmasked_phone_on_any_page(rm_a, client, serving_setup, lists):
    pii = pd.read_parquet(serving_setup.bank / "customers.parquet", columns=["name", "phone"])
    admin = sign_in(client, serving_setup.keys.admin)
    pages = [
        rm_a.get(f"/rm/{serving_setup.keys.rm_a_id}?date={DAY}").text,
        rm_a.get(f"/rm/{serving_setup.keys.rm_a_id}/tasks.json?date={DAY}").text,
        admin.get(f"/rm/{serving_setup.keys.rm_b_id}?date={DAY}").text,
        admin.get("/rm").text,
    ]
    phones = {p for p in pii.phone if p} | {re.sub(r"\D", "", p) for p in pii.phone if p}
    names = {n for n in pii.name if n and len(n) > 3}
    for text in pages:
        assert not [p for p in phones if p in text]
        assert not [n for n in names if n in text]


def test_viewing_a_list_is_audited(rm_a, keys, lists, serving_setup):
    audit = AuditLog(serving_setup.workspace.path(serving_setup.config.paths.audit_log))
    since = dt.datetime.now(dt.UTC)
    assert rm_a.get(f"/rm/{keys.rm_a_id}?date={DAY}").status_code == 200
    entry = [e for e in audit.entries(since=since) if e.endpoint == f"/rm/{keys.rm_a_id}"][-1]
    assert entry.caller_key_id == keys.key_ids["rm_a"] and entry.role == f"rm:{keys.rm_a_id}"
    assert entry.customer_ids == tuple(sorted(lists[keys.rm_a_id].customer_id))
    assert entry.model_versions == {"churn": "1", "complaint": "1"}
    assert entry.features_as_of == DAY - dt.timedelta(days=1) and entry.status == 200


def test_an_admin_views_any_rm_read_only(client, keys, lists, serving_setup):
    admin = new_client(client)
    r = admin.post("/rm/signin", data={"token": keys.admin})
    assert r.status_code == 303 and r.headers["location"] == "/rm"
    index = admin.get("/rm")
    assert index.status_code == 200 and f"/rm/{keys.rm_b_id}?date=" in index.text
    for rm_id in (keys.rm_a_id, keys.rm_b_id):
        page = admin.get(f"/rm/{rm_id}?date={DAY}")
        assert page.status_code == 200
        assert shown_customers(page.text) == lists[rm_id].customer_id.tolist()
        assert 'class="record"' not in page.text and "read-only" in page.text
    task = lists[keys.rm_b_id].task_id[0]
    r = post_outcome(admin, keys.rm_b_id, task, outcome="reached", csrf=csrf_of(page.text))
    assert r.status_code == 403
    assert outcomes(serving_setup).history(task) == []


def test_unknown_rm_or_date_is_404_with_a_helpful_message(client, rm_a, serving_setup, lists):
    admin = sign_in(client, serving_setup.keys.admin)
    r = admin.get(f"/rm/NOBODY?date={DAY}")
    assert r.status_code == 404 and "no list for this RM" in r.text and "NOBODY" not in r.text
    r = rm_a.get(f"/rm/{serving_setup.keys.rm_a_id}?date=2031-03-04")
    assert r.status_code == 404 and "no list for that date" in r.text and str(DAY) in r.text
    assert "2031-03-04" not in r.text  # what the caller sent is not echoed
    assert rm_a.get(f"/rm/{serving_setup.keys.rm_a_id}?date=yesterday").status_code == 404
    audit = AuditLog(serving_setup.workspace.path(serving_setup.config.paths.audit_log))
    since = dt.datetime.now(dt.UTC)
    assert rm_a.get("/rm/Jane%20Doe").status_code == 404  # not an id: refused before the audit
    assert not [e for e in audit.entries(since=since) if " " in e.endpoint]


def test_a_broken_list_file_is_503_naming_the_file_and_column_in_the_log_only(
    rm_a, serving_setup, lists, caplog
):
    with caplog.at_level("ERROR", logger="keepwell.serving.rm"):
        r = rm_a.get(f"/rm/{serving_setup.keys.rm_a_id}?date={BROKEN}")
    assert r.status_code == 503 and "Lists unavailable" in r.text
    assert ".parquet" not in r.text and "reasons" not in r.text  # no path, no column list
    assert f"lists/{BROKEN}/{serving_setup.keys.rm_a_id}.parquet has no column" in caplog.text


def test_tasks_json_for_crm_systems(client, keys, lists):
    api = new_client(client)
    url = f"/rm/{keys.rm_a_id}/tasks.json?date={DAY}"
    r = api.get(url, headers=bearer(keys.crm))
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    data = r.json()
    assert data["rm_id"] == keys.rm_a_id and data["date"] == DAY.isoformat()
    assert [t["customer_id"] for t in data["tasks"]] == lists[keys.rm_a_id].customer_id.tolist()
    assert data["tasks"][0]["reasons"] == list(REASONS)
    assert data["tasks"][0]["deadline"] == f"{DAY}T17:00:00Z"
    assert {t["status"] for t in data["tasks"]} <= {"open", "done"}
    assert api.get(url).status_code == 401
    r = api.get(url, headers=bearer(keys.revoked))
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    r = api.get(f"/rm/{keys.rm_a_id}/tasks.json?date=2031-03-04", headers=bearer(keys.rm_a))
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def _rewrite(path: Path, column: str, values) -> None:
    table = pq.read_table(path)
    i = table.schema.get_field_index(column)
    pq.write_table(table.set_column(i, column, pa.array(values)), path)


def test_the_reader_refuses_what_the_page_must_not_show(tmp_path, serving_setup):
    from serving.planning.lists import ListFormatError

    rm = serving_setup.keys.rm_a_id
    written = write_lists(tmp_path / "lists", DAY, serving_setup.bank, [rm], per_rm=3)[rm]
    reader = ListReader(tmp_path / "lists", tmp_path)
    path = tmp_path / "lists" / DAY.isoformat() / f"{rm}.parquet"
    _rewrite(path, "detail", pa.nulls(3))  # an all-null optional column is fine
    assert [t["customer_id"] for t in reader.day_list(DAY, rm).tasks] == list(written.customer_id)
    phone = "+44 7700 900982"
    _rewrite(path, "phone_masked", [phone, "***01", "***02"])
    with pytest.raises(ListFormatError, match="row 1, column 'phone_masked'") as raised:
        reader.day_list(DAY, rm)
    assert phone not in str(raised.value)
    _rewrite(path, "phone_masked", ["***00", "***01", "***02"])
    _rewrite(path, "rank", pa.array([1, 3, 2], pa.int64()))
    with pytest.raises(ListFormatError, match=f"lists/{DAY}/{rm}.parquet: row 2, column 'rank'"):
        reader.day_list(DAY, rm)
