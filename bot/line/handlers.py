"""Event handlers: turn a LINE event into loyalty verbs and the replies to send.

Each handler runs inside the event's transaction and returns an Outcome; the webhook sends
the replies and delivers the queued pushes after the commit. Screens that only show data
(points, stamps, wallet, a coupon, card, rewards) come back unrendered, as a partial the
webhook calls after the commit; a reply to a change is rendered inside its transaction, so
a failure to render it undoes the change instead of leaving staff without an answer. A
tap on one of those screens is read ahead of the event's write (read_screen), in a
transaction that only reads; the write then only claims the event and counts the tap.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot.line import formatting as fmt
from bot.line import messages, staff
from bot.line.client import LineClient, Profile
from bot.line.context import Env, Outcome
from bot.line.formatting import RenderContext
from bot.loyalty import claims
from bot.loyalty.campaigns import claim, find_by_keyword, find_campaign
from bot.loyalty.coupons import CouponView, find_coupon, wallet
from bot.loyalty.errors import (
    BirthdayAlreadySet,
    ClaimTaken,
    InvalidBirthday,
    LoyaltyError,
    RewardChanged,
    RewardPriceChanged,
    RewardUnavailable,
    UnknownReward,
)
from bot.loyalty.members import (
    register_member,
    set_birthday,
    set_marketing,
    unfollow,
)
from bot.loyalty.rewards import available_rewards, redeem_reward
from bot.loyalty.staff import find_active_staff, sender
from bot.loyalty.summary import member_summary
from bot.loyalty.taps import claim_and_count, count_tap, tap_source
from bot.loyalty.timeutil import local_date
from bot.models import Member
from bot.outbox.replies import member_for_reply, nothing_waits


def prefetch(kind: str, event: Any, client: LineClient) -> Profile | None:
    """Network calls happen before the transaction opens, so no lock waits on LINE."""
    if kind == "follow":
        return client.profile(event.source.user_id)
    return None


def on_follow(session: Session, env: Env, event: Any) -> Outcome:
    profile: Profile | None = env.prefetched
    joined = register_member(session, env.program, env.user_id, env.now,
                             display_name=profile.display_name if profile else "",
                             language=profile.language if profile else "")
    ctx = env.render(joined.member.language)
    coupon = _view(session, env, joined.welcome_coupon.code) if joined.welcome_coupon else None
    return Outcome(messages.welcome(ctx, joined.member, coupon))


def on_unfollow(session: Session, env: Env, event: Any) -> Outcome:
    unfollow(session, env.user_id, env.now)
    return Outcome()


def on_message(session: Session, env: Env, event: Any) -> Outcome:
    text = getattr(event.message, "text", None)
    words = normalize(text).split() if text is not None else []
    if words and (command := staff.COMMANDS.get(words[0].lower())) \
            and staff.meant(command, words[1:]):
        lang = "en" if words[0].lower() in staff.ENGLISH else "zh-TW"
        member, worker = sender(session, env.user_id, env.now)  # one statement
        if member is None:
            member, worker = _member(session, env), find_active_staff(session, env.user_id)
        return staff.run(session, env, member, worker, command, words[1:], lang)
    member = _member(session, env)
    if len(words) >= 2 and words[0].lower() in CLAIM_WORDS and env.program.claims.enabled:
        return take_claim(session, env, member, words[1:])  # (a lone 領取 may be a keyword)
    if text is None:  # stickers, photos ...: left to the owner, like unknown text
        return _unknown(env, member)
    action = KEYWORDS.get(" ".join(words).lower())
    if action is None:
        if len(words) == 1 and (campaign := find_by_keyword(session, words[0])):
            return claim_campaign(session, env, member, {"campaign": campaign.key})
        if faq := env.program.answer(" ".join(words).lower()):
            return Outcome(messages.faq_answer(env.render(member.language), faq))
        if find_active_staff(session, env.user_id) is not None:  # staff: their commands
            return Outcome(messages.text(env.render(member.language), "staff_commands"))
        return _unknown(env, member)
    return CUSTOMER_ACTIONS[action](session, env, member, {})


def on_postback(session: Session, env: Env, event: Any) -> Outcome:
    member = _member(session, env)
    data, params = _postback(event)
    action = data.get("action", "")
    if action in staff.POSTBACKS:
        outcome = staff.postback(session, env, member, action, data)
    elif (handler := CUSTOMER_ACTIONS.get(action)) is not None:
        outcome = handler(session, env, member, {**data, **params})
    else:
        outcome = Outcome(messages.text(env.render(member.language), "menu_pointer"))
        action = "unknown"
    # counted last: the day's row for this button stays locked only until the commit
    count_tap(session, local_date(env.now, env.program.timezone), tap_source(data), action)
    return outcome


def _postback(event: Any) -> tuple[dict[str, str], dict]:
    """A postback's data (action=points&page=2 as a dict) and its params (a date picked)."""
    return ({k: v[0] for k, v in parse_qs(event.postback.data).items()},
            event.postback.params or {})


# screens that only show data: the webhook reads them before the event's write (read_screen)
SCREENS = frozenset({"points", "stamps", "wallet", "coupon", "card", "rewards", "help",
                     "rules", "privacy"})


@dataclass(frozen=True)
class Screen:
    """A screen read ahead of the event's transaction: its reply, and the tap to count."""
    outcome: Outcome
    source: str
    action: str


def read_screen(session: Session, env: Env, event: Any) -> Screen | None:
    """A rich-menu or button tap on a screen, read in a transaction that only reads (see
    db.reading); None when the event is not such a tap or showing it takes a write: a
    sender not yet a member, or messages waiting to ride the reply. A screen that would
    start a stamp card raises NeedsWrite. The caller then claims the event and counts the
    tap (claim_screen)."""
    data, params = _postback(event)
    action = data.get("action", "")
    if action not in SCREENS:
        return None
    member = member_for_reply(session, env.user_id)
    if member is None or nothing_waits(session, env.user_id) is not True:
        return None
    outcome = CUSTOMER_ACTIONS[action](session, env, member, {**data, **params})
    return Screen(outcome, tap_source(data), action)


def claim_screen(engine: Engine, env: Env, kind: str, screen: Screen) -> bool:
    """Claim a screen's event and count its tap (taps.claim_and_count); False: handled
    before."""
    return claim_and_count(engine, env.event_id, kind, env.now,
                           local_date(env.now, env.program.timezone), screen.source,
                           screen.action)


def _unknown(env: Env, member: Member) -> Outcome:
    """No reply by default: the owner answers by hand (free) in LINE Official Account
    Manager's chat; `[chat] unknown_text = "pointer"` points to the menu instead."""
    if env.program.unknown_text == "pointer":
        return Outcome(messages.text(env.render(member.language), "menu_pointer"))
    return Outcome()


def normalize(text: str) -> str:
    """Full-width letters, digits and spaces folded to half-width (NFKC), trimmed."""
    return unicodedata.normalize("NFKC", text).strip()


def _member(session: Session, env: Env) -> Member:
    """The sender's member record; someone who never followed (old chats) joins now."""
    member = member_for_reply(session, env.user_id)
    if member is None:
        return register_member(session, env.program, env.user_id, env.now).member
    return member


def _view(session: Session, env: Env, code: str) -> CouponView:
    return find_coupon(session, env.program, code)


# -- customer actions: (session, env, member, data) -> Outcome ---------------------------------
def show_points(session: Session, env: Env, member: Member, data: dict) -> Outcome:
    summary = member_summary(session, env.program, member, env.now)
    return Outcome(partial(messages.points_card, env.render(member.language), summary))


def show_stamps(session: Session, env: Env, member: Member, data: dict) -> Outcome:
    summary = member_summary(session, env.program, member, env.now)
    return Outcome(partial(messages.stamp_card, env.render(member.language), summary))


def show_wallet(session: Session, env: Env, member: Member, data: dict) -> Outcome:
    page = int(data["page"]) if str(data.get("page", "")).isdigit() else 1
    views = wallet(session, env.program, member.id, env.now)
    return Outcome(partial(messages.wallet, env.render(member.language), views, max(page, 1)))


def show_coupon(session: Session, env: Env, member: Member, data: dict) -> Outcome:
    ctx = env.render(member.language)
    mine = {str(v.coupon.id): v for v in wallet(session, env.program, member.id, env.now)}
    view = mine.get(str(data.get("id")))
    if view is None:
        return Outcome(messages.text(ctx, "coupon_gone"))
    return Outcome(partial(messages.coupon_detail, ctx, view))


def show_card(session: Session, env: Env, member: Member, data: dict) -> Outcome:
    summary = member_summary(session, env.program, member, env.now)
    return Outcome(partial(messages.member_card, env.render(member.language), member, summary))


def show_rewards(session: Session, env: Env, member: Member, data: dict) -> Outcome:
    summary = member_summary(session, env.program, member, env.now)
    return Outcome(partial(messages.rewards_catalog, env.render(member.language),
                           summary.balance, available_rewards(session, env.program, env.now)))


def ask_reward(session: Session, env: Env, member: Member, data: dict) -> Outcome:
    ctx = env.render(member.language)
    reward = env.program.reward(str(data.get("key", "")))
    if reward is None:
        return Outcome(messages.error(ctx, UnknownReward()))
    if reward not in available_rewards(session, env.program, env.now):
        return Outcome(messages.error(ctx, RewardUnavailable()))
    summary = member_summary(session, env.program, member, env.now)
    return Outcome(partial(messages.reward_confirm, ctx, reward, summary.balance))


def take_reward(session: Session, env: Env, member: Member, data: dict) -> Outcome:
    ctx = env.render(member.language)
    try:
        with session.begin_nested():
            coupon = redeem_reward(session, env.program, member.id, str(data.get("key", "")),
                                   env.now, actor=f"line:{env.user_id}",
                                   shown_points=_int(data.get("points"), None),
                                   shown_offer=data.get("offer") or None)
    except (RewardPriceChanged, RewardChanged) as exc:  # changed since it was shown: anew
        reward = env.program.reward(str(data.get("key")))
        summary = member_summary(session, env.program, member, env.now)
        return Outcome(messages.error(ctx, exc)
                       + messages.reward_confirm(ctx, reward, summary.balance))
    except LoyaltyError as exc:
        return Outcome(messages.error(ctx, exc))
    return Outcome(messages.reward_issued(ctx, _view(session, env, coupon.code),
                                          member.points_balance))


def ask_birthday(session: Session, env: Env, member: Member, data: dict) -> Outcome:
    """The picked date, to confirm first: a birthday can be set only once."""
    ctx = env.render(member.language)
    if member.birthday is not None:
        return Outcome(messages.error(ctx, BirthdayAlreadySet()))
    try:
        day = dt.date.fromisoformat(str(data.get("date", "")))
    except ValueError:
        return Outcome(messages.error(ctx, InvalidBirthday()))
    return Outcome(messages.birthday_confirm(ctx, day))


def save_birthday(session: Session, env: Env, member: Member, data: dict) -> Outcome:
    ctx = env.render(member.language)
    try:
        with session.begin_nested():
            saved = set_birthday(session, member.id, str(data.get("date", "")), env.now,
                                 actor=f"line:{env.user_id}")
    except LoyaltyError as exc:
        return Outcome(messages.error(ctx, exc))
    return Outcome(messages.text(ctx, "birthday_saved", date=fmt.date_text(saved.birthday)))


def claim_campaign(session: Session, env: Env, member: Member, data: dict) -> Outcome:
    """A claim campaign's keyword or button: the coupon, or why not (gone, already yours)."""
    ctx = env.render(member.language)
    try:
        with session.begin_nested():
            campaign = find_campaign(session, str(data.get("campaign", ""))[:64])
            coupon = claim(session, env.program, campaign, member.id, env.now,
                           actor=f"line:{env.user_id}")
    except LoyaltyError as exc:
        return Outcome(messages.error(ctx, exc))
    view = _view(session, env, coupon.code)
    return Outcome(messages.text(ctx, "claim_ok", title=fmt.title(ctx, view.template))
                   + messages.coupon_detail(ctx, view))


CLAIM_WORDS = ("領取", "claim")


def take_claim(session: Session, env: Env, member: Member, args: list[str]) -> Outcome:
    """`領取 CODE`, typed by scanning a claim code's QR: the order becomes the member's and
    the receipt is this reply (free), never a push."""
    ctx, who = env.render(member.language), f"line:{env.user_id}"
    if not args:
        return Outcome(messages.text(ctx, "claim_usage"))
    if claims.guessing(session, who, env.now):
        return Outcome(messages.text(ctx, "claim_too_many"))
    try:
        with session.begin_nested():
            result = claims.take_claim(session, env.program, "".join(args), member.id, env.now,
                                       actor=who)
    except LoyaltyError as exc:
        claims.refuse_claim(session, who, exc.code, env.now)
        if isinstance(exc, ClaimTaken) and claims.claim_view(
                session, "".join(args), env.now).claim.claimed_by == member.id:
            return Outcome(messages.text(ctx, "claim_taken_by_you"))
        return Outcome(messages.error(ctx, exc))
    coupons = [_view(session, env, c.code) for c in result.coupons]
    return Outcome(messages.purchase_receipt(ctx, result, member.points_balance, coupons))


def show_help(session: Session, env: Env, member: Member, data: dict) -> Outcome:
    return Outcome(messages.help_text(env.render(member.language)))


def show_rules(session: Session, env: Env, member: Member, data: dict) -> Outcome:
    return Outcome(partial(messages.rules, env.render(member.language),
                           member.marketing_opt_out,
                           local_date(env.now, env.program.timezone)))


def show_privacy(session: Session, env: Env, member: Member, data: dict) -> Outcome:
    return Outcome(messages.privacy_notice(env.render(member.language)))


def marketing(wanted: bool) -> Callable[[Session, Env, Member, dict], Outcome]:
    """停止推播 / stop promotions (False) or 恢復推播 / start promotions (True)."""
    def act(session: Session, env: Env, member: Member, data: dict) -> Outcome:
        set_marketing(session, member.id, wanted, env.now, actor=f"line:{env.user_id}")
        return Outcome(messages.text(env.render(member.language),
                                     "marketing_on" if wanted else "marketing_off"))
    return act


def cancel(session: Session, env: Env, member: Member, data: dict) -> Outcome:
    return Outcome(messages.text(env.render(member.language), "cancelled"))


def _int(value: Any, missing: Any = -1) -> Any:
    return int(value) if str(value).isdigit() and len(str(value)) < 10 else missing


CUSTOMER_ACTIONS: dict[str, Callable[[Session, Env, Member, dict], Outcome]] = {
    "points": show_points, "stamps": show_stamps, "wallet": show_wallet, "coupon": show_coupon,
    "card": show_card, "rewards": show_rewards, "reward": ask_reward,
    "reward_confirm": take_reward, "birthday": ask_birthday,
    "birthday_confirm": save_birthday, "help": show_help,
    "cancel": cancel, "claim": claim_campaign, "rules": show_rules, "privacy": show_privacy,
    "marketing_off": marketing(False), "marketing_on": marketing(True),
}

KEYWORDS = {
    "點數": "points", "我的點數": "points", "points": "points", "point": "points",
    "集點卡": "stamps", "stamps": "stamps", "stamp card": "stamps", "stamp": "stamps",
    "優惠券": "wallet", "coupons": "wallet", "coupon": "wallet", "wallet": "wallet",
    "會員卡": "card", "card": "card", "member card": "card",
    "兌換": "rewards", "兌換好禮": "rewards", "rewards": "rewards",
    "說明": "help", "help": "help", "?": "help", "？": "help",
    "使用說明": "rules", "規則": "rules", "rules": "rules", "how it works": "rules",
    "隱私權": "privacy", "個資": "privacy", "privacy": "privacy",
    "停止推播": "marketing_off", "stop promotions": "marketing_off",
    "恢復推播": "marketing_on", "start promotions": "marketing_on",
}

# -- groups and rooms: never a member's codes in front of others ------------------------------
OUTSIDE_CHATS = ("join",)  # events that only come from a group or a room


def outside_chat(client: LineClient, kind: str, event: Any,
                 render: Callable[[str], RenderContext]) -> None:
    """An event from a group or room: the bot leaves when it is added (the README asks owners
    to keep joining groups off); a tap or a word meant for the bot gets one line asking for
    a one-to-one chat; other chatter is left alone. Nothing is read or written."""
    if kind == "join":
        client.leave(event.source)
        return
    text = getattr(getattr(event, "message", None), "text", None)
    words = normalize(text).lower().split() if isinstance(text, str) else []
    meant = kind == "postback" or bool(words) and (
        words[0] in staff.COMMANDS or " ".join(words) in KEYWORDS)
    token = getattr(event, "reply_token", None)
    if meant and token:  # its members may read either language: both, one message each
        client.reply(token, [*messages.text(render("zh-TW"), "private_chat_only"),
                             *messages.text(render("en"), "private_chat_only")])


HANDLERS: dict[str, Callable[[Session, Env, Any], Outcome]] = {
    "follow": on_follow, "unfollow": on_unfollow, "message": on_message,
    "postback": on_postback,
}
