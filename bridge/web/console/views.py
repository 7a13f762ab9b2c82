"""The console's pages and actions: each handler reads one query or calls one operator action
(`bridge.operator`) and renders or redirects. The guard in `_guard` runs before every one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response as BaseResponse

from ... import admin, alerts
from ... import operator as ops
from ...bootstrap import Bridge
from ...channels import RECONCILABLE_PLATFORMS
from ...orders import NOT_YET_SUBMITTED, Event, OrderState, can
from . import present, queries
from .auth import (
    COOKIE_PATH,
    LOGIN_COOKIE,
    SECURITY_HEADERS,
    SESSION_COOKIE,
    ConsoleAuth,
    Operator,
    csrf_matches,
    is_loopback_host,
    sign_in,
)
from .reveal import reveal_address

log = logging.getLogger("bridge.console")

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
PAGE_SIZE = 50
PUBLIC_ENDPOINTS = frozenset({"console.static", "console.login"})
ORDER_STATES = [s.value for s in OrderState]


def _bridge() -> Bridge:
    bridge: Bridge = current_app.extensions["bridge"]
    return bridge


def _auth() -> ConsoleAuth | None:
    auth: ConsoleAuth | None = current_app.extensions.get("console_auth")
    return auth


def _operator() -> Operator:
    operator: Operator = g.console_operator
    return operator


def _page(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    return render_template(f"console/{template}", **context), status


def _secure_cookies() -> bool:
    """`Secure` everywhere but plain http on a loopback name (a developer's own machine)."""
    return not (request.scheme == "http" and is_loopback_host(request.host))


def _set_cookie(response: BaseResponse, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=_secure_cookies(),
        httponly=True,
        samesite="Strict",
    )


def _now_s() -> float:
    return _bridge().clock.now().timestamp()


@bp.before_request
def _guard() -> ResponseReturnValue | None:
    auth = _auth()
    if auth is None:
        return _page("off.html", 404)
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    operator = auth.read_session(request.cookies.get(SESSION_COOKIE))
    proxied = auth.trusted_user(request.remote_addr, request.headers.get(auth.settings.trusted_header or "-"))
    if proxied is not None and (operator is None or operator.name != proxied):
        operator, g.console_new_session = auth.new_session(proxied)
    if operator is None:
        if request.method == "GET":
            return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
        return _page("refused.html", 401, reason="Sign in first.")
    g.console_operator = operator
    if request.method == "POST" and not csrf_matches(operator, request.form.get("csrf")):
        log.warning("console: refused a %s without a valid form token", request.endpoint)
        return _page("refused.html", 403, reason="The form token is missing or stale; reload the page.")
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    new_session = g.pop("console_new_session", None)
    auth = _auth()
    if new_session and auth is not None:
        _set_cookie(response, SESSION_COOKIE, new_session, auth.max_age_s)
    return response


@bp.context_processor
def _helpers() -> dict[str, Any]:
    operator: Operator | None = g.get("console_operator")
    return {
        "csrf": operator.csrf if operator else "",
        "when": present.when,
        "epoch": present.epoch,
        "status": present.status,
        "words": present.words,
        "hidden": present.hidden,
        "safe_link": present.safe_link,
        "signed_in": operator,
    }


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.orders")


def _back(endpoint: str, text: str, ok: bool, **values: Any) -> ResponseReturnValue:
    auth = _auth()
    assert auth is not None
    return redirect(url_for(endpoint, note=auth.sign_note(("ok:" if ok else "error:") + text), **values))


def _note() -> tuple[str, str]:
    auth = _auth()
    text = auth.read_note(request.args.get("note")) if auth else ""
    kind, _, message = text.partition(":")
    return (kind, message) if message else ("", "")


# ---------------------------------------------------------------------------- sign in and out


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    auth = _auth()
    assert auth is not None
    target = _safe_next(request.values.get("next"))
    if not auth.uses_password:
        return _page("refused.html", 401, reason="Sign in through your organisation's login page.")
    error, status = "", 200
    if request.method == "POST":
        result = sign_in(
            auth,
            request.remote_addr or "unknown",
            _now_s(),
            nonce=request.cookies.get(LOGIN_COOKIE),
            token=request.form.get("token"),
            password=request.form.get("password", ""),
            name=request.form.get("name", ""),
        )
        if result.operator is not None:
            log.info("console: %s signed in", result.operator.name)
            signed_in = redirect(target)
            _set_cookie(signed_in, SESSION_COOKIE, result.cookie, auth.max_age_s)
            signed_in.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
            return signed_in
        log.warning("console: sign-in refused (%s)", result.error)
        if result.retry_after_s:
            refused = Response(render_template("console/refused.html", reason=result.error), result.status)
            refused.headers["Retry-After"] = str(result.retry_after_s)
            return refused
        error, status = result.error, result.status
    nonce, token = auth.new_login_token()
    response = Response(render_template("console/login.html", token=token, next=target, error=error), status)
    _set_cookie(response, LOGIN_COOKIE, nonce, 3600)
    return response


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    response = redirect(url_for("console.login"))
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, secure=_secure_cookies(), httponly=True)
    return response


# ---------------------------------------------------------------------------- pages


@bp.get("/")
def index() -> ResponseReturnValue:
    return redirect(url_for("console.orders"))


@bp.get("/orders")
def orders() -> ResponseReturnValue:
    bridge = _bridge()
    channel = request.args.get("channel", "")
    channel = channel if bridge.config.channel(channel) is not None else ""
    state = request.args.get("state", "")
    state = state if state in ORDER_STATES else ""
    attention = request.args.get("attention") == "1"
    search = request.args.get("q", "").strip()[:128]
    before = request.args.get("before", type=int)
    rows = admin.list_orders(
        bridge.engine,
        state=state or None,
        attention=attention,
        channel=channel or None,
        search=search,
        before=before,
        limit=PAGE_SIZE + 1,
    )
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    given = {"channel": channel, "state": state, "attention": "1" if attention else "", "q": search}
    filters: dict[str, Any] = {k: v for k, v in given.items() if v}
    older = url_for("console.orders", before=rows[-1].id, **filters) if more and rows else None
    return _page(
        "orders.html",
        rows=rows,
        channels=sorted(bridge.config.channels),
        states=ORDER_STATES,
        filters=filters,
        older=older,
        first=url_for("console.orders", **filters) if before else None,
        note=_note(),
    )


def _order_actions(state: OrderState) -> list[str]:
    actions = []
    if state is OrderState.AWAITING_APPROVAL:
        actions.append("approve")
    if state in ops.RESUBMITTABLE:
        actions.append("resubmit")
    if state in ops.HOLDABLE:
        actions.append("hold")
    if can(state, Event.CANCEL) and state is not OrderState.CANCEL_REQUESTED:
        actions.append("cancel")
    return actions


def _order_page(order_id: int, revealed: Any = None, status: int = 200) -> ResponseReturnValue:
    bridge = _bridge()
    detail = queries.order_detail(bridge.engine, order_id)
    if detail is None:
        return _page("refused.html", 404, reason=f"There is no order {order_id}.")
    state = detail.row.order_state
    return _page(
        "order.html",
        status,
        d=detail,
        channel=bridge.config.channel(detail.row.channel_id),
        actions=_order_actions(state),
        can_preview=state in NOT_YET_SUBMITTED,
        revealed=revealed,
        note=_note(),
    )


@bp.get("/orders/<int:order_id>")
def order(order_id: int) -> ResponseReturnValue:
    return _order_page(order_id)


@bp.get("/alerts")
def alerts_page() -> ResponseReturnValue:
    everything = request.args.get("all") == "1"
    rows = alerts.list_alerts(_bridge().engine, include_cleared=everything)
    return _page("alerts.html", rows=rows, everything=everything, note=_note())


@bp.get("/jobs")
def jobs_page() -> ResponseReturnValue:
    engine = _bridge().engine
    counts = admin.job_counts(engine)
    kinds = sorted({kind for kind, _ in counts})
    table = [(kind, {status: n for (k, status), n in counts.items() if k == kind}) for kind in kinds]
    return _page("jobs.html", table=table, dead=admin.dead_jobs(engine), note=_note())


@bp.get("/channels")
def channels_page() -> ResponseReturnValue:
    bridge = _bridge()
    return _page(
        "channels.html",
        statuses=queries.channel_statuses(bridge.engine, bridge.config),
        warnings=bridge.config.warnings,
        source=bridge.config.source,
        reconcilable=RECONCILABLE_PLATFORMS,
        note=_note(),
    )


@bp.get("/health")
def health_page() -> ResponseReturnValue:
    bridge = _bridge()
    return _page("health.html", h=queries.health(bridge.engine))


# ---------------------------------------------------------------------------- actions

ORDER_ACTIONS: dict[str, Callable[..., ops.ActionResult]] = {
    "approve": ops.approve,
    "hold": ops.hold,
    "resubmit": ops.resubmit,
    "cancel": ops.cancel,
}


def _order_ref(order_id: int) -> tuple[str, str] | None:
    """(channel, shop order id): how `bridge.operator` names an order."""
    return queries.order_ref(_bridge().engine, order_id)


@bp.post("/orders/<int:order_id>/<action>")
def order_action(order_id: int, action: str) -> ResponseReturnValue:
    act = ORDER_ACTIONS.get(action)
    ref = _order_ref(order_id)
    if act is None or ref is None:
        return _page("refused.html", 404, reason="No such order or action.")
    extra = {"reason": request.form.get("reason", "")} if action == "hold" else {}
    if action == "cancel" and request.form.get("confirm") != "yes":
        return _back("console.order", "tick the box to confirm the cancellation", False, order_id=order_id)
    try:
        result = act(_bridge(), *ref, actor=_operator().actor, **extra)
    except ops.OperatorError as exc:
        return _back("console.order", str(exc), False, order_id=order_id)
    log.info("console: %s %s order %s", _operator().name, action, order_id)
    return _back("console.order", f"{action}: {result.message}", True, order_id=order_id)


@bp.post("/orders/<int:order_id>/preview")
def preview(order_id: int) -> ResponseReturnValue:
    ref = _order_ref(order_id)
    if ref is None:
        return _page("refused.html", 404, reason=f"There is no order {order_id}.")
    try:
        result = ops.preview_now(_bridge(), *ref, actor=_operator().actor)
    except ops.OperatorError as exc:
        return _back("console.order", str(exc), False, order_id=order_id)
    return _page("preview.html", result=result, order_id=order_id)


@bp.post("/orders/<int:order_id>/reveal")
def reveal(order_id: int) -> ResponseReturnValue:
    revealed = reveal_address(_bridge(), order_id, actor=_operator().actor)
    if revealed is None:
        return _page("refused.html", 404, reason=f"There is no order {order_id}.")
    log.info("console: %s revealed the address of order %s", _operator().name, order_id)
    return _order_page(order_id, revealed=revealed)


@bp.post("/alerts/<int:alert_id>/ack")
def ack(alert_id: int) -> ResponseReturnValue:
    try:
        ops.ack_alert(_bridge(), alert_id, actor=_operator().actor)
    except ops.OperatorError as exc:
        return _back("console.alerts_page", str(exc), False)
    return _back("console.alerts_page", f"alert {alert_id} acknowledged", True)


@bp.post("/jobs/<int:job_id>/retry")
def retry(job_id: int) -> ResponseReturnValue:
    try:
        ops.retry_job(_bridge(), job_id, actor=_operator().actor)
    except ops.OperatorError as exc:
        return _back("console.jobs_page", str(exc), False)
    return _back("console.jobs_page", f"job {job_id} queued again", True)


@bp.post("/channels/<channel_id>/reconcile")
def reconcile(channel_id: str) -> ResponseReturnValue:
    try:
        queued = ops.request_reconcile(_bridge(), channel_id, actor=_operator().actor)
    except ops.OperatorError as exc:
        return _back("console.channels_page", str(exc), False)
    text = "reconciliation queued" if queued else "a reconciliation pass is already waiting"
    return _back("console.channels_page", f"{channel_id}: {text}", True)
