"""The report as text for a terminal and as CSV for a spreadsheet: presentation only; the
figures and their definitions are bot.loyalty.report's."""

from __future__ import annotations

import csv
import io
import unicodedata
from typing import Any

from bot.line.formatting import date_text, datetime_text, money_text
from bot.loyalty.report import CouponRow, Report


def _width(text: str) -> int:
    """Columns a terminal gives `text`: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if right else text + fill


def _num(value: Any, suffix: str = "") -> str:
    """1,234 / 66.0 / 26.7% ; "-" where undefined."""
    if value is None:
        return "-"
    if suffix == "%":
        return f"{value:.1f}%"
    return f"{value:,}{suffix}"


def _money(report: Report, value: int | float | None) -> str:
    """NT$1,234: averages and estimates rounded to whole dollars, like every amount shown."""
    return "-" if value is None else money_text(value, report.currency)


def _table(header: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    """Columns padded to their widest cell; the first column left, the others right."""
    widths = [max(_width(cell) for cell in column) for column in zip(header, *rows,
                                                                      strict=True)]
    return [indent + "  ".join(_pad(cell, w, right=i > 0)
                               for i, (cell, w) in enumerate(zip(line, widths, strict=True)))
            .rstrip() for line in [header, *rows]]


def render_text(report: Report) -> str:
    """A plain-text report for a terminal or an e-mail, labels in English and zh-TW."""
    m, s, p, c, pu, clv = (report.members, report.sales, report.points, report.coupons,
                           report.pushes, report.lifetime_value)
    lines = [f"Loyalty report 會員報表 · {report.shop}",
             f"{date_text(report.first_day)} - {date_text(report.last_day)} "
             f"({report.timezone}), generated {datetime_text(report.generated_at)}", ""]

    def section(title: str, rows: list[tuple[str, str]]) -> None:
        lines.append(title)
        lines.extend(_table(["", ""], [list(row) for row in rows])[1:])
        lines.append("")

    section("Members 會員", [
        ("Total 全部", _num(m.total)), ("New 新加入", _num(m.new)),
        ("Active 有消費", _num(m.active)),
        (f"Dormant 沉睡 ({m.dormant_after_days or '-'} days)", _num(m.dormant)),
        ("Blocked 已封鎖", _num(m.blocked))])
    section("Sales 消費", [
        ("Purchases 筆數", _num(s.purchases)), ("Customers 消費人數", _num(s.customers)),
        ("Repeat customers 回購人數", _num(s.repeat_customers)),
        ("Repurchase rate 回購率", _num(s.repurchase_rate, "%")),
        ("Repurchase cycle 回購週期 (days)", _num(s.repurchase_cycle_days)),
        ("Revenue 營收", _money(report, s.revenue)),
        ("Average order 客單價", _money(report, s.average_order_value)),
        ("Fully refunded, excluded 全額退款", _num(s.refunded_excluded)),
        ("Not claimed by a customer 未領取", _num(s.unclaimed))])
    lines.append("Coupons 優惠券")
    header = ["", "issued", "redeemed", "rate", "discount", "orders", "revenue", "cap used"]

    def coupon_line(row: CouponRow) -> list[str]:
        cap = f"{row.claimed:,}/{row.total_cap:,}" if row.total_cap else ""
        return [row.key if row.title == row.key else f"{row.key} {row.title}",
                _num(row.issued), _num(row.redeemed), _num(row.redemption_rate, "%"),
                _num(row.discount), _num(row.attributed_orders),
                _num(row.attributed_revenue), cap]
    lines.extend(_table(header, [coupon_line(r) for r in c.templates]
                        + [coupon_line(c.total)]))
    if c.campaigns:
        lines.append("  by campaign 活動別 (coupon reason)")
        lines.extend(_table(header[:-1], [coupon_line(r)[:-1] for r in c.campaigns]))
    lines.append("")
    section("Points 點數", [
        ("Issued 發出", _num(p.issued)), ("Redeemed 兌換", _num(p.redeemed)),
        ("Expired 到期", _num(p.expired)), ("Reversed by refunds 退款收回", _num(p.reversed)),
        ("Adjusted down 人工扣除", _num(p.adjusted_out)),
        ("Outstanding 流通在外", _num(p.outstanding)),
        ("  of which past expiry 已過期未結算", _num(p.outstanding_past_expiry)),
        ("Outstanding value 負債金額", _money(report, p.outstanding_value))])
    lines.append(f"Stamp cards 集點卡 (goal {report.stamps.goal})")
    lines.extend(_table(["", "stamps", "cards", "share"],
                        [[f.step, _num(f.stamps), _num(f.cards), _num(f.share, "%")]
                         for f in report.stamps.steps]))
    lines.append("")
    lines.append("Tiers 會員等級")
    lines.extend(_table(["", "members", "share"],
                        [[f"{t.key} {t.name}" if t.name != t.key else t.key,
                          _num(t.members), _num(t.share, "%")] for t in report.tiers]))
    lines.append("")
    section("Messages 訊息", [
        ("Billed by LINE 計費則數", _num(pu.billed)),
        *((f"  {k.kind}", _num(k.sent)) for k in pu.billed_by_kind),
        ("Forecast for the period 預估", _num(pu.forecast)),
        ("Billed per purchase 每筆消費", _num(pu.billed_per_purchase)),
        ("Billed per active member 每位消費會員", _num(pu.billed_per_active_member)),
        ("Allowance 額度", _num(pu.quota)), ("Allowance used 已用", _num(pu.quota_used, "%")),
        ("Allowance left 剩餘", _num(pu.quota_left)),
        ("Messages delivered 已送達", _num(pu.sent)),
        *((f"  {k.kind}", _num(k.sent)) for k in pu.by_kind),
        ("  in pushes 推播", _num(pu.single_pushes)),
        ("  in multicasts 群發", _num(pu.multicast_recipients)),
        ("  in free replies 免費回覆", _num(pu.by_reply)),
        ("Multicast batches 群發批次", _num(pu.multicast_batches)),
        ("Dropped as stale 過期未送", _num(pu.dropped))])
    if report.staff:
        lines.append("Staff 員工")
        lines.extend(_table(
            ["", "purchases", "revenue", "redemptions", "voids", "refused", "of which own",
             "claim codes", "claimed", "expired"],
            [[row.key + ("" if row.active else " (removed)"), _num(row.purchases),
              _num(row.revenue), _num(row.redemptions), _num(row.voids), _num(row.refused),
              _num(row.self_service), _num(row.claims_made), _num(row.claims_claimed),
              _num(row.claims_expired)] for row in report.staff]))
        lines.append("")
    if report.taps:
        lines.append("Taps 點擊 (counted by the bot)")
        lines.extend(_table(["where", "action", "taps"],
                            [[row.source, row.action, _num(row.taps)] for row in report.taps]))
        lines.append("")
    section(f"Customer lifetime value 顧客終身價值 (estimate, {clv.lifespan_years} years)", [
        ("CLV", _money(report, clv.value)),
        ("Average order 客單價", _money(report, clv.average_order_value)),
        ("Purchases per customer 人均筆數", _num(clv.purchases_per_customer)),
        ("Purchases per year 年化筆數", _num(clv.purchases_per_year))])
    return "\n".join(lines).rstrip() + "\n"


def _flatten(prefix: str, value: Any, out: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, item, out)
    elif isinstance(value, list):
        for item in value:
            name = next(item[k] for k in ("key", "kind", "step") if k in item)
            _flatten(f"{prefix}.{name}" if prefix else str(name),
                     {k: v for k, v in item.items() if k not in ("key", "kind", "step")}, out)
    else:
        out.append((prefix, "" if value is None else value))


def render_csv(report: Report) -> str:
    """section,metric,value rows (a header first); empty values where undefined."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "metric", "value"])
    for section, value in report.to_dict().items():
        if isinstance(value, dict | list):
            rows: list[tuple[str, Any]] = []
            _flatten("", value, rows)
            writer.writerows((section, metric, item) for metric, item in rows)
        else:
            writer.writerow(("report", section, value))
    return buffer.getvalue()
