"""The console's pages: sign-in, the first owner, passwords, accounts, the dashboard, members
and their corrections, erasure, the members export, staff, and the clock and messages."""

from __future__ import annotations

import datetime as dt
import functools
import secrets
import tempfile
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.orm import Session

from bot.bootstrap import Runtime
from bot.console.words import words
from bot.db import transaction
from bot.jobs import JOBS
from bot.line import qr
from bot.line.client import LineClient
from bot.line.richmenu import MENUS_DIR, load_menus, publish, unlink_staff, versioned_name
from bot.line.richmenu_art import RichMenuError
from bot.loyalty import (
    accounts,
    audit,
    coupons,
    directory,
    erasure,
    members,
    purchases,
    segments,
    staff,
    stamps,
)
from bot.loyalty import dashboard as figures
from bot.loyalty.codes import format_code, normalize_code
from bot.loyalty.coupons import coupon_views
from bot.loyalty.errors import (
    ConfirmationMismatch,
    ConsoleError,
    InvalidStampCount,
    LoginRefused,
    LoyaltyError,
    RefundExceedsPurchase,
    RetryUnsafe,
    UnknownOrder,
)
from bot.loyalty.job_runs import last_runs
from bot.loyalty.member_export import export_members
from bot.loyalty.purchases import MAX_AMOUNT
from bot.loyalty.report import build_report, report_period, staff_rows
from bot.loyalty.summary import member_summary
from bot.loyalty.timeutil import utcnow
from bot.models import Member
from bot.outbox import overview
from bot.report_format import render_csv

bp = Blueprint("console", __name__, url_prefix="/admin", template_folder="templates",
               static_folder="static", static_url_path="/static")
_csrf: CSRFProtect | None = None
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def init(csrf: CSRFProtect) -> None:
    global _csrf
    _csrf = csrf


def runtime() -> Runtime:
    return current_app.extensions["loyalty"]


# -- every request -------------------------------------------------------------------------------
@bp.before_request
def load() -> Any:
    """The language, the clock, the CSRF check of a form, and who is signed in."""
    g.now = utcnow()
    g.lang = request.cookies.get("lang") or (
        "en" if (request.accept_languages.best_match(["zh-TW", "zh", "en"]) or "zh") == "en"
        else "zh-TW")
    g.t = words(g.lang)
    if request.method == "POST" and _csrf is not None:
        _csrf.protect()
    g.who = None
    token = session.get("sid")
    if token:
        with transaction(runtime().sessions) as db:
            found = accounts.signed_in(db, token, g.now)
            g.who = found.account if found else None
        if g.who is None:
            session.clear()
            g.expired = True
    return None


@bp.context_processor
def shop() -> dict[str, Any]:
    program = runtime().program
    return {"config_shop": lambda: program.shop_name_en if g.lang == "en"
            else program.shop_name, "zip": zip}


@bp.after_request
def headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = g.get("csp", CSP)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if runtime().config.https:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


@bp.errorhandler(CSRFError)
def bad_form(exc: CSRFError) -> tuple[str, int]:
    return page("message.html", 400, message=g.t["bad_form"])


def page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(f"console/{template}", **context), status


def address() -> str:
    """The client's address: the socket's, or (TRUSTED_PROXY_HOPS) the router's header."""
    return (request.remote_addr or "")[:64]


def signed_in(role: str | None = None, refusal: str = "not_allowed") -> Callable:
    """The view needs a signed-in account (of `role`, if given: others get a 403 page
    saying `refusal`)."""
    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if g.who is None:
                return redirect(url_for("console.login", next=request.path,
                                        expired=1 if g.get("expired") else None))
            if role and g.who.role != role:
                return page("message.html", 403, message=g.t[refusal])
            return view(*args, **kwargs)
        return guarded
    return wrap


def _next(target: str | None) -> str:
    """Only a path inside the console: never an address elsewhere."""
    parts = urlsplit(target or "")
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin"):
        return url_for("console.dashboard")
    return parts.path


def _start(account_token: str) -> None:
    session.clear()  # a new session, and with it a new CSRF token
    session["sid"] = account_token


# -- signing in ----------------------------------------------------------------------------------
@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Sign in with e-mail and password."""
    error = g.t["session_over"] if request.args.get("expired") else None
    if request.method == "POST":
        try:
            with transaction(runtime().sessions) as db:
                signed = accounts.sign_in(db, request.form.get("email", ""),
                                          request.form.get("password", ""), address(), g.now)
        except ConsoleError as exc:  # throttled
            return page("login.html", 429, error=exc.message(g.lang),
                        email=request.form.get("email", ""))
        if signed is None:
            return page("login.html", 401, error=LoginRefused().message(g.lang),
                        email=request.form.get("email", ""))
        _start(signed[1])
        return redirect(_next(request.args.get("next")))
    with runtime().sessions() as db:
        if not accounts.has_owner(db):
            return redirect(url_for("console.setup"))
    return page("login.html", error=error, email="")


@bp.post("/logout")
def logout() -> Any:
    with transaction(runtime().sessions) as db:
        accounts.sign_out(db, session.get("sid"))
    session.clear()
    return redirect(url_for("console.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> Any:
    """The first owner, with the setup token from the hosting settings."""
    with runtime().sessions() as db:
        if accounts.has_owner(db):
            return page("message.html", message=g.t["setup_done"], link="console.login")
    if request.method == "POST":
        try:
            with transaction(runtime().sessions) as db:
                account = accounts.setup_first_owner(
                    db, runtime().config.console_setup_token, request.form.get("token", ""),
                    request.form.get("email", ""), request.form.get("password", ""), g.now)
                token = accounts.start_session(db, account, address(), g.now)
        except ConsoleError as exc:
            return page("setup.html", 400, error=exc.message(g.lang),
                        email=request.form.get("email", ""))
        _start(token)
        return redirect(url_for("console.dashboard"))
    return page("setup.html", error=None, email="")


@bp.route("/password/<token>", methods=["GET", "POST"])
def set_password(token: str) -> Any:
    """A one-time link: set the password of a new account, or a new one after a reset."""
    email = ""
    try:
        with transaction(runtime().sessions) as db:
            email = accounts.link_account(db, token, g.now).email
            if request.method == "POST":
                accounts.set_password_by_link(db, token, request.form.get("password", ""),
                                              g.now)
                session.clear()
                return page("message.html", message=g.t["password_set"],
                            link="console.login")
    except ConsoleError as exc:
        status = 400 if exc.code == "weak_password" else 404
        if status == 404:
            return page("message.html", 404, message=exc.message(g.lang))
        return page("set_password.html", status, email=email, error=exc.message(g.lang))
    return page("set_password.html", email=email, error=None)


@bp.route("/account/password", methods=["GET", "POST"])
@signed_in()
def change_password() -> Any:
    """Change your own password: every session of yours ends, this one too."""
    if request.method == "POST":
        try:
            with transaction(runtime().sessions) as db:
                accounts.change_password(db, g.who.id, request.form.get("old", ""),
                                         request.form.get("new", ""), g.now)
        except ConsoleError as exc:
            return page("change_password.html", 400, error=exc.message(g.lang))
        session.clear()
        return page("message.html", message=g.t["password_changed"], link="console.login")
    return page("change_password.html", error=None)


@bp.post("/language")
def language() -> Any:
    response = redirect(_next(request.form.get("next")))
    response.set_cookie("lang", "zh-TW" if g.lang == "en" else "en", max_age=365 * 86400,
                        samesite="Lax", secure=runtime().config.https, httponly=True,
                        path="/admin")
    return response


# -- accounts (owners only) ------------------------------------------------------------------
@bp.route("/accounts", methods=["GET", "POST"])
@signed_in("owner")
def accounts_page() -> Any:
    """Invite a manager or owner, reset a password, remove an account."""
    notice, link, error = None, None, None
    if request.method == "POST":
        action, email = request.form.get("action"), request.form.get("email", "")
        who = accounts.actor(g.who)
        try:
            with transaction(runtime().sessions) as db:
                if action == "invite":
                    account, token = accounts.add_account(
                        db, email, request.form.get("role", "manager")
                        if request.form.get("role") in accounts.ROLES else "manager",
                        g.now, actor=who)
                elif action == "reset":
                    account, token = accounts.reset_link(db, email, g.now, actor=who)
                else:
                    accounts.remove_account(db, email, g.now, actor=who)
                    account, token = None, None
        except LoyaltyError as exc:
            error = exc.message(g.lang)
        else:
            if token:
                notice = g.t["link_for"].format(email=account.email)
                link = f"{runtime().config.public_base_url}/admin/password/{token}"
            else:
                notice = g.t["removed"].format(email=email)
    with runtime().sessions() as db:
        listed = accounts.accounts(db)
    return page("accounts.html", 400 if error else 200, listed=listed, notice=notice,
                link=link, error=error)


# -- the dashboard -------------------------------------------------------------------------------
@bp.get("/")
@signed_in()
def dashboard() -> Any:
    """The shop's figures for a period beside the period before it."""
    rt, tz = runtime(), runtime().program.timezone
    try:
        days = [dt.date.fromisoformat(request.args[k]) if request.args.get(k) else None
                for k in ("from", "to")]
        start, end = report_period(rt.program, days[0], days[1], g.now)
    except ValueError:
        start, end = report_period(rt.program, None, None, g.now)
    first, last = start.astimezone(tz).date(), (end - dt.timedelta(microseconds=1)) \
        .astimezone(tz).date()
    with rt.sessions() as db:  # the clock's daily figures, if fresh; else two live reports
        shown = (figures.kept(db, rt.program, first, last, g.now)
                 or figures.compute(db, rt.program, first, last, g.now))
    rows = figures_table(shown.current, shown.previous)
    return page("dashboard.html", rows=rows, first=first, last=last,
                report=shown.current, charts=charts(shown.current, rt.program, g.t, g.lang),
                computed_at=shown.computed_at and shown.computed_at.astimezone(tz),
                every=figures.EVERY_MINUTES,
                csv_url=f"{url_for('console.report_csv')}?from={first}&to={last}")


@bp.get("/report.csv")
@signed_in()
def report_csv() -> Any:
    """The whole report for ?from= and ?to= (the dashboard's period) as CSV, as `flask --app
    bot report --format csv` writes it: section, metric, value. Computed live from the
    data, as the command does (one report: the live dashboard computes two)."""
    rt = runtime()
    first, last, start, end, bad = days_asked()
    if bad:
        return page("message.html", 400, message=g.t["report_bad_days"])
    with rt.sessions() as db:
        report = build_report(db, rt.program, start, end, g.now, quota=rt.program.allowance)
    return Response("\ufeff" + render_csv(report), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="report-{first:%Y%m%d}-{last:%Y%m%d}.csv"'})


def charts(report: Any, program: Any, t: dict[str, str], lang: str) -> dict[str, Any]:
    """The dashboard's chart data (a dashboard.Period): every number is one of the report's."""
    weeks = report.weeks
    english = lang == "en"

    def coupon_title(row: Any) -> str:
        template = program.coupons.get(row.key)
        return (template.title_en or template.title) if template and english else row.title

    def tier_name(row: Any) -> str:
        tier = next((x for x in program.tiers if x.key == row.key), None)
        return (tier.name_en or tier.name) if tier and english else row.name

    return {
        "weekly": {"labels": [w.key.replace("-", "/") for w in weeks],
                   "purchases": [w.purchases for w in weeks],
                   "revenue": [w.revenue for w in weeks],
                   "names": {"purchases": t["purchases"], "revenue": t["revenue"]}},
        "customers": {"labels": [w.key.replace("-", "/") for w in weeks],
                      "new": [w.new_customers for w in weeks],
                      "returning": [w.returning_customers for w in weeks],
                      "names": {"new": t["new"], "returning": t["returning"]}},
        "coupons": {"labels": [coupon_title(r) for r in report.templates],
                    "redeemed": [r.redeemed for r in report.templates],
                    "names": {"redeemed": t["redeemed"]}},
        "funnel": {"labels": [t["stamps_step"].format(n=f.stamps) for f in report.stamps.steps],
                   "cards": [f.cards for f in report.stamps.steps],
                   "names": {"cards": t["cards"]}},
        "tiers": {"labels": [tier_name(r) for r in report.tiers],
                  "members": [r.members for r in report.tiers],
                  "names": {"members": t["members"]}},
    }


def money(value: float | int | None) -> str:
    return "-" if value is None else f"NT${round(value):,}"


def figures_table(now: Any, then: Any) -> list[tuple[str, str, str]]:
    """(label key, this period, previous period) for the dashboard's table."""
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}%"

    def num(v: Any) -> str:
        return "-" if v is None else f"{v:,}"

    pairs = [
        ("members_total", num(now.members.total), num(then.members.total)),
        ("members_new", num(now.members.new), num(then.members.new)),
        ("members_active", num(now.members.active), num(then.members.active)),
        ("members_dormant", num(now.members.dormant), num(then.members.dormant)),
        ("revenue", money(now.sales.revenue), money(then.sales.revenue)),
        ("average_order", money(now.sales.average_order_value),
         money(then.sales.average_order_value)),
        ("repurchase_rate", pct(now.sales.repurchase_rate), pct(then.sales.repurchase_rate)),
        ("repurchase_cycle", num(now.sales.repurchase_cycle_days),
         num(then.sales.repurchase_cycle_days)),
        ("redemption_rate", pct(now.coupons.redemption_rate),
         pct(then.coupons.redemption_rate)),
        ("points_liability", money(now.points_value), money(then.points_value)),
        ("billed_messages", num(now.billed), num(then.billed)),
    ]
    return pairs


# -- members -----------------------------------------------------------------------------------
@bp.get("/members")
@signed_in()
def members_page() -> Any:
    """Find a member by phone, member code or name."""
    query = request.args.get("q", "")
    with runtime().sessions() as db:
        found = directory.search_members(db, query)
    return page("members.html", query=query, found=found)


@bp.route("/members/<code>", methods=["GET", "POST"])
@signed_in()
def member_page(code: str) -> Any:
    """One member: balance, expiring points, tier, stamps, coupons, ledger, purchases, tags,
    the audit trail, and the corrections (each with its reason); POST adjusts points."""
    if request.method == "GET":
        return show_member(code)

    def adjust(db: Session, member: Member) -> str:
        try:
            delta = int(request.form.get("delta", "").strip())
        except ValueError:
            raise Refused("delta_whole") from None
        if abs(delta) > members.MAX_ADJUSTMENT:
            raise Refused("delta_whole")
        members.adjust_points(db, runtime().program, member.id, delta, g.now,
                              reason=request.form.get("reason", ""), actor=who())
        return g.t["adjusted"].format(delta=f"{delta:+,}")
    return correct(code, adjust)


@bp.post("/members/<code>/stamps")
@signed_in()
def member_stamps(code: str) -> Any:
    """Give (+n) or take back (-n) stamps on the current card, with a reason."""
    def adjust(db: Session, member: Member) -> str:
        program = runtime().program
        try:
            delta = int(request.form.get("stamps", "").strip())
        except ValueError:
            raise InvalidStampCount(goal=program.stamps.goal) from None
        outcome = stamps.adjust_stamps(db, program, member.id, delta, g.now,
                                       reason=request.form.get("reason", ""), actor=who())
        won = "".join(g.t["coupon_won"].format(title=title(view.template))
                      for view in coupon_views(db, program, [c.id for c in outcome.coupons]
                                               ).values())
        return g.t["stamps_adjusted"].format(delta=f"{delta:+,}") + won
    return correct(code, adjust)


@bp.post("/members/<code>/coupon")
@signed_in()
def member_coupon(code: str) -> Any:
    """Issue a coupon from one of the program's templates, with a reason."""
    def give(db: Session, member: Member) -> str:
        program = runtime().program
        coupon = coupons.give_coupon(db, program, member.id, request.form.get("template", ""),
                                     g.now, reason=request.form.get("reason", ""), actor=who())
        view = coupon_views(db, program, [coupon.id])[coupon.id]
        return g.t["coupon_given"].format(title=title(view.template), code=view.display_code)
    return correct(code, give)


@bp.post("/members/<code>/birthday")
@signed_in()
def member_birthday(code: str) -> Any:
    """Correct the birthday (a customer sets theirs once), with a reason."""
    def fix(db: Session, member: Member) -> str:
        changed = members.correct_birthday(db, member.id, request.form.get("birthday", ""),
                                           g.now, reason=request.form.get("reason", ""),
                                           actor=who())
        return g.t["birthday_fixed"].format(date=changed.birthday.strftime("%Y/%m/%d"))
    return correct(code, fix)


@bp.post("/members/<code>/tags")
@signed_in()
def member_tags(code: str) -> Any:
    """Add or remove one of the shop's own tags (the automatic ones are the tags job's)."""
    def tag(db: Session, member: Member) -> str:
        text, adding = request.form.get("tag", ""), request.form.get("action") != "remove"
        name = segments.tag_name(text)
        if adding:
            done = segments.add_tag(db, member, name, g.now, actor=who())
            return g.t["tag_added" if done else "tag_had"].format(tag=name)
        done = segments.remove_tag(db, member, name, g.now, actor=who())
        return g.t["tag_removed" if done else "tag_missing"].format(tag=name)
    return correct(code, tag)


@bp.post("/members/<code>/refund")
@signed_in()
def member_refund(code: str) -> Any:
    """Refund all or part of one of the member's purchases, with a reason: the points and
    stamps it earned come back in proportion, as with a refund from the till."""
    def refund(db: Session, member: Member) -> str:
        text = request.form.get("amount", "").strip()
        if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_AMOUNT)) \
                or not 0 < int(text) <= MAX_AMOUNT:
            raise Refused("refund_amount_bad")
        try:
            purchase_id = int(request.form.get("purchase", ""))
        except ValueError:
            raise UnknownOrder() from None
        try:
            done = purchases.refund_by_hand(
                db, runtime().program, member.id, purchase_id, int(text), g.now,
                key=request.form.get("key", "")[:64] or secrets.token_urlsafe(12),
                reason=request.form.get("reason", ""), actor=who())
        except RefundExceedsPurchase as exc:  # said in the console's money format
            raise Refused("refund_too_much", left=money(exc.context["left"])) from None
        if done.duplicate:
            return g.t["refund_repeat"]
        r = done.refund
        lost = g.t["refund_unrecovered"].format(points=f"{r.points_unrecovered:,}") \
            if r.points_unrecovered else ""
        return g.t["refunded_notice"].format(amount=money(r.amount),
                                             points=f"{r.points_reversed:,}",
                                             stamps=r.stamps_reversed) + lost
    return correct(code, refund)


@bp.post("/members/<code>/erase")
@signed_in("owner", refusal="erase_owner_only")
def member_erase(code: str) -> Any:
    """Erase the member's personal data on their request (owners only), after the member
    code is typed again; the anonymised ledger stays for the accounts."""
    unlink: list[str] = []

    def erase(db: Session, member: Member) -> str:
        if normalize_code(request.form.get("confirm", "")) != member.member_code:
            raise ConfirmationMismatch()
        result = erasure.erase_member(db, member.id, g.now, actor=who())
        if result.unlink_menu_of:
            unlink.append(result.unlink_menu_of)
        key = "already_erased" if result.already_erased else "erased"
        return g.t[key].format(code=format_code(result.member_code)) + (
            g.t["staff_ended"] if result.staff else "")
    answer = correct(code, erase)
    config = runtime().config
    for user in unlink:  # after the commit, as the CLI does: the customer menu again
        if config.line_configured and not config.simulator:
            unlink_staff(LineClient(config).api, user)
    return answer


REASON_MAX = 200  # characters: the forms' maxlength, checked again here


class Refused(Exception):
    """A form's input the console itself refuses (before any domain verb): words key."""

    def __init__(self, key: str, **values: str):
        super().__init__(key)
        self.key, self.values = key, values


def who() -> str:
    return accounts.actor(g.who)


def title(template: Any) -> str:
    return (template.title_en or template.title) if g.lang == "en" else template.title


def correct(code: str, work: Callable[[Session, Member], str]) -> Any:
    """Run one correction in a transaction: its notice on the member's page, or the reason
    it was refused (400) with nothing changed."""
    try:
        if len(request.form.get("reason", "")) > REASON_MAX:
            raise Refused("reason_too_long", most=str(REASON_MAX))
        with transaction(runtime().sessions) as db:
            notice = work(db, members.find_by_code(db, code))
    except Refused as exc:
        return show_member(code, error=g.t[exc.key].format(**exc.values))
    except LoyaltyError as exc:
        return show_member(code, error=exc.message(g.lang))
    return show_member(code, notice=notice)


def show_member(code: str, error: str | None = None, notice: str | None = None) -> Any:
    rt = runtime()
    try:
        with rt.sessions() as db:
            member = members.find_by_code(db, code)
            shown = member_summary(db, rt.program, member, g.now)
            history = directory.member_history(db, member.id)
    except LoyaltyError as exc:
        return page("message.html", 404, message=exc.message(g.lang))
    templates = [(key, title(t)) for key, t in rt.program.coupons.items() if not t.retired]
    return page("member.html", 400 if error else 200, summary=shown, history=history,
                error=error, notice=notice, tz=rt.program.timezone, money=money,
                templates=templates, key=secrets.token_urlsafe(12),
                goal=rt.program.stamps.goal, today=g.now.astimezone(rt.program.timezone),
                automatic=segments.AUTOMATIC)


# -- export (owners only) ------------------------------------------------------------------------
@bp.route("/export", methods=["GET", "POST"])
@signed_in("owner", refusal="export_owner_only")
def export() -> Any:
    """Every member as CSV (the CLI's export), after the owner types their password again."""
    if request.method == "GET":
        return page("export.html", error=None)
    rt = runtime()
    try:
        with transaction(rt.sessions) as db:
            confirmed = accounts.password_again(db, g.who.id, request.form.get("password", ""),
                                                address(), g.now)
    except ConsoleError as exc:  # throttled
        return page("export.html", 429, error=exc.message(g.lang))
    if not confirmed:
        return page("export.html", 401, error=g.t["wrong_password"])
    # on disk, not in memory (a million members is about 100 MB); closed by chunks()
    spool = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")  # noqa: SIM115
    with transaction(rt.sessions) as db:
        count = export_members(db, spool, tz=rt.program.timezone)
        audit.record(db, "members.export", member_id=None, actor=who(), at=g.now,
                     members=count)
    spool.seek(0)

    def chunks() -> Any:
        yield "\ufeff"  # a byte-order mark: Excel then reads the file as UTF-8
        with spool:
            while block := spool.read(64 * 1024):
                yield block
    day = g.now.astimezone(rt.program.timezone).strftime("%Y%m%d")
    return Response(chunks(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="members-{day}.csv"'})


# -- staff (owners and managers) -----------------------------------------------------------------
@bp.route("/staff", methods=["GET", "POST"])
@signed_in()
def staff_page() -> Any:
    """Who may use the staff commands, their activity for a period, an invite (a one-time
    `員工 CODE` as text and QR), and removal (rights end at once, the staff menu unlinked)."""
    rt = runtime()
    notice, error, invited, unlink = None, None, None, None
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "invite":
                name = request.form.get("name", "").strip()
                if len(name) > NAME_MAX:
                    raise Refused("name_too_long", most=str(NAME_MAX))
                with transaction(rt.sessions) as db:
                    code = staff.create_invite(db, g.now, name=name, actor=who())
                invited = invitation(code)
            elif action == "remove":
                user = request.form.get("user", "")
                with transaction(rt.sessions) as db:
                    worker = staff.remove_staff(db, user, g.now, actor=who())
                    notice = g.t["staff_removed"].format(name=worker.name)
                unlink = user
            else:
                raise Refused("bad_action")
        except Refused as exc:
            error = g.t[exc.key].format(**exc.values)
        except LoyaltyError as exc:
            error = exc.message(g.lang)
    if unlink and rt.config.line_configured and not rt.config.simulator:
        unlink_staff(LineClient(rt.config).api, unlink)  # after the commit, as the CLI does
    first, last, start, end, bad_days = days_asked()
    with rt.sessions() as db:
        workers = staff.active_staff(db)
        rows = staff_rows(db, start, end, g.now)
    return page("staff.html", 400 if error or bad_days else 200, workers=workers, rows=rows,
                notice=notice, error=error or bad_days, invited=invited, first=first,
                last=last, tz=rt.program.timezone, money=money)


NAME_MAX = 40  # characters of a staff member's name: the form's maxlength, checked again


def invitation(code: str) -> dict[str, str]:
    """What the new staff member sends, the QR that types it (and its link, with an OA id)."""
    config = runtime().config
    text = f"員工 {format_code(code)}"
    payload = qr.chat_payload(config.line_oa_basic_id, text)
    return {"text": text, "link": payload if payload != text else "",
            "qr": url_for("qr.qr_image", token=qr.seal(config.secret_key, payload))}


def days_asked() -> tuple[dt.date, dt.date, dt.datetime, dt.datetime, str | None]:
    """The local days ?from= and ?to= ask for (by default the report's last 30 days): the
    first and last day, their [start, end) and, for dates that make no sense, why the
    default is shown instead."""
    program = runtime().program
    try:
        days = [dt.date.fromisoformat(request.args[k]) if request.args.get(k) else None
                for k in ("from", "to")]
        start, end = report_period(program, days[0], days[1], g.now)
        bad = None
    except ValueError:
        start, end = report_period(program, None, None, g.now)
        bad = g.t["bad_days"]
    tz = program.timezone
    return (start.astimezone(tz).date(), (end - dt.timedelta(microseconds=1)).astimezone(tz
                                                                                      ).date(),
            start, end, bad)


# -- rich menus (owners) -----------------------------------------------------------------------
@bp.route("/richmenu", methods=["GET", "POST"])
@signed_in("owner", refusal="richmenu_owner_only")
def richmenu_page() -> Any:
    """Both rich menus as LINE will show them, and their deploy (the CLI's `richmenu
    deploy`): upload what changed, make the customer menu the default, link staff to theirs."""
    rt = runtime()
    notice, error = None, None
    try:
        menus = load_menus(MENUS_DIR)
    except RichMenuError as exc:
        return page("richmenu.html", 500, menus=[], notice=None, error=str(exc))
    if request.method == "POST":
        if rt.config.simulator or not rt.config.line_configured:
            error = g.t["richmenu_no_line"]
        else:
            with rt.sessions() as db:
                staff_ids = [w.line_user_id for w in staff.active_staff(db) if w.line_user_id]
            try:
                report = publish(rt.config, staff_ids, MENUS_DIR)
            except RichMenuError as exc:
                error = str(exc)
            else:
                with transaction(rt.sessions) as db:
                    audit.record(db, "richmenu.deploy", member_id=None, actor=who(), at=g.now,
                                 created=report.created, reused=report.reused,
                                 linked=len(report.linked))
                notice = g.t["richmenu_deployed"].format(
                    created=len(report.created), reused=len(report.reused),
                    linked=len(report.linked),
                    staff=len(report.linked) + len(report.link_failures))
                if report.link_failures:
                    error = g.t["richmenu_link_failed"].format(
                        users=", ".join(report.link_failures))
    shown = [{"role": role, "name": versioned_name(menu, image),
              "bar": menu.get("chatBarText", ""), "areas": len(menu["areas"])}
             for role, (menu, image) in menus.items()]
    return page("richmenu.html", 400 if error and request.method == "POST" else 200,
                menus=shown, notice=notice, error=error)


@bp.get("/richmenu/<role>.png")
@signed_in()
def richmenu_image(role: str) -> Any:
    menus = load_menus(MENUS_DIR)
    if role not in menus:
        abort(404)
    return Response(menus[role][1], mimetype="image/png")


# -- the clock and messages (owners and managers) -----------------------------------------------
@bp.route("/clock", methods=["GET", "POST"])
@signed_in()
def clock_page() -> Any:
    """Each clock job's schedule and last run; the outbox this month, the latest failures
    with LINE's reason, and a retry for a push LINE definitely refused."""
    rt = runtime()
    notice, error = None, None
    if request.method == "POST":
        try:
            wanted = int(request.form.get("message", ""))
            if not 0 < wanted < 2 ** 63:
                raise ValueError(wanted)
        except ValueError:
            error = RetryUnsafe().message(g.lang)
        else:
            try:
                with transaction(rt.sessions) as db:
                    overview.retry_refused(db, wanted, g.now, actor=who())
            except LoyaltyError as exc:
                error = exc.message(g.lang)
            else:
                notice = g.t["retry_queued"].format(id=wanted)
    with rt.sessions() as db:
        runs = last_runs(db)
        counts = overview.counts(db, rt.program, g.now)
        failed = overview.latest_failed(db)
    tz = rt.program.timezone
    jobs = [{"name": job.name, "schedule": schedule(job.cron), "about": job_words(job),
             "last": runs[job.name].last_completed_at.astimezone(tz)
             if job.name in runs and runs[job.name].last_completed_at else None,
             "summary": runs[job.name].last_summary if job.name in runs else ""}
            for job in JOBS.values()]
    return page("clock.html", 400 if error else 200, jobs=jobs, counts=counts, failed=failed,
                notice=notice, error=error, tz=tz,
                month=g.now.astimezone(tz).strftime("%Y/%m"))


def schedule(cron: dict[str, Any]) -> str:
    """A job's cron fields in words: every minute, every 10 minutes, daily at 09:00."""
    minute, hour = str(cron.get("minute", "*")), cron.get("hour")
    if set(cron) <= {"minute", "hour"}:
        if hour is None and minute == "*":
            return g.t["every_minute"]
        if hour is None and minute.startswith("*/") and minute[2:].isdigit():
            return g.t["every_minutes"].format(n=minute[2:])
        if isinstance(hour, int) and minute.isdigit():
            return g.t["daily_at"].format(time=f"{hour:02d}:{int(minute):02d}")
    return " ".join(f"{k}={v}" for k, v in cron.items())


def job_words(job: Any) -> str:
    return g.t.get(f"job_{job.name}", job.description)
