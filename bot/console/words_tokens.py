"""The API tokens page's words in zh-TW and English (merged into bot.console.words)."""

from __future__ import annotations

WORDS: dict[str, dict[str, str]] = {
    "zh-TW": {
        "tokens": "API 權杖",
        "tokens_how": "收銀系統（POS）或網路商店用權杖呼叫本系統的 API（/api/v1）：記錄消費、"
                      "核銷優惠券等。每台機器各用一個權杖，只給它需要的權限；不用了就撤銷，"
                      "立即失效。",
        "tokens_owner_only": "只有店主可以管理 API 權杖。",
        "tokens_none": "還沒有權杖。",
        "token_new": "新增權杖", "token_name": "名稱（例如：櫃台收銀機）", "token_name_col": "名稱",
        "token_scopes": "權限", "token_prefix": "開頭", "token_last_used": "最後使用",
        "token_never": "從未使用", "token_create": "產生權杖", "token_revoke": "撤銷",
        "token_made": "「{name}」的權杖如下，請現在複製到收銀系統的設定裡：",
        "token_once": "這串權杖只會顯示這一次，系統只保存它的雜湊值；遺失了就撤銷再產生一個。",
        "token_revoked": "「{name}」的權杖已撤銷，立即失效。",
        "token_revoked_on": "已於 {date} 撤銷",
        "scope_purchases_write": "記錄消費與退款",
        "scope_coupons_redeem": "查詢與核銷優惠券",
        "scope_coupons_issue": "發優惠券給會員",
        "scope_points_redeem": "用點數兌換好禮",
        "scope_members_read": "查詢會員與摘要",
        "scope_members_write": "為會員加上或移除標籤",
        "scope_reports_read": "讀取營運報表",
    },
    "en": {
        "tokens": "API tokens",
        "tokens_how": "A POS or a web shop calls this system's API (/api/v1) with a token: to "
                      "record purchases, redeem coupons and so on. Give each machine its own "
                      "token with only the scopes it needs; revoke one you no longer use and "
                      "it stops working at once.",
        "tokens_owner_only": "Only an owner can manage API tokens.",
        "tokens_none": "No tokens yet.",
        "token_new": "New token", "token_name": "Name (like: front counter till)",
        "token_name_col": "Name",
        "token_scopes": "Scopes", "token_prefix": "Starts with", "token_last_used": "Last used",
        "token_never": "never", "token_create": "Make the token", "token_revoke": "Revoke",
        "token_made": "The token for \"{name}\": copy it into the POS's settings now:",
        "token_once": "It is shown this once; only its hash is kept. If it is lost, revoke it "
                      "and make another.",
        "token_revoked": "The token for \"{name}\" is revoked: it stops working at once.",
        "token_revoked_on": "revoked {date}",
        "scope_purchases_write": "Record purchases and refunds",
        "scope_coupons_redeem": "Check and redeem coupons",
        "scope_coupons_issue": "Give a member a coupon",
        "scope_points_redeem": "Exchange points for a reward",
        "scope_members_read": "Look up members and their summaries",
        "scope_members_write": "Tag and untag members",
        "scope_reports_read": "Read the analytics report",
    },
}
