"""Against the real server (`live_server`): what a caller sends never reaches `/metrics`, the access
log, the audit log or a stored note (issue 19, items 1-3 and the must-show).

`/metrics` labels requests by route template (`serving.http.paths`); the access log is ours and
names the template too; the RM JSON route validates its path before anything is audited; notes
are checked against the bank's names and the number and e-mail rules of `keepwell.pii`.
"""

from __future__ import annotations

import random
import re
import sqlite3
import string
from urllib.parse import quote

import httpx
import pandas as pd
import pytest

UNKNOWN_PATHS = 2000


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _metrics(base: str) -> str:
    r = httpx.get(f"{base}/metrics", timeout=30)
    assert r.status_code == 200
    return r.text


def test_metrics_are_labelled_by_route_template_and_stay_bounded(live_server, serving_setup):
    base = live_server.base
    customer = serving_setup.customers.customer_id.iloc[7]
    rm_id = serving_setup.keys.rm_a_id
    with httpx.Client(base_url=base, timeout=30) as c:
        c.post(f"/rm/{rm_id}/tasks/2026-01-01:{customer}", data={"outcome": "reached"})
        c.get(f"/rm/{rm_id}/tasks.json", headers=bearer(serving_setup.keys.crm))
        for _ in range(20):  # warm every series once before measuring
            c.get("/no/such/warm-up")
        before = len(_metrics(base))
        rng = random.Random(19)
        for _ in range(UNKNOWN_PATHS):
            word = "".join(rng.choices(string.ascii_letters + string.digits, k=24))
            assert c.get(f"/{word}/{customer}/{rng.randrange(10**9)}").status_code == 404
    after = _metrics(base)
    growth = (len(after) - before) / before
    print(
        f"/metrics: {before} bytes before, {len(after)} after {UNKNOWN_PATHS} unknown paths "
        f"({growth:+.2%})"
    )
    assert growth < 0.10, (before, len(after))
    assert customer not in after and "warm-up" not in after
    assert 'endpoint="unmatched"' in after
    assert 'endpoint="/rm/{rm_id}/tasks/{task_id}"' in after
    assert 'endpoint="/rm/{rm_id}/tasks.json"' in after


# the variants of issue 19 item 3 and more: numbers and e-mail written round a filter
PHONE_AND_MAIL = [
    "+44 7700-90-08 23",
    "06.12.34.56.78",
    "j.smith(at)example.com",
    "j.smith＠example.com",
    "a @ b.com",
    "call 0612 345 678",
    "(020) 7946 0958",
    "+4915123456789",
    "ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ",
    "jo [at] bank dot com",
]


def _bank_pii(serving_setup) -> tuple[set[str], set[str]]:
    pii = pd.read_parquet(serving_setup.bank / "customers.parquet", columns=["name", "phone"])
    names = {n for n in pii.name if n}
    phones = {p for p in pii.phone if p}
    return names, phones | {re.sub(r"\D", "", p) for p in phones}


def _sqlite_text(path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(
            "|".join(str(v) for v in row)
            for t in tables
            for row in conn.execute(f"SELECT * FROM {t}")
        )
    finally:
        conn.close()


def test_no_name_or_phone_reaches_audit_access_log_metrics_or_notes(
    live_server, serving_setup, planned
):
    keys, ws, config = serving_setup.keys, serving_setup.workspace, serving_setup.config
    names, phones = _bank_pii(serving_setup)
    customers = pd.read_parquet(
        serving_setup.bank / "customers.parquet", columns=["customer_id", "rm_id", "name", "phone"]
    )
    own = customers[customers.rm_id == keys.rm_a_id].head(3)
    sent = [*PHONE_AND_MAIL, *own.name, *own.phone, f"{own.name.iloc[0]} prefers evenings"]
    log_start = live_server.log.stat().st_size
    base = live_server.base
    with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as c:
        for value in sent:
            q = quote(value, safe="")
            for key in (keys.rm_a, keys.crm, keys.admin):
                c.get(f"/rm/{q}/tasks.json", headers=bearer(key))  # item 2: the raw path
                c.get(f"/rm/{q}/tasks.json?date={q}", headers=bearer(key))
            c.get(f"/{q}")
            c.get(f"/rm/{q}?date={q}")
            c.post(f"/rm/{keys.rm_a_id}/tasks/{q}", data={"outcome": "reached", "note": value})
            c.get("/docs", params={"q": value, value: value})
            c.post("/score", json={"customer_ids": [value, value]}, headers=bearer(keys.crm))
            c.post("/score", json={"customer_ids": ["C1"], value: 1}, headers=bearer(keys.crm))
            c.post(
                "/score",
                json={"customer_ids": [value]},
                headers={
                    **bearer(keys.rm_a),
                    "X-Customer": quote(value),
                    "User-Agent": quote(value),
                },
            )
        # notes, through the real form of the RM's real list
        signed = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
        assert signed.post("/rm/signin", data={"token": keys.rm_a}).status_code == 303
        page = signed.get(f"/rm/{keys.rm_a_id}?date={planned.day}")
        assert page.status_code == 200, page.text[:500]
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        tasks = re.findall(r'action="/rm/[^/"]+/tasks/([^"]+)"', page.text)
        assert tasks, "the planned list of RM a has open tasks"
        for value in sent:
            r = signed.post(
                f"/rm/{keys.rm_a_id}/tasks/{tasks[0]}",
                data={"outcome": "reached", "note": f"spoke to them, {value}", "csrf": csrf},
            )
            assert r.status_code == 422, (value, r.status_code)
            assert value not in r.text  # the refusal does not echo the note
        ok = signed.post(
            f"/rm/{keys.rm_a_id}/tasks/{tasks[0]}",
            data={
                "outcome": "reached",
                "note": "call back after 14:30 on 2026-01-05",
                "csrf": csrf,
            },
        )
        assert ok.status_code == 303
        signed.close()
        metrics = c.get("/metrics").text
    access_log = live_server.log.read_bytes()[log_start:].decode("utf-8", "replace")
    assert "path=/rm/{rm_id}/tasks.json" in access_log  # the access log is on, by template
    places = {
        "audit log": _sqlite_text(ws.path(config.paths.audit_log)),
        "outcomes": _sqlite_text(ws.path(config.paths.outcomes)),
        "access log": access_log,
        "/metrics": metrics,
    }
    assert "call back after 14:30" in places["outcomes"]  # a note without personal data is kept
    for place, text in places.items():
        folded = text.casefold()
        leaked_names = [n for n in names if n.casefold() in folded]
        leaked_phones = [p for p in phones if len(re.sub(r"\D", "", p)) >= 7 and p in text]
        leaked_sent = [v for v in sent if v in text or quote(v, safe="") in text]
        assert not leaked_names and not leaked_phones and not leaked_sent, (
            place,
            leaked_names[:3],
            leaked_phones[:3],
            leaked_sent[:3],
        )


@pytest.mark.parametrize("path", ["/rm/%0Aabc", "/x%0Ay", "/score%00"])
def test_a_control_character_in_the_path_is_a_json_404(live_server, path):
    r = httpx.get(f"{live_server.base}{path}", timeout=10)
    assert r.status_code == 404 and r.json()["error"] == "not_found"


@pytest.mark.parametrize("path", ["/score", "/rm/signin"])
def test_a_stalled_body_is_408_json_within_seconds(live_server, serving_setup, path):
    import json
    import socket
    import time

    limit = 5.0  # serving.http.paths.BODY_READ_TIMEOUT (literal: the test runs on old code too)

    media = "application/json" if path == "/score" else "application/x-www-form-urlencoded"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {media}\r\n"
        f"Authorization: Bearer {serving_setup.keys.crm}\r\nContent-Length: 100\r\n\r\n"
    )
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=30) as s:
        s.sendall(head.encode() + b'{"customer')  # and then nothing
        data = b""
        while b"\r\n\r\n" not in data:  # the status line and headers
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        waited = time.monotonic() - started
        if path == "/score":
            length = int(re.search(rb"content-length: (\d+)", data, re.I).group(1))
            while len(data.split(b"\r\n\r\n", 1)[1]) < length:
                data += s.recv(65536)
    status_line, _, rest = data.partition(b"\r\n")
    assert b" 408 " in status_line, data[:300]
    assert limit - 0.5 < waited < limit + 5  # not BentoML's 30 s traffic timeout
    if path == "/score":
        assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["error"] == "request_timeout"
