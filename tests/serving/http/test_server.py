"""The real thing: `keepwell serve` starts BentoML on 127.0.0.1, it scores, and it shuts down.

The server is the session's `live_server` (tests/fixtures/serving.py): started with
`python -m cli serve` on a free port, stopped (and checked to be gone) at the end
of the session. KEEPWELL_SKIP_SERVER_TEST=1 skips it where BentoML cannot start.
"""

from __future__ import annotations

import subprocess
import sys

import httpx


def test_keepwell_serve_scores_on_loopback(live_server, serving_setup, scorer):
    ids = [scorer.snapshot.ids[0], "NOBODY"]
    headers = {"Authorization": f"Bearer {serving_setup.keys.crm}"}
    url = f"{live_server.base}/score"
    r = httpx.post(url, json={"customer_ids": ids}, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert [x["found"] for x in r.json()["results"]] == [True, False]
    assert httpx.post(url, json={"customer_ids": ids}, timeout=30).status_code == 401
    metrics = httpx.get(f"{live_server.base}/metrics", timeout=10)
    assert metrics.status_code == 200 and "bentoml" in metrics.text
    log = live_server.log.read_text()
    assert f"listening on http://127.0.0.1:{live_server.port}" in log
    assert "Serving keepwell-churn v" in log  # the setup check ran before BentoML started


def test_multipart_without_boundary_is_415_not_500(live_server, serving_setup):
    headers = {
        "Authorization": f"Bearer {serving_setup.keys.crm}",
        "Content-Type": "multipart/form-data",
    }
    r = httpx.post(f"{live_server.base}/score", content=b"--x\r\n", headers=headers, timeout=30)
    assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"


def test_keepwell_serve_stops_with_the_command_to_run(tmp_path):
    """Nothing trained yet: exit 1 before BentoML starts, naming the commands to run."""
    run = subprocess.run(
        [sys.executable, "-m", "cli", "--workspace", str(tmp_path), "serve"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "DO_NOT_TRACK": "1", "HOME": str(tmp_path)},
    )
    message = " ".join(run.stderr.split())  # rich wraps long lines
    assert run.returncode == 1, message
    assert "no model registry" in message
    assert "`keepwell train`" in message and "`keepwell promote`" in message
