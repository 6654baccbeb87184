"""The words of the console's members import and membership move pages (zh-TW, English),
merged into bot.console.words."""

from __future__ import annotations

MORE_WORDS: dict[str, dict[str, str]] = {
    "zh-TW": {
        "import": "匯入會員", "import_owner_only": "只有店主可以匯入會員。",
        "import_hint": "上傳 POS 匯出的會員 CSV（UTF-8），欄位如下（順序不拘）。已匯入過的"
                       "（external_id 相同）會略過，所以可以重複上傳。匯入在背景進行，"
                       "可以關掉這一頁。",
        "import_file": "CSV 檔（最大 {most} MB）", "import_button": "上傳並匯入",
        "import_no_file": "請先選擇要上傳的 CSV 檔。",
        "import_too_large": "檔案太大（{size} MB），最大 {most} MB：請把檔案分成幾個較小的檔案"
                            "再上傳，什麼都沒有匯入。",
        "import_too_large_here": "這個檔案超過 {most} MB，請分成幾個較小的檔案再上傳。",
        "form_too_large": "送出的資料太大，什麼都沒有變更。",
        "import_recent": "最近的匯入", "import_none": "還沒有匯入過。",
        "import_filename": "檔案", "import_rows": "已處理列數",
        "import_queued": "排隊中", "import_running": "匯入中", "import_done": "完成",
        "import_failed": "失敗",
        "import_waiting": "排程程序（clock）每分鐘會接手。",
        "import_checking": "正在檢查檔案……",
        "import_progress": "已處理 {done} / {total} 列（{percent}%）",
        "import_imported": "新會員", "import_opening_points": "開卡點數",
        "import_skipped": "已匯入過（略過）", "import_refused": "無法匯入的列",
        "import_refused_rows": "無法匯入的列（行號與原因）",
        "import_download_refused": "下載全部（CSV）",
        "import_first_shown": "這裡只列出前 {n} 列",
        "import_line": "行號", "import_back": "← 所有匯入",
        "import_failed_why": "無法匯入這個檔案：{reason}",
        "import_by": "{who} 於 {when} 上傳，{size}", "import_title": "匯入會員：{name}",
        "import_unknown": "找不到這次匯入。",
        "job_imports": "匯入後台上傳的會員檔",
        "move": "轉移到新的 LINE 帳號",
        "move_hint": "顧客換了手機或 LINE 帳號時使用。先確認是本人（證件、手機號碼），再請"
                     "顧客用新的 LINE 帳號加入好友、點「會員卡」，輸入卡上的會員碼。點數（各自"
                     "的到期日）、集章、優惠券、消費與點數紀錄、標籤、等級和生日都會轉過去，"
                     "新帳號自己的點數、集章和優惠券也會併入；舊的 LINE 帳號從此不再是這位"
                     "會員。只能轉到還沒有消費、沒用過優惠券的新帳號，每個新帳號只能轉一次。",
        "move_code": "新帳號的會員碼", "move_button": "轉移會員資格",
        "moved": "已轉移到新的 LINE 帳號：新帳號（會員碼 {code}）的 {points} 點、集章和"
                 "優惠券已併入，舊的 LINE 帳號已解除。",
        "move_welcome_voided": "新帳號的新會員見面禮已作廢（這位會員領過了）。",
    },
    "en": {
        "import": "Import members", "import_owner_only": "Only an owner can import members.",
        "import_hint": "Upload the members CSV your POS exports (UTF-8), with these columns "
                       "in any order. Rows already imported (same external_id) are skipped, "
                       "so uploading a file again is safe. The import runs in the background: "
                       "you can close this page.",
        "import_file": "CSV file (at most {most} MB)", "import_button": "Upload and import",
        "import_no_file": "Choose the CSV file to upload first.",
        "import_too_large": "The file is too large ({size} MB); the most is {most} MB: split "
                            "it into smaller files and upload each. Nothing was imported.",
        "import_too_large_here": "This file is over {most} MB: split it into smaller files "
                                 "and upload each.",
        "form_too_large": "What was sent is too large; nothing changed.",
        "import_recent": "Latest imports", "import_none": "Nothing imported yet.",
        "import_filename": "File", "import_rows": "Rows done",
        "import_queued": "Waiting", "import_running": "Importing", "import_done": "Done",
        "import_failed": "Failed",
        "import_waiting": "the clock process takes it within a minute.",
        "import_checking": "Checking the file…",
        "import_progress": "{done} of {total} rows done ({percent}%)",
        "import_imported": "New members", "import_opening_points": "Opening points",
        "import_skipped": "Already imported (skipped)", "import_refused": "Rows not imported",
        "import_refused_rows": "Rows not imported (line and reason)",
        "import_download_refused": "Download them all (CSV)",
        "import_first_shown": "the first {n} are listed here",
        "import_line": "Line", "import_back": "← All imports",
        "import_failed_why": "This file could not be imported: {reason}",
        "import_by": "Uploaded by {who} on {when}, {size}", "import_title": "Import: {name}",
        "import_unknown": "No such import.",
        "job_imports": "import members files uploaded in the console",
        "move": "Move to a new LINE account",
        "move_hint": "For a customer with a new phone or LINE account. Check it is them first "
                     "(an ID, their phone number), then ask them to add the shop from the new "
                     "LINE account, open the member card and read you its code. Points (each "
                     "with its own expiry), stamps, coupons, purchases and the ledger, tags, "
                     "tier and birthday move there, and the new account's own points, stamps "
                     "and coupons are added; the old LINE account stops being this member's. "
                     "Only to a new account without purchases or used coupons, and once per "
                     "new account.",
        "move_code": "The new account's member code", "move_button": "Move the membership",
        "moved": "Moved to the new LINE account: its own {points} points, stamps and "
                 "coupons (member code {code}) were added, and the old LINE account is "
                 "unlinked.",
        "move_welcome_voided": " The new account's welcome coupon is void: this member had "
                               "their welcome gift already.",
    },
}
