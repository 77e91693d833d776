"""The RM page in a real browser: Debian's chromium (headless, through Playwright) against
`keepwell serve` on 127.0.0.1 (the session's `live_server`).

An RM signs in through the form, sees exactly the customers of their list file and no one else's,
marks a task done through the form (the status changes and the outcome store has it); screenshots
(laptop, full page, and tablet 820x1180) go to `test-artifacts/` at the repository root. Then with
another RM's token the first RM's page and the POST for one of its tasks answer 403.

Skipped, with the reason, only when /usr/bin/chromium is absent (`make browser` installs it).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from serving.records.outcomes import OutcomeStore

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CUSTOMER_ID = re.compile(r"\bC\d{8}\b")  # the demo bank's customer ids


@pytest.fixture(scope="module")
def browser_lists(planned):
    """The lists `keepwell plan` wrote for the serving workspace's snapshot day."""
    return planned.folder


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (run `make browser`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            viewport={"width": 1440, "height": 900},
            device_scale_factor=1,
        )
        try:
            yield context
        finally:
            context.close()


def sign_in(page, base: str, token: str) -> None:
    page.goto(f"{base}/rm")
    page.fill("#token", token)
    page.click("button:has-text('Sign in')")
    page.wait_for_load_state()


def test_rm_page_in_chromium(chromium, live_server, serving_setup, browser_lists):
    keys, base = serving_setup.keys, live_server.base
    DAY = dt.date.fromisoformat(browser_lists.name)
    file_ids = pq.read_table(browser_lists / f"{keys.rm_a_id}.parquet").column("customer_id")
    own = file_ids.to_pylist()
    other = pq.read_table(browser_lists / f"{keys.rm_b_id}.parquet").column("customer_id")
    book = serving_setup.customers.set_index("customer_id").rm_id
    csp_errors: list[str] = []
    page = chromium.new_page()
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security" in m.text else 0)

    # sign in through the form; the list of the date picked in the date picker
    sign_in(page, base, keys.rm_a)
    assert page.url.endswith(f"/rm/{keys.rm_a_id}"), page.url
    page.select_option("#date", DAY.isoformat())
    page.click("form.datepick button")
    page.wait_for_url(f"**/rm/{keys.rm_a_id}?date={DAY}")

    rows = page.locator("tr.task")
    assert [r.get_attribute("data-customer") for r in rows.all()] == own
    assert page.locator("tr.task .cid").all_inner_texts() == own
    shown = set(CUSTOMER_ID.findall(page.locator("main").inner_text()))
    assert shown == set(own)
    assert all(book[c] == keys.rm_a_id for c in shown)
    assert not shown & set(other.to_pylist())
    topbar = page.locator(".topbar").evaluate("e => getComputedStyle(e).backgroundColor")
    assert topbar == "rgb(20, 50, 79)"  # the stylesheet loaded under the CSP

    # mark the first open task done (other tests of the session may have recorded some)
    first = next(c for c in own if page.locator(f'tr[id="t-{c}"] .pill').inner_text() == "Open")
    done_before = int(re.search(r"(\d+) done", page.locator("#summary").inner_text()).group(1))
    row = page.locator(f'tr[id="t-{first}"]')
    row.locator("select[name=outcome]").select_option("reached")
    row.locator("input[name=note]").fill("Spoke about the fees; follow up next month")
    row.locator("button:has-text('Save')").click()
    page.wait_for_url(f"**/rm/{keys.rm_a_id}?date={DAY}#t-{first}")
    row = page.locator(f'tr[id="t-{first}"]')
    assert row.locator(".pill").inner_text() == "Reached"
    assert row.locator("form.record").count() == 0
    assert f"{done_before + 1} done" in page.locator("#summary").inner_text()
    store = OutcomeStore(serving_setup.workspace.path(serving_setup.config.paths.outcomes))
    stored = store.history(f"{DAY}:{first}")
    assert [(s.outcome, s.recorded_by) for s in stored] == [("reached", keys.key_ids["rm_a"])]

    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{base}/rm/{keys.rm_a_id}?date={DAY}")
    page.screenshot(path=str(ARTIFACTS / "rm_page.png"), full_page=True)
    page.set_viewport_size({"width": 820, "height": 1180})
    assert page.locator("table.tasks thead").is_hidden()  # stacked cards on a tablet
    page.screenshot(path=str(ARTIFACTS / "rm_page_tablet.png"), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 900})

    # another RM: the first RM's page and a POST for its task are 403, nothing stored
    page.click("button:has-text('Sign out')")
    page.wait_for_url(f"{base}/rm")
    sign_in(page, base, keys.rm_b)
    assert page.url.endswith(f"/rm/{keys.rm_b_id}"), page.url
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    response = page.goto(f"{base}/rm/{keys.rm_a_id}?date={DAY}")
    assert response is not None and response.status == 403
    assert not set(CUSTOMER_ID.findall(page.content())) & set(own)
    second = next(c for c in own if c != first and not store.history(f"{DAY}:{c}"))
    posted = chromium.request.post(
        f"{base}/rm/{keys.rm_a_id}/tasks/{DAY}:{second}",
        form={"outcome": "reached", "note": "", "csrf": csrf},
        max_redirects=0,
    )
    assert posted.status == 403
    assert store.history(f"{DAY}:{second}") == []
    assert csp_errors == []
    page.close()
