"""The desk's web application (Starlette): pages rendered on the server with Jinja2, the board kept live by
server-sent events, actions as plain form posts, uploads by tus.

Every request that changes something needs a logged-in user of the right role, the session's CSRF token (form
field ``csrf`` or header ``X-CSRF-Token``) and, when the browser sends one, an Origin of this site. Every
response carries a Content-Security-Policy that allows no inline script.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..pipeline.config import LANES, ServeConfig
from ..pipeline.errors import ConfigError, LedgerError, OnetakeError
from ..pipeline.inbox import retry_job
from ..pipeline.ledger import Job, Ledger
from ..pipeline.watch import QC_OVERRIDE
from .auth import (
    ANONYMOUS,
    LoginLimiter,
    User,
    check_password,
    check_role,
    check_user_name,
    hash_password,
    same,
    token_hash,
)
from .sniff import SNIFF_BYTES
from .uploads import UploadRefused, UploadStore, parse_metadata
from .views import BoardQuery, asset_view, board_rows, board_summary, delivery_file, farm_view

HERE = Path(__file__).parent
SESSION_COOKIE = "onetake_session"
LOGIN_COOKIE = "onetake_login"
TUS_VERSION = "1.0.0"
KEEPALIVE_S = 15.0
CHANGE_POLL_S = 0.25
RENDERED_KEPT = 64  # board renderings kept for live connections that show the same filters
WRITE_BYTES = 2**20  # an upload's bytes go to disk in writes of about this size
PASSWORD_CHECKS = 2  # argon2id checks at once: each takes 64 MiB and a core, and logins are few
PUBLIC_STREAMS_PER_ADDRESS = 4  # live boards one address may hold open where the board is public
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; frame-src 'self'; "
       "frame-ancestors 'self'; base-uri 'none'; form-action 'self'; object-src 'none'")
# the analysis report is self-contained HTML with inline styles and data: posters; it runs nothing
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; frame-ancestors 'self'"
for _ext, _type in ((".m3u8", "application/vnd.apple.mpegurl"), (".m4s", "video/iso.segment"),
                    (".vtt", "text/vtt"), (".mxf", "application/mxf")):
    mimetypes.add_type(_type, _ext)


class Refused(Exception):
    """A request answered with ``status`` and one line that says why and what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Changes:
    """Wakes the live board whenever the ledger changes (another connection committed)."""

    ledger_path: str
    version: int = 0
    event: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def watch(self) -> None:
        ledger = Ledger(self.ledger_path)  # one PRAGMA a poll: cheap enough for the event loop's thread
        seen = None
        while True:
            current = ledger.data_version()
            if current != seen:
                seen = current
                self.version += 1
                self.event.set()
                self.event = asyncio.Event()
            await asyncio.sleep(CHANGE_POLL_S)

    async def wait(self, version: int, timeout: float) -> int:
        if self.version == version:
            event = self.event
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except TimeoutError:
                pass
        return self.version


class Desk:
    """What every request handler shares."""

    def __init__(self, ledger_path: str, serve: ServeConfig, upload_inbox: str | None, require: str = "none") -> None:
        self.ledger_path = ledger_path
        self.serve = serve
        self.local = threading.local()
        self.limiter = LoginLimiter(serve.login_attempts, serve.login_window_s)
        self.store = UploadStore(upload_inbox, serve.upload_expiry_h * 3600, require) if upload_inbox else None
        self.upload_locks: dict[str, asyncio.Lock] = {}
        self.password_checks = asyncio.Semaphore(PASSWORD_CHECKS)
        self.public_streams: dict[str, int] = {}  # live boards open without a login, by address
        self.changes = Changes(ledger_path)
        self.rendered: OrderedDict[tuple[BoardQuery, int], asyncio.Future[dict[str, str]]] = OrderedDict()
        self.templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                                     autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
        self.templates.filters["clock"] = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""
        self.templates.filters["urlpath"] = lambda p: quote(p)

    def ledger(self) -> Ledger:
        """This thread's connection to the ledger (SQLite connections stay in the thread that made them)."""
        ledger = getattr(self.local, "ledger", None)
        if ledger is None:
            ledger = self.local.ledger = Ledger(self.ledger_path)
        return ledger

    def render(self, template: str, request: Request | None = None, **context: Any) -> str:
        return self.templates.get_template(template).render(request=request, lanes=LANES, **context)

    async def db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await run_in_threadpool(lambda: fn(self.ledger(), *args))

    # ------------------------------------------------------------------------------------------------- who

    async def session(self, request: Request) -> tuple[User | None, str]:
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token:
            return None, ""
        found = await self.db(lambda ledger: ledger.session(token_hash(token)))
        if found is None:
            return None, ""
        return User(found["name"], found["role"], found["upload_limit"]), found["csrf"]

    async def viewer(self, request: Request, *, board: bool = False) -> User:
        """The user looking, or the anonymous read-only user where the board is public."""
        user, _ = await self.session(request)
        if user is not None:
            return user
        if board and self.serve.public_board:
            return ANONYMOUS
        raise Refused(401, "log in to see this page")

    async def member(self, request: Request, role: str, what: str) -> tuple[User, str]:
        """The user opening a page that needs ``role`` (for ``what``), and the session's CSRF token."""
        user, csrf = await self.session(request)
        if user is None:
            raise Refused(401, f"log in for {what}")
        if not user.may(role):
            raise Refused(403, f"{what} needs the {role} role; {user.name} is a {user.role}")
        return user, csrf

    async def actor(self, request: Request, role: str, what: str) -> tuple[User, dict[str, str]]:
        """The user making a change, after the session, CSRF and role checks; the form's fields."""
        user, csrf = await self.session(request)
        if user is None:
            raise Refused(401, "log in first; your session has ended or you never logged in")
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise Refused(403, f"refused: this request came from another site ({origin})")
        form: dict[str, str] = {}
        token = request.headers.get("x-csrf-token", "")
        if request.method == "POST" and "form" in request.headers.get("content-type", ""):
            form = await small_form(request)
            token = token or form.get("csrf", "")
        if not same(token, csrf):
            raise Refused(403, "refused: the form's CSRF token is missing or stale; reload the page and try again")
        if not user.may(role):
            raise Refused(403, f"refused: {what} needs the {role} role; {user.name} is a {user.role}. Ask an operator")
        return user, form


FORM_BYTES = 64 * 1024  # a desk form is a few fields: anything larger is refused before it is read


async def small_form(request: Request) -> dict[str, str]:
    """A URL-encoded form of at most FORM_BYTES, read only once its headers say so (a multipart body would be
    spooled to disk, by anyone, before any check)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise Refused(415, "send the form as application/x-www-form-urlencoded")
    try:
        size = int(request.headers.get("content-length", ""))
    except ValueError:
        raise Refused(411, "send the form with a Content-Length") from None
    if size > FORM_BYTES:
        raise Refused(413, f"the form is {size:,} bytes; a desk form is at most {FORM_BYTES:,}")
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


def job_id_of(request: Request) -> int:
    """The job id of the path (a number the ledger can hold, else no such job)."""
    job_id = int(request.path_params["job_id"])
    if not 0 < job_id < 2**63:
        raise Refused(404, f"no job {job_id}")
    return job_id


def secure_cookie(request: Request, serve: ServeConfig) -> bool:
    return serve.secure_cookies == "always" or (serve.secure_cookies == "auto" and request.url.scheme == "https")


def safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


# ------------------------------------------------------------------------------------------------------- app


def create_app(ledger_path: str, serve: ServeConfig, upload_inbox: str | None = None,
               require: str = "none") -> Starlette:
    """The desk on ``ledger_path``; uploads land in ``upload_inbox``, with the marker its watcher ``require``s."""
    desk = Desk(ledger_path, serve, upload_inbox, require)

    def page(status: int, html: str, headers: dict[str, str] | None = None) -> HTMLResponse:
        # what a logged-in page shows stays out of shared and browser caches
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})

    async def refused(request: Request, exc: Refused) -> Response:
        if exc.status == 401 and request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(f"/login?next={quote(safe_next(request.url.path + '?' + request.url.query))}",
                                    status_code=303)
        if "text/html" in request.headers.get("accept", ""):
            user, csrf = await desk.session(request)
            return page(exc.status, desk.render("error.html", request, user=user, csrf=csrf, message=str(exc),
                                                status=exc.status))
        return PlainTextResponse(str(exc) + "\n", status_code=exc.status)

    async def onetake_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, LedgerError) and str(exc).startswith("no job"):  # its message names the ledger's path
            return await refused(request, Refused(404, "no such job in the ledger"))
        return await refused(request, Refused(400 if isinstance(exc, ConfigError) else 409, str(exc)))

    # --------------------------------------------------------------------------------------------- login

    async def login_form(request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        html = desk.render("login.html", request, user=None, csrf=token, next=safe_next(request.query_params.get(
            "next", "/")), message=request.query_params.get("message", ""))
        response = page(200, html)
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login",
                            secure=secure_cookie(request, serve))
        return response

    async def login(request: Request) -> Response:
        form = await small_form(request)
        if not same(form.get("csrf", ""), request.cookies.get(LOGIN_COOKIE, "")):
            raise Refused(403, "refused: the login form is stale; reload it and try again")
        name, password = form.get("name", "").strip(), form.get("password", "")
        address = request.client.host if request.client else "?"
        keys = [f"user:{name.lower()}", f"addr:{address}"]
        wait = desk.limiter.blocked_for(keys)
        if wait > 0:
            raise Refused(429, f"too many failed logins; try again in {int(wait) + 1} s")
        desk.limiter.failed(keys)  # counted before the check: guesses sent at once cannot all slip past the limit
        async with desk.password_checks:  # each check takes 64 MiB and a core (argon2id): a few at a time
            user = await desk.db(check_password, name, password)
        if user is None:
            html = desk.render("login.html", request, user=None, csrf=form.get("csrf", ""),
                               next=safe_next(form.get("next", "/")), message="wrong name or password")
            return page(401, html)
        desk.limiter.succeeded(keys[:1])
        desk.limiter.forgive(keys[1:])  # the address's attempt that was counted, and was right
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        lifetime = serve.session_hours * 3600
        await desk.db(lambda ledger: ledger.add_session(token_hash(token), user.name, csrf, lifetime))
        response = RedirectResponse(safe_next(form.get("next", "/")), status_code=303)
        response.set_cookie(SESSION_COOKIE, token, max_age=int(lifetime), httponly=True, samesite="lax",
                            secure=secure_cookie(request, serve))
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    async def logout(request: Request) -> Response:
        await desk.actor(request, "viewer", "logging out")
        token = request.cookies.get(SESSION_COOKIE, "")
        await desk.db(lambda ledger: ledger.end_session(token_hash(token)))
        response = RedirectResponse("/login?message=logged+out", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # --------------------------------------------------------------------------------------------- board

    def board_fragments(query: BoardQuery) -> dict[str, str]:
        ledger = desk.ledger()
        return {"rows": desk.render("_rows.html", board=board_rows(ledger, query, serve.page_size)),
                "summary": desk.render("_summary.html", summary=board_summary(ledger), query=query),
                "farm": desk.render("_farm.html", farm=farm_view(ledger))}

    async def shared_fragments(query: BoardQuery, version: int) -> dict[str, str]:
        """The fragments of ``query`` at ledger ``version``, rendered once for every live board showing them."""
        key = (query, version)
        pending = desk.rendered.get(key)
        if pending is None:
            pending = desk.rendered[key] = asyncio.ensure_future(run_in_threadpool(board_fragments, query))
            while len(desk.rendered) > RENDERED_KEPT:
                desk.rendered.popitem(last=False)
        return await pending

    async def board(request: Request) -> Response:
        user = await desk.viewer(request, board=True)
        _, csrf = await desk.session(request)
        query = BoardQuery.parse(request.query_params)
        fragments = await run_in_threadpool(board_fragments, query)
        inboxes = await desk.db(lambda ledger: ledger.inboxes())
        return page(200, desk.render("board.html", request, user=user, csrf=csrf, query=query, inboxes=inboxes,
                                     fragments=fragments, events=f"/events?{query.query_string()}"))

    async def events(request: Request) -> Response:
        user = await desk.viewer(request, board=True)
        query = BoardQuery.parse(request.query_params)
        address = request.client.host if request.client else "?"
        anonymous = user is ANONYMOUS
        if anonymous and desk.public_streams.get(address, 0) >= PUBLIC_STREAMS_PER_ADDRESS:
            raise Refused(429, f"at most {PUBLIC_STREAMS_PER_ADDRESS} live boards per address without a login")

        async def stream() -> AsyncIterator[str]:
            if anonymous:
                desk.public_streams[address] = desk.public_streams.get(address, 0) + 1
            try:
                yield "retry: 2000\n\n"
                async for part in updates():
                    yield part
            finally:
                if anonymous:
                    desk.public_streams[address] -= 1
                    if not desk.public_streams[address]:
                        del desk.public_streams[address]

        async def updates() -> AsyncIterator[str]:
            sent: dict[str, str] = {}
            version = -1
            while True:
                version = await desk.changes.wait(version, KEEPALIVE_S)
                fragments = await shared_fragments(query, version)
                out = []
                for name, html in fragments.items():
                    if sent.get(name) != html:
                        sent[name] = html
                        out.append(f"event: {name}\n" + "".join(f"data: {line}\n" for line in html.splitlines())
                                   + "\n")
                yield "".join(out) or ": still here\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    # --------------------------------------------------------------------------------------------- asset

    async def job_page(request: Request) -> Response:
        user = await desk.viewer(request)
        _, csrf = await desk.session(request)
        job_id = job_id_of(request)
        view = await desk.db(lambda ledger: asset_view(ledger, ledger.get(job_id)))
        return page(200, desk.render("asset.html", request, user=user, csrf=csrf, **view))

    async def asset_page(request: Request) -> Response:
        await desk.viewer(request)
        jobs = await desk.db(lambda ledger: ledger.for_asset(request.path_params["asset_id"]))
        if not jobs:
            raise Refused(404, f"no job made the asset {request.path_params['asset_id']}")
        return RedirectResponse(f"/jobs/{jobs[0].id}", status_code=303)

    async def delivery(request: Request) -> Response:
        await desk.viewer(request)
        job_id, channel, path = (job_id_of(request), request.path_params["channel"],
                                 request.path_params["path"])
        job = await desk.db(lambda ledger: ledger.get(job_id))
        found = await run_in_threadpool(delivery_file, job, channel, path)
        if found is None or not found.is_file():
            raise Refused(404, f"{path}: not a file of job {job_id}'s {channel} delivery")
        headers = {"Cache-Control": "private, max-age=3600"}
        if found.name == "report.html":
            headers["Content-Security-Policy"] = REPORT_CSP
        return FileResponse(found, headers=headers)

    # --------------------------------------------------------------------------------------------- actions

    def act(role: str, what: str, do: Callable[[Ledger, Job, User, str], str], reason_required: bool = False) \
            -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            user, form = await desk.actor(request, role, what)
            job_id = job_id_of(request)
            reason = form.get("reason", "").strip()[:500]
            if reason_required and not reason:
                raise Refused(400, f"{what} needs a reason: say why, for the audit log")

            def run(ledger: Ledger) -> None:
                job = ledger.get(job_id)
                try:
                    detail = do(ledger, job, user, reason)
                except OSError as exc:
                    raise Refused(409, f"{what} of job {job_id} could not move its file ({exc.strerror}: "
                                       f"{exc.filename}); check the inbox folders") from exc
                ledger.audit(user.name, what, job_id=job.id, asset_id=job.asset_id, detail=detail, reason=reason)

            await desk.db(run)
            return RedirectResponse(f"/jobs/{job_id}", status_code=303)
        return handler

    def do_retry(ledger: Ledger, job: Job, user: User, reason: str) -> str:
        path = retry_job(ledger, job.id)
        return f"queued again from {path}"

    def do_cancel(ledger: Ledger, job: Job, user: User, reason: str) -> str:
        ledger.cancel(job.id)
        return f"was {job.state}"

    def do_urgent(ledger: Ledger, job: Job, user: User, reason: str) -> str:
        if job.lane == "urgent":
            raise ConfigError(f"job {job.id} is in the urgent lane already")
        ledger.set_lane(job.id, "urgent")
        return f"lane {job.lane} -> urgent"

    def do_force(ledger: Ledger, job: Job, user: User, reason: str) -> str:
        if job.state != "failed" or job.kind != "watch":
            raise ConfigError(f"job {job.id} is a {job.state} {job.kind} job; only a failed watch-folder job can be "
                              f"delivered anyway")
        ledger.update_metadata(job.id, {QC_OVERRIDE: {"mode": "warn", "by": user.name, "reason": reason}})
        path = retry_job(ledger, job.id)
        return f"queued again from {path} with qc = warn: channels that fail their QC rules are delivered"

    # --------------------------------------------------------------------------------------------- uploads

    def tus_headers(**extra: str) -> dict[str, str]:
        return {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store", **extra}

    def store() -> UploadStore:
        if desk.store is None:
            raise Refused(404, "uploads are off: this desk has no inbox to put them in ([serve] upload_inbox)")
        return desk.store

    def limit_of(user: User) -> int:
        return user.upload_limit or serve.upload_limit_mb * 2**20

    async def upload_page(request: Request) -> Response:
        user, csrf = await desk.member(request, "editor", "uploading")
        return page(200, desk.render("upload.html", request, user=user, csrf=csrf, enabled=desk.store is not None,
                                     chunk=serve.upload_chunk_kib * 1024, limit_mb=limit_of(user) // 2**20))

    async def tus_options(request: Request) -> Response:
        return Response(status_code=204, headers=tus_headers(**{"Tus-Version": TUS_VERSION,
                                                                "Tus-Extension": "creation,termination",
                                                                "Tus-Max-Size": str(serve.upload_limit_mb * 2**20)}))

    def tus_version(request: Request) -> None:
        if request.headers.get("tus-resumable") != TUS_VERSION:
            raise UploadRefused(412, f"send Tus-Resumable: {TUS_VERSION}")

    async def upload_owned(request: Request, user: User) -> tuple[UploadStore, Any, int]:
        uploads = store()
        upload, offset = await run_in_threadpool(uploads.get, request.path_params["upload_id"])
        if upload.user != user.name and not user.may("operator"):
            raise UploadRefused(404, "no such upload")
        return uploads, upload, offset

    async def tus_create(request: Request) -> Response:
        user, _ = await desk.actor(request, "editor", "uploading")
        tus_version(request)
        try:
            length = int(request.headers.get("upload-length", ""))
        except ValueError:
            raise UploadRefused(400, "send Upload-Length: the file's size in bytes") from None
        if length <= 0:
            raise UploadRefused(400, "the file is empty; choose the clip itself")
        if length > limit_of(user):
            raise UploadRefused(413, f"the file is {length / 2**20:,.0f} MiB; {user.name} may upload up to "
                                     f"{limit_of(user) / 2**20:,.0f} MiB at once. Ask an operator for a larger limit")
        metadata = parse_metadata(request.headers.get("upload-metadata", ""))
        upload = await run_in_threadpool(store().create, user.name, length, metadata)
        return Response(status_code=201, headers=tus_headers(Location=f"/uploads/{upload.id}"))

    async def tus_head(request: Request) -> Response:
        user, _ = await desk.session(request)
        if user is None or not user.may("editor"):
            raise UploadRefused(403, "log in as an editor to upload")
        uploads, upload, offset = await upload_owned(request, user)
        if offset:
            await run_in_threadpool(uploads.resumed, upload)
        return Response(status_code=200, headers=tus_headers(**{"Upload-Offset": str(offset),
                                                                "Upload-Length": str(upload.length)}))

    async def tus_patch(request: Request) -> Response:
        user, _ = await desk.actor(request, "editor", "uploading")
        tus_version(request)
        if request.headers.get("content-type") != "application/offset+octet-stream":
            raise UploadRefused(415, "send the bytes as Content-Type: application/offset+octet-stream")
        try:
            offset = int(request.headers.get("upload-offset", ""))
        except ValueError:
            raise UploadRefused(400, "send Upload-Offset: where these bytes start") from None
        await upload_owned(request, user)  # an upload of this user's: no lock for an id made up
        lock = desk.upload_locks.setdefault(request.path_params["upload_id"], asyncio.Lock())
        if lock.locked():
            raise UploadRefused(423, "this upload is receiving bytes in another request; wait for it")
        async with lock:
            uploads, upload, current = await upload_owned(request, user)
            if offset != current:
                raise UploadRefused(409, f"Upload-Offset {offset} does not match the {current} bytes received; "
                                         f"ask with HEAD where to go on")
            received = offset
            sniff_at = min(SNIFF_BYTES, upload.length)
            with uploads.open_for_append(upload, offset) as handle:
                pending = bytearray()  # written a MiB at a time, off the event loop (a slow disk stalls no page)

                async def store() -> None:
                    if pending:
                        await run_in_threadpool(handle.write, bytes(pending))
                        pending.clear()

                cut = False
                try:
                    try:
                        async for chunk in request.stream():
                            if received + len(chunk) > upload.length:
                                raise UploadRefused(400, f"more bytes than the Upload-Length {upload.length} "
                                                         f"announced")
                            pending += chunk
                            received += len(chunk)
                            sniff = not upload.media and received >= sniff_at
                            if len(pending) >= WRITE_BYTES or sniff:
                                await store()
                            if sniff:
                                await run_in_threadpool(handle.flush)
                                await run_in_threadpool(uploads.check_head, upload)
                    except ClientDisconnect:
                        cut = True
                    await store()  # after a cut too: what arrived is kept, and the sender resumes from there
                except OSError as exc:
                    raise UploadRefused(507, f"the desk cannot store the upload ({exc.strerror}); tell an "
                                             f"operator, then resume") from exc
                if cut:
                    return Response(status_code=204)
            if received == upload.length:  # landed while the lock is held: a second final PATCH finds no upload
                try:
                    target = await run_in_threadpool(uploads.land, upload)
                except OSError as exc:
                    raise UploadRefused(507, f"the upload is complete but cannot be put into the inbox "
                                             f"({exc.strerror}); tell an operator") from exc
                detail = (f"uploaded {target.name} ({upload.length:,} bytes, {upload.media}) into "
                          f"{target.parent}; resumed {upload.resumes} time(s)")
                await desk.db(lambda ledger: ledger.audit(user.name, "upload", detail=detail,
                                                          reason=upload.sidecar.get("title", "")))
                desk.upload_locks.pop(upload.id, None)
        return Response(status_code=204, headers=tus_headers(**{"Upload-Offset": str(received)}))

    async def tus_delete(request: Request) -> Response:
        user, _ = await desk.actor(request, "editor", "cancelling an upload")
        uploads, upload, _ = await upload_owned(request, user)
        await run_in_threadpool(uploads.delete, upload.id)
        return Response(status_code=204, headers=tus_headers())

    async def upload_refused(request: Request, exc: UploadRefused) -> Response:
        return PlainTextResponse(str(exc) + "\n", status_code=exc.status, headers=tus_headers())

    # --------------------------------------------------------------------------------------------- users

    async def users_page(request: Request) -> Response:
        user, csrf = await desk.member(request, "operator", "managing users")
        users = await desk.db(lambda ledger: ledger.users())
        log = await desk.db(lambda ledger: [e for e in ledger.audit_log(limit=100)])
        return page(200, desk.render("users.html", request, user=user, csrf=csrf, users=users, audit=log))

    async def users_add(request: Request) -> Response:
        user, form = await desk.actor(request, "operator", "managing users")
        name, role = check_user_name(form.get("name", "").strip()), check_role(form.get("role", ""))
        try:
            limit_mb = int(form.get("upload_limit_mb") or 0)
        except ValueError:
            limit_mb = -1
        if not 0 <= limit_mb <= 10**7:
            raise Refused(400, "upload limit: give a whole number of MB, 0 for the desk's default")
        limit = limit_mb * 2**20
        hashed = await run_in_threadpool(hash_password, form.get("password", ""))

        def add(ledger: Ledger) -> None:
            ledger.add_user(name, role, hashed, limit)
            ledger.audit(user.name, "user", detail=f"added {name} as {role}")

        await desk.db(add)
        return RedirectResponse("/users", status_code=303)

    async def users_change(request: Request) -> Response:
        user, form = await desk.actor(request, "operator", "managing users")
        name = request.path_params["name"]
        if form.get("remove"):
            if name == user.name:
                raise Refused(409, "you cannot remove yourself; another operator can")

            def remove(ledger: Ledger) -> None:
                ledger.remove_user(name)
                ledger.audit(user.name, "user", detail=f"removed {name}")
            await desk.db(remove)
        else:
            role = check_role(form.get("role", ""))

            def change(ledger: Ledger) -> None:
                ledger.set_user(name, role=role)
                ledger.audit(user.name, "user", detail=f"{name} is now a {role}")
            await desk.db(change)
        return RedirectResponse("/users", status_code=303)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        desk.changes.task = asyncio.create_task(desk.changes.watch())
        yield
        desk.changes.task.cancel()

    routes = [
        Route("/", board),
        Route("/events", events),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/jobs/{job_id:int}", job_page),
        Route("/jobs/{job_id:int}/retry", act("editor", "retry", do_retry), methods=["POST"]),
        Route("/jobs/{job_id:int}/cancel", act("operator", "cancel", do_cancel), methods=["POST"]),
        Route("/jobs/{job_id:int}/urgent", act("editor", "urgent", do_urgent), methods=["POST"]),
        Route("/jobs/{job_id:int}/force", act("operator", "force", do_force, reason_required=True), methods=["POST"]),
        Route("/assets/{asset_id}", asset_page),
        Route("/files/{job_id:int}/{channel}/{path:path}", delivery),
        Route("/upload", upload_page),
        Route("/uploads", tus_create, methods=["POST"]),
        Route("/uploads", tus_options, methods=["OPTIONS"]),
        Route("/uploads/{upload_id}", tus_head, methods=["HEAD"]),
        Route("/uploads/{upload_id}", tus_patch, methods=["PATCH"]),
        Route("/uploads/{upload_id}", tus_delete, methods=["DELETE"]),
        Route("/users", users_page, methods=["GET"]),
        Route("/users", users_add, methods=["POST"]),
        Route("/users/{name}", users_change, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={Refused: refused, UploadRefused: upload_refused, OnetakeError: onetake_error})
    return SecurityHeaders(app)


class SecurityHeaders:
    """Every response gets the security headers (a response that sets its own CSP keeps it)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                wanted = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                          (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"SAMEORIGIN"),
                          (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                          (b"cross-origin-opener-policy", b"same-origin")]
                if https:
                    wanted.append((b"strict-transport-security", b"max-age=31536000"))
                headers += [(k, v) for k, v in wanted if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)

