"""Issue 19 on the in-process service: path parameters validated before the audit, no echoed
values in error bodies, the day folder's auxiliary files are no RM, readiness follows the audit
log, charsets other than UTF-8 are refused."""

from __future__ import annotations

import datetime as dt
import shutil

import pandas as pd
import pytest

from serving.http import routes
from serving.records.audit import AuditLog
from tests.serving.http.test_rm_page import new_client, sign_in, write_lists

DAY = dt.date(2031, 4, 7)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def audit_of(serving_setup) -> AuditLog:
    return AuditLog(serving_setup.workspace.path(serving_setup.config.paths.audit_log))


@pytest.fixture(scope="module")
def aux_day(serving_setup):
    """A day folder with the planner's auxiliary files beside the lists."""
    root = serving_setup.workspace.path(serving_setup.config.paths.lists)
    write_lists(root, DAY, serving_setup.bank, [serving_setup.keys.rm_a_id])
    folder = root / DAY.isoformat()
    for name in ("holdout", "deferred"):  # not list files: no list columns
        pd.DataFrame({"customer_id": ["C1"], "reason": ["x"]}).to_parquet(
            folder / f"{name}.parquet"
        )
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("rm", ["Hana Tanaka +44 7700-90-08 23", "Cara_Fischer", "a b"])
def test_rm_json_path_is_validated_before_anything_is_audited(client, serving_setup, rm):
    audit, since = audit_of(serving_setup), dt.datetime.now(dt.UTC)
    for key in (serving_setup.keys.rm_a, serving_setup.keys.crm):
        r = client.get(f"/rm/{rm}/tasks.json", headers=bearer(key))
        assert r.status_code in (403, 404) and r.json()["error"] in ("not_found", "forbidden")
        assert rm not in r.text
    endpoints = [e.endpoint for e in audit.entries(since=since)]
    assert not [e for e in endpoints if "Tanaka" in e or "Fischer" in e or " " in e], endpoints


@pytest.mark.parametrize("name", ["book_mix", "holdout", "deferred"])
def test_auxiliary_files_are_no_rm(client, serving_setup, aux_day, name):
    keys = serving_setup.keys
    for key in (keys.crm, keys.admin):
        r = client.get(f"/rm/{name}/tasks.json?date={DAY}", headers=bearer(key))
        assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
        assert ".parquet" not in r.text and "column" not in r.text
    admin = sign_in(client, keys.admin)
    page = admin.get(f"/rm/{name}?date={DAY}")
    assert page.status_code == 404 and ".parquet" not in page.text and "column" not in page.text


def test_score_errors_name_the_field_without_echoing_values(client, serving_setup):
    crm = bearer(serving_setup.keys.crm)
    r = client.post(
        "/score", json={"customer_ids": ["447700900692", "Cara_Fischer"] * 2}, headers=crm
    )
    assert r.status_code == 422 and "customer_ids" in r.text
    assert "447700900692" not in r.text and "Cara_Fischer" not in r.text
    r = client.post("/score", json={"customer_ids": ["C1"], "Hana Tanaka": 1}, headers=crm)
    assert r.status_code == 422 and "Hana" not in r.text
    r = client.post("/score", content=b"{}", headers={**crm, "Content-Type": "text/hana-tanaka"})
    assert r.status_code == 415 and "hana" not in r.text.lower()


@pytest.mark.parametrize("charset", ["utf-16", "latin-1", "UTF-32"])
def test_a_charset_other_than_utf8_is_415_json(client, serving_setup, charset):
    headers = {
        **bearer(serving_setup.keys.crm),
        "Content-Type": f"application/json; charset={charset}",
    }
    r = client.post("/score", content=b'{"customer_ids": ["C1"]}', headers=headers)
    assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"
    headers["Content-Type"] = "application/json; charset=UTF-8"
    ok = client.post("/score", content=b'{"customer_ids": ["C1"]}', headers=headers)
    assert ok.status_code == 200


def test_readiness_follows_the_audit_log(client, serving_setup, tmp_path):
    assert client.get("/readyz").status_code == 200
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    bound = routes.HANDLERS.http
    saved = bound.audit
    bound.audit = AuditLog(blocker / "audit.sqlite")  # cannot be created: its folder is a file
    try:
        assert client.get("/readyz").status_code >= 500
    finally:
        bound.audit = saved
    assert client.get("/readyz").status_code == 200


def test_a_failed_write_reopens_the_audit_connection(tmp_path):
    import sqlite3

    log = AuditLog(tmp_path / "audit.sqlite")
    log.record("k", "crm", "/score", ["C1"], {}, None, 200)
    log.close()
    # what a worker kept when the file was read-only as it opened it
    log._conn = sqlite3.connect(f"file:{log.path}?mode=ro", uri=True, check_same_thread=False)
    import os

    log._pid = os.getpid()
    with pytest.raises(sqlite3.OperationalError):
        log.record("k", "crm", "/score", ["C2"], {}, None, 200)
    assert log.record("k", "crm", "/score", ["C3"], {}, None, 200) == 2  # reopened
    assert log.verify() == 2
    log._conn = sqlite3.connect(f"file:{log.path}?mode=ro", uri=True, check_same_thread=False)
    assert not log.writable(max_age=0) and log.writable(max_age=0)


def test_note_with_a_customers_name_is_refused_on_the_page(client, serving_setup, aux_day):
    keys = serving_setup.keys
    customers = pd.read_parquet(serving_setup.bank / "customers.parquet", columns=["name"])
    name = customers.name.dropna().iloc[11]
    rm_a = sign_in(client, keys.rm_a)
    page = rm_a.get(f"/rm/{keys.rm_a_id}?date={DAY}").text
    import re

    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    task = re.findall(r'action="/rm/[^/"]+/tasks/([^"]+)"', page)[0]
    r = rm_a.post(
        f"/rm/{keys.rm_a_id}/tasks/{task}",
        data={"outcome": "reached", "note": f"{name} prefers evenings", "csrf": csrf},
    )
    assert r.status_code == 422 and "Field &#39;note&#39;" in r.text and name not in r.text
    assert new_client(client) is not None
