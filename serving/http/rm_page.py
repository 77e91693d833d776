"""The RM page: each relationship manager's daily callback list in the browser, served by the
scoring service (`serving.http.service` routes `/rm...` here; the display is
`serving.http.rm_views`).

Routes:

* `GET /rm` - the sign-in form (signed in: the RM's own list; an admin: the RMs of the newest date);
* `POST /rm/signin` (form field `token`) and `POST /rm/signout`;
* `GET /rm/<rm_id>[?date=YYYY-MM-DD]` - the list (default: the newest date), tiers, probabilities,
  reasons, rule and deadline, channel, status and a form per open task; a chart of the RM's book;
* `POST /rm/<rm_id>/tasks/<task_id>` (form: outcome, note, csrf) - store an outcome, then 303 back;
* `GET /rm/<rm_id>/tasks.json[?date=]` - the same list as JSON (`Authorization: Bearer <key>` or
  the cookie) for CRM systems; errors are the service's `ErrorBody`;
* `GET /rm/static/rm.css`.

Who sees what: an `rm:<id>` key signs in and sees only that RM's list (another RM's page, POST or
JSON is 403 and nothing is stored); an `admin` key may view any RM's list, read-only; a `crm` key
cannot sign in but may read any list as JSON. Every shown list is written to the audit log
(endpoint `/rm/<rm_id>`, the listed customer ids, the model versions of the list, features as-of)
before it is answered: seeing probabilities is "who saw whose scores". Sessions and CSRF tokens are
`serving.http.rm_session`; the list files are read strictly by `serving.planning.lists`.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from keepwell.config import load_config
from keepwell.pii import NameIndex
from keepwell.workspace import Workspace
from serving.http import rm_views as views
from serving.http.api import ENV_CONFIG, ENV_WORKSPACE, Refusal
from serving.http.paths import route_of
from serving.http.rm_http import (
    SECURITY_HEADERS,
    PageError,
    bearer_principal,
    field_problem,
    html,
    json_response,
    read_form,
    reading_lists,
    redirect,
    stylesheet,
)
from serving.http.rm_session import COOKIE, Session, SessionError, Sessions
from serving.planning.lists import DayList, ListReader, parse_day, rm_list_name
from serving.records.audit import AuditLog
from serving.records.keys import KeyStore, KeyStoreError, Principal
from serving.records.outcomes import NOTE_MAX, OutcomeError, OutcomeStore, parse_task_id

NOT_AN_RM = ("No list", "There is no such RM.")

log = logging.getLogger("keepwell.serving.rm")

RESERVED = ("signin", "signout", "static")


@dataclass(frozen=True)
class Caller:
    """The signed-in user of a page request (None: not signed in) and the cookie to send back."""

    session: Session | None
    clear_cookie: bool  # a cookie came that is no longer valid


class RMPage:
    """The RM page over a workspace's list files, keys, outcomes and audit log."""

    def __init__(
        self,
        lists: ListReader,
        keys: KeyStore,
        outcomes: OutcomeStore,
        audit: AuditLog,
        completion_target: float = 0.95,
    ):
        self.lists, self.keys, self.outcomes, self.audit = lists, keys, outcomes, audit
        self.sessions = Sessions(keys)
        self.completion_target = completion_target  # shown beside the day's completion

    @classmethod
    def from_env(cls, names: NameIndex | None = None) -> RMPage:
        """From KEEPWELL_WORKSPACE / KEEPWELL_CONFIG, as `ScoringAPI.from_env` (no model needed);
        `names`: the bank's customer names, refused in notes."""

        config = load_config(os.environ.get(ENV_CONFIG) or None)
        ws = Workspace.open(Path(os.environ.get(ENV_WORKSPACE) or "workspace"), config)
        return cls.for_workspace(ws, names)

    @classmethod
    def for_workspace(cls, ws, names: NameIndex | None = None) -> RMPage:
        paths = ws.config.paths
        return cls(
            ListReader(ws.path(paths.lists), ws.root),
            KeyStore(ws.path(paths.keys)),
            OutcomeStore(ws.path(paths.outcomes), names),
            AuditLog(ws.path(paths.audit_log)),
            ws.config.kpi.targets.callback_completion,
        )

    # -- plumbing -------------------------------------------------------------------------------
    async def _run(self, request: Request, handler: Callable[..., Response], form: bool):
        """Read the form (if any), then check the session and run `handler` on a worker thread
        (files and SQLite block), turning errors into pages."""
        try:
            fields = await read_form(request) if form else {}
        except PageError as error:
            return self._error_page(error, request, None)
        guarded = functools.partial(self._guarded, handler, request, fields)
        return await anyio.to_thread.run_sync(guarded)

    def _guarded(self, handler: Callable[..., Response], request: Request, fields: dict):
        caller = None
        try:
            caller = self._caller(request)
            return handler(request, caller, fields)
        except PageError as error:
            return self._error_page(error, request, caller)
        except Exception:  # a defect: no details to the user, the trace to the server log
            log.exception("RM page failed on %s %s", request.method, route_of(request.scope))
            error = PageError(500, "Something went wrong", "See the server log.", "unavailable")
            return self._error_page(error, request, None)

    def _caller(self, request: Request) -> Caller:
        cookie = request.cookies.get(COOKIE)
        try:
            session = self.sessions.check(cookie)
        except KeyStoreError:
            log.exception("the key store cannot be read")
            raise PageError(503, "Sign-in unavailable", "The key store cannot be read.") from None
        except SessionError as exc:
            log.error("%s", exc)
            raise PageError(503, "Sign-in unavailable", "Sessions cannot be checked.") from None
        return Caller(session, clear_cookie=bool(cookie) and session is None)

    def _error_page(self, error: PageError, request: Request, caller: Caller | None) -> Response:
        if request.url.path.endswith("/tasks.json"):
            refusal = Refusal(error.status, error.code, error.message)  # type: ignore[arg-type]
            response = json_response(refusal.body.model_dump(mode="json"), error.status)
            if error.status == 401:
                response.headers["WWW-Authenticate"] = "Bearer"
            return response
        session = caller.session if caller else None
        body = views.render(
            "message.html",
            title=error.title,
            message=error.message,
            status=error.status,
            who=session.principal if session else None,
            csrf=self.sessions.csrf(session) if session else None,
        )
        return html(body, error.status)

    def _signin_page(self, status: int, message: str | None, clear: bool = False) -> Response:
        body = views.render("signin.html", message=message, status=status)
        cookie = self.sessions.cookie_header(None, secure=False) if clear else None
        return html(body, status, cookie)

    def _require(self, caller: Caller, rm_id: str, action: str) -> Principal:
        """The signed-in principal, allowed to `action` ("view" or "record") RM `rm_id`'s list."""
        assert caller.session is not None
        principal = caller.session.principal
        if principal.rm_id is not None and principal.rm_id != rm_id:
            raise PageError(403, "Not your list", "You can only open your own callback list.")
        if principal.rm_id is None and not (principal.is_admin and action == "view"):
            raise PageError(
                403, "Read-only", "Only the RM of this list records outcomes; admins can view it."
            )
        return principal

    def _day(self, request: Request) -> dt.date:
        text = request.query_params.get("date")
        if text is not None:
            day = parse_day(text)
            if day is None:
                raise PageError(404, "No such date", "Give the date as YYYY-MM-DD.", "not_found")
            return day
        dates = self.lists.dates()
        if not dates:
            raise PageError(
                404,
                "No lists yet",
                "No callback list has been made yet: run 'keepwell plan --date YYYY-MM-DD'.",
                "not_found",
            )
        return dates[0]

    def _listing(self, day: dt.date, rm_id: str) -> DayList:
        with reading_lists():
            return self.lists.day_list(day, rm_id)

    def _audit(self, principal: Principal, endpoint: str, listing: DayList | None, status: int):
        ids = [t["customer_id"] for t in listing.tasks] if listing else []
        try:
            self.audit.record(
                principal.key_id,
                principal.role,
                endpoint,
                ids,
                listing.model_versions if listing else {},
                listing.features_as_of if listing else None,
                status,
            )
        except Exception:
            log.exception("the audit log cannot be written")
            raise PageError(
                503,
                "Audit log unavailable",
                "The audit log cannot be written, so the list is not shown; try again.",
                "unavailable",
            ) from None

    def _statuses(self, listing: DayList) -> dict[str, views.Status]:
        return views.statuses(self.outcomes.latest(rm_id=listing.rm_id, list_dates=[listing.day]))

    # -- routes ---------------------------------------------------------------------------------
    async def home(self, request: Request) -> Response:
        return await self._run(request, self._home, form=False)

    def _home(self, request: Request, caller: Caller, _: dict) -> Response:
        if caller.session is None:
            message = (
                "Your session has ended; please sign in again." if caller.clear_cookie else None
            )
            return self._signin_page(200, message, clear=caller.clear_cookie)
        principal = caller.session.principal
        if principal.rm_id is not None:
            return redirect(f"/rm/{quote(principal.rm_id)}")
        dates = self.lists.dates()
        load = []
        if dates:
            with reading_lists():
                load = self.lists.summary(dates[0])["rm_load"]
        body = views.render(
            "index.html",
            day=dates[0] if dates else None,
            rms=load,
            csrf=self.sessions.csrf(caller.session),
            who=principal,
        )
        return html(body)

    async def signin(self, request: Request) -> Response:
        return await self._run(request, self._signin, form=True)

    def _signin(self, request: Request, caller: Caller, form: dict) -> Response:
        try:
            principal = self.keys.authenticate(form.get("token", "").strip())
        except KeyStoreError:
            log.exception("the key store cannot be read")
            raise PageError(503, "Sign-in unavailable", "The key store cannot be read.") from None
        if principal is None:
            return self._signin_page(401, "That token is not valid or has been revoked.", True)
        if principal.rm_id is None and not principal.is_admin:
            return self._signin_page(
                403, "This key is for systems, not for the RM page: use your RM token.", True
            )
        session = self.sessions.issue(principal)
        cookie = self.sessions.cookie_header(session, secure=request.url.scheme == "https")
        target = f"/rm/{quote(principal.rm_id)}" if principal.rm_id else "/rm"
        return redirect(target, cookie)

    async def signout(self, request: Request) -> Response:
        return await self._run(request, self._signout, form=True)

    def _signout(self, request: Request, caller: Caller, form: dict) -> Response:
        return redirect("/rm", self.sessions.cookie_header(None, secure=False))

    async def stylesheet(self, request: Request) -> Response:
        response = Response(stylesheet(), media_type="text/css; charset=utf-8")
        response.headers.update(SECURITY_HEADERS)
        return response

    async def page(self, request: Request) -> Response:
        return await self._run(request, self._page, form=False)

    def _page(self, request: Request, caller: Caller, _: dict) -> Response:
        rm_id = request.path_params["rm_id"]
        if rm_id in RESERVED:
            return redirect("/rm")
        if caller.session is None:
            message = (
                "Your session has ended; please sign in again."
                if caller.clear_cookie
                else "Please sign in to see this list."
            )
            return self._signin_page(401, message, clear=caller.clear_cookie)
        if not rm_list_name(rm_id):  # before the audit: the endpoint text names a valid id only
            raise PageError(404, *NOT_AN_RM, "not_found")
        try:
            principal = self._require(caller, rm_id, "view")
        except PageError as refused:
            # a refusal is audited by the route's template: the id may be no RM's at all
            self._audit(caller.session.principal, "/rm/{rm_id}", None, refused.status)
            raise
        day = self._day(request)
        listing = self._listing(day, rm_id)
        status = self._statuses(listing)
        self._audit(principal, f"/rm/{rm_id}", listing, 200)  # before anything is shown
        body = views.render(
            "list.html",
            rm_id=rm_id,
            day=day,
            day_long=views.long_day(day),
            dates=self.lists.dates()[:90],
            tasks=[views.task_view(t, status.get(t["task_id"], views.OPEN)) for t in listing.tasks],
            counts=views.counts(listing, status),
            completion_target=self.completion_target,
            chart=views.book_chart(listing.portfolio),
            features_as_of=listing.features_as_of,
            can_record=principal.rm_id == rm_id,
            csrf=self.sessions.csrf(caller.session),
            who=principal,
            note_max=NOTE_MAX,
        )
        return html(body)

    async def record(self, request: Request) -> Response:
        return await self._run(request, self._record, form=True)

    def _record(self, request: Request, caller: Caller, form: dict) -> Response:
        rm_id, task = request.path_params["rm_id"], request.path_params["task_id"]
        if not rm_list_name(rm_id):
            raise PageError(404, *NOT_AN_RM, "not_found")
        if caller.session is None:
            return self._signin_page(401, "Please sign in again; nothing was saved.", True)
        if not self.sessions.csrf_ok(caller.session, form.get("csrf")):
            raise PageError(
                403,
                "Form expired",
                "This form did not come from your current page; reload the list and try again. "
                "Nothing was saved.",
                "forbidden",
            )
        principal = self._require(caller, rm_id, "record")
        try:
            day, _ = parse_task_id(task)
        except OutcomeError:
            raise PageError(404, "No such task", "There is no such task.", "not_found") from None
        listing = self._listing(day, rm_id)
        row = next((t for t in listing.tasks if t["task_id"] == task), None)
        if row is None:
            raise PageError(404, "No such task", "That task is not on your list.", "not_found")
        outcome, note = form.get("outcome", ""), form.get("note", "")
        problem = field_problem(outcome, note, self.outcomes.names)
        if problem:
            raise PageError(422, "Not saved", problem)
        try:
            self.outcomes.record(
                task,
                rm_id=rm_id,
                rule=row["rule"],
                outcome=outcome,
                recorded_by=principal.key_id,
                note=note or None,
            )
        except OutcomeError as exc:
            raise PageError(422, "Not saved", str(exc)) from None
        return redirect(f"/rm/{quote(rm_id)}?date={day.isoformat()}#t-{quote(row['customer_id'])}")

    async def tasks_json(self, request: Request) -> Response:
        return await self._run(request, self._tasks_json, form=False)

    def _tasks_json(self, request: Request, caller: Caller, _: dict) -> Response:
        rm_id = request.path_params["rm_id"]
        if not rm_list_name(rm_id):  # before the key and the audit: the path is never recorded
            raise PageError(404, "No list", "there is no such RM", "not_found")
        principal = (
            caller.session.principal
            if caller.session is not None and "authorization" not in request.headers
            else bearer_principal(self.keys, request)
        )
        if principal.rm_id is not None and principal.rm_id != rm_id:
            self._audit(principal, "/rm/{rm_id}/tasks.json", None, 403)  # the template, as above
            raise PageError(403, "Forbidden", "an RM key reads only its own list", "forbidden")
        listing = self._listing(self._day(request), rm_id)
        status = self._statuses(listing)
        self._audit(principal, f"/rm/{rm_id}/tasks.json", listing, 200)
        return json_response(views.list_json(listing, status))
