"""The owner alerts' words in zh-TW and English (merged into bot.console.words)."""

from __future__ import annotations

WORDS: dict[str, dict[str, str]] = {
    "zh-TW": {
        "alerts": "提醒", "alerts_now": "目前的提醒", "alerts_none": "目前一切正常。",
        "alert_clock_never": "排程（clock）從未執行：生日禮、到期提醒、活動與推播都不會送出。"
                             "請啟動 Procfile 裡的 clock。",
        "alert_clock_stopped": "排程已經 {minutes} 分鐘沒有執行：推播、活動與到期處理都停了。"
                               "請檢查 clock 程序。",
        "alert_allowance": "本月 LINE 訊息額度已用 {percent}%（{sent}／{allowance} 則）。",
        "alert_webhooks": "最近一小時有 {count} 個 LINE 事件處理失敗（最後一次：{reason}）。",
        "alert_job_failed": "排程工作「{job}」上次執行失敗：{error}",
        "alerts_line": "用 LINE 接收提醒",
        "alerts_line_hint": "連結你自己的 LINE 後，有狀況時每天最多傳一則提醒給你（算一則推播，"
                            "計入本月額度）。排程停止只會顯示在後台：傳 LINE 訊息的正是排程。",
        "alerts_linked": "已連結：{name}（會員碼 {code}）",
        "alerts_not_linked": "還沒有連結 LINE。",
        "alerts_link": "產生連結碼",
        "alerts_link_hint": "請在 24 小時內用你自己的 LINE 掃描這個 QR 碼並送出，或把下面這行"
                            "傳給官方帳號（只能用一次）：",
        "alerts_link_qr": "連結 QR 碼", "alerts_unlink": "取消連結",
        "alerts_unlinked": "已取消連結，提醒不會再傳到 LINE。",
        "alerts_owner_only": "只有店主可以設定提醒。",
        "job_alerts": "有狀況時傳 LINE 提醒給店主（每天最多一則）",
        "kind_owner_alert": "店主提醒",
    },
    "en": {
        "alerts": "Alerts", "alerts_now": "Alerts now", "alerts_none": "All is well.",
        "alert_clock_never": "The clock has never run: no birthday gifts, expiry warnings, "
                             "campaigns or pushes go out. Start the Procfile's clock.",
        "alert_clock_stopped": "The clock has not run for {minutes} minutes: pushes, "
                               "campaigns and expiries have stopped. Check the clock process.",
        "alert_allowance": "{percent}% of this month's LINE messages used ({sent} of "
                           "{allowance}).",
        "alert_webhooks": "{count} LINE events failed in the last hour (the last: {reason}).",
        "alert_job_failed": "The clock job \"{job}\" failed on its last run: {error}",
        "alerts_line": "Alerts in LINE",
        "alerts_line_hint": "Link your own LINE and, when something is wrong, one message a "
                            "day at most comes to you (a push, counted in this month's "
                            "allowance). A stopped clock is shown here only: the clock is what "
                            "sends the LINE message.",
        "alerts_linked": "Linked: {name} (member code {code})",
        "alerts_not_linked": "No LINE chat linked yet.", "alerts_link": "Make a link code",
        "alerts_link_hint": "Within 24 hours, scan this QR code with your own LINE and send "
                            "what it types, or send this line to the shop's account (once):",
        "alerts_link_qr": "Link QR code", "alerts_unlink": "Unlink",
        "alerts_unlinked": "Unlinked: alerts no longer go to LINE.",
        "alerts_owner_only": "Only an owner can set up alerts.",
        "job_alerts": "a LINE message to owners, once a day, when something is wrong",
        "kind_owner_alert": "Owner alert",
    },
}
