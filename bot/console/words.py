"""The console's words in zh-TW and English (the domain's errors carry their own)."""

from __future__ import annotations

WORDS: dict[str, dict[str, str]] = {
    "zh-TW": {
        "console": "店家後台", "sign_in": "登入", "sign_out": "登出", "email": "電子郵件",
        "password": "密碼", "new_password": "新密碼", "old_password": "目前的密碼",
        "setup": "建立第一個店主帳號", "setup_token": "設定碼（CONSOLE_SETUP_TOKEN）",
        "setup_done": "已經有店主帳號了，請登入。", "create": "建立",
        "set_password": "設定密碼", "password_set": "密碼已設定，請登入。",
        "password_changed": "密碼已更改，請重新登入。", "change_password": "更改密碼",
        "dashboard": "總覽", "accounts": "帳號", "period": "期間", "previous": "前一期",
        "members_total": "會員總數", "members_new": "新會員", "members_active": "有消費會員",
        "members_dormant": "沉睡會員", "revenue": "營收", "average_order": "客單價",
        "repurchase_rate": "回購率", "repurchase_cycle": "回購週期（天）",
        "redemption_rate": "優惠券使用率", "points_liability": "點數負債",
        "billed_messages": "LINE 計費訊息", "allowance": "本月額度", "show": "顯示",
        "from": "從", "to": "到", "role": "角色", "owner": "店主", "manager": "店長",
        "invite": "邀請", "remove": "移除", "reset": "重設密碼",
        "link_for": "請把這個連結交給 {email}（24 小時內有效，只能用一次）：",
        "removed": "{email} 已移除，登入立即失效。", "you": "（你）",
        "session_over": "登入已逾時，請重新登入。",
        "bad_form": "表單已過期，請重新整理頁面後再送出。",
        "not_allowed": "只有店主可以開啟這一頁。", "language": "English",
        "figure": "項目", "this_period": "本期", "change": "變化",
    },
    "en": {
        "console": "Shop console", "sign_in": "Sign in", "sign_out": "Sign out",
        "email": "E-mail", "password": "Password", "new_password": "New password",
        "old_password": "Current password", "setup": "Create the first owner account",
        "setup_token": "Setup token (CONSOLE_SETUP_TOKEN)",
        "setup_done": "An owner account exists already: please sign in.", "create": "Create",
        "set_password": "Set your password", "password_set": "Password set: please sign in.",
        "password_changed": "Password changed: please sign in again.",
        "change_password": "Change password", "dashboard": "Dashboard",
        "accounts": "Accounts", "period": "Period", "previous": "Previous period",
        "members_total": "Members", "members_new": "New members",
        "members_active": "Members who bought", "members_dormant": "Dormant members",
        "revenue": "Revenue", "average_order": "Average order",
        "repurchase_rate": "Repurchase rate", "repurchase_cycle": "Repurchase cycle (days)",
        "redemption_rate": "Coupon redemption rate", "points_liability": "Points liability",
        "billed_messages": "Billed LINE messages", "allowance": "this month's allowance",
        "show": "Show", "from": "From", "to": "To", "role": "Role", "owner": "Owner",
        "manager": "Manager", "invite": "Invite", "remove": "Remove",
        "reset": "Reset password",
        "link_for": "Give this link to {email} (valid 24 hours, once):",
        "removed": "{email} was removed; their sign-in ends at once.", "you": " (you)",
        "session_over": "Your session is over: please sign in again.",
        "bad_form": "This form has expired: reload the page and send it again.",
        "not_allowed": "Only an owner can open this page.", "language": "中文",
        "figure": "Figure", "this_period": "This period", "change": "Change",
    },
}


def words(lang: str) -> dict[str, str]:
    return WORDS["en" if lang.startswith("en") else "zh-TW"]
