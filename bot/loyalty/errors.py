"""Exceptions named after the rule that was broken.

Each has a stable machine `code` (for the API and logs) and a human message in zh-TW and
English; `message(lang)` picks one.
"""

from __future__ import annotations

import datetime as dt


class LoyaltyError(Exception):
    code = "loyalty_error"
    zh = "無法完成這個操作。"
    en = "This can't be done."
    money: tuple[str, ...] = ()  # context fields that are amounts of the `currency` field

    def __init__(self, **context):
        self.context = context
        super().__init__(self.message("en"))

    def message(self, lang: str = "zh-TW") -> str:
        """The message with amounts as NT$1,234 and days as 2027/01/06 (the one way)."""
        # bot.line.formatting reads the coupons and purchases that raise these errors
        from bot.line.formatting import date_text, money_text
        currency = str(self.context.get("currency", ""))
        shown = {key: money_text(value, currency) if key in self.money
                 else date_text(value) if isinstance(value, dt.date) else value
                 for key, value in self.context.items()}
        template = self.en if lang.lower().startswith("en") else self.zh
        return template.format(**shown)


class UnknownCode(LoyaltyError):
    code = "unknown_code"
    zh = "查無此代碼，請確認後再試一次。"
    en = "No such code. Please check it and try again."


class UnknownMember(LoyaltyError):
    code = "not_found"
    zh = "找不到這位會員。"
    en = "No such member."


class MemberBlocked(LoyaltyError):
    code = "member_blocked"
    zh = "這位會員目前已停用。"
    en = "This membership is not active."


class MemberClosed(LoyaltyError):
    code = "member_closed"
    zh = "這張會員卡已合併到其他會員或已刪除，請改用顧客 LINE 裡的會員卡。"
    en = "This member record was merged into another member or erased: use the member card " \
         "in the customer's LINE."


class CouponAlreadyRedeemed(LoyaltyError):
    code = "already_redeemed"
    zh = "這張優惠券已經使用過了。"
    en = "This coupon has already been used."


class CouponExpired(LoyaltyError):
    code = "expired"
    zh = "這張優惠券已過期（{until}）。"
    en = "This coupon expired on {until}."


class CouponNotYetValid(LoyaltyError):
    code = "not_yet_valid"
    zh = "這張優惠券從 {since} 起才能使用。"
    en = "This coupon can be used from {since}."


class CouponNotYours(LoyaltyError):
    code = "not_yours"
    zh = "這張優惠券不屬於這位會員。"
    en = "This coupon belongs to another member."


class MinimumSpendNotMet(LoyaltyError):
    code = "minimum_spend_not_met"
    zh = "消費滿 {minimum} 才能使用（本次 {amount}）。"
    en = "Needs a spend of {minimum} or more (this order: {amount})."
    money = ("minimum", "amount")


class CapReached(LoyaltyError):
    code = "quantity_exceeded"
    zh = "「{title}」已經發送完畢或已達領取上限。"
    en = "No more \"{title}\" coupons can be given out."


class CouponWindowClosed(LoyaltyError):
    code = "campaign_ended"
    zh = "「{title}」的發送期間已結束。"
    en = "\"{title}\" is no longer being given out."


class InsufficientPoints(LoyaltyError):
    code = "insufficient_points"
    zh = "點數不足：需要 {needed} 點，目前有 {balance} 點。"
    en = "Not enough points: {needed} needed, {balance} available."


class UnknownReward(LoyaltyError):
    code = "unknown_reward"
    zh = "沒有這個兌換項目（可能已經更改），請重新打開兌換目錄。"
    en = "No such reward (it may have changed): please open the rewards catalog again."


class ProgramChanged(LoyaltyError):
    """Someone saved the program since this edit began: never overwrite their change."""
    code = "program_changed"
    zh = "方案已在 {at} 由 {by} 改為第 {version} 版：請重新載入後再修改。"
    en = "The program was changed by {by} at {at} (version {version}): reload it and make " \
         "your change again."


class UnknownProgramVersion(LoyaltyError):
    code = "unknown_program_version"
    zh = "沒有第 {number} 版的方案。"
    en = "There is no version {number} of the program."


class RewardChanged(LoyaltyError):
    """The reward's coupon is not the one the member confirmed: they confirm the new one."""
    code = "reward_changed"
    zh = "這個兌換項目的內容已經更改，請確認新的內容後再兌換。"
    en = "What this reward gives has changed: please look at it again and confirm."


class RewardPriceChanged(LoyaltyError):
    """The reward's price is not the one the member confirmed: they confirm the new one."""
    code = "reward_price_changed"
    zh = "這個兌換項目的點數已從 {shown} 點改為 {points} 點，請再確認一次。"
    en = "This reward now takes {points} points, not {shown}: please confirm again."


class RewardUnavailable(LoyaltyError):
    code = "reward_unavailable"
    zh = "這個兌換項目目前沒有提供。"
    en = "This reward is not available now."


class InvalidAmount(LoyaltyError):
    code = "invalid_amount"
    zh = "金額或數量不正確：{detail}"
    en = "Invalid amount: {detail}"


class RefundExceedsPurchase(LoyaltyError):
    code = "refund_exceeds_purchase"
    zh = "退款金額超過訂單剩餘金額（最多 {left}）。"
    en = "The refund is more than what is left on the order ({left} at most)."
    money = ("left",)


class UnknownOrder(LoyaltyError):
    code = "not_found"
    zh = "找不到這筆訂單。"
    en = "No such order."


class OrderConflict(LoyaltyError):
    code = "order_conflict"
    zh = "這個訂單編號已用於另一筆不同的消費。"
    en = "This order id was already recorded with different details."


class RefundConflict(LoyaltyError):
    code = "refund_conflict"
    zh = "這個退款編號已用於另一筆訂單或另一個金額。"
    en = "This refund id was already used for another order or amount."


class BirthdayAlreadySet(LoyaltyError):
    code = "birthday_already_set"
    zh = "生日已經設定過了；如需更改請洽店家。"
    en = "Your birthday is already set; please ask the shop to change it."


class InvalidBirthday(LoyaltyError):
    code = "invalid_birthday"
    zh = "生日日期不正確。"
    en = "That birthday is not a valid date."


# -- staff -------------------------------------------------------------------------------------


class UnknownStaff(LoyaltyError):
    code = "not_found"
    zh = "找不到這位員工。"
    en = "No such staff member."


class InvalidStaffId(LoyaltyError):
    code = "invalid_line_user_id"
    zh = "LINE 使用者 ID 應為 U 開頭的 33 個字元。"
    en = "A LINE user id is 33 characters starting with U."


class SelfService(LoyaltyError):
    code = "self_service"
    zh = "員工不能幫自己集點或核銷自己的優惠券，請同事協助。"
    en = ("Staff can't record purchases for themselves or redeem their own coupons; please "
          "ask a colleague.")


# -- campaigns and segments --------------------------------------------------------------------


class CampaignError(LoyaltyError):
    code = "invalid_campaign"
    zh = "活動設定有誤：{detail}"
    en = "Invalid campaign: {detail}"


class CampaignKeyInvalid(CampaignError):
    zh = "活動代號只能用小寫英文字母、數字、_ 和 -（最多 64 個字）：「{key}」不行。"
    en = "Invalid campaign: '{key}': a key is lower-case letters, digits, _ and -"


class CampaignKeyTaken(CampaignError):
    zh = "已經有代號「{key}」的活動了，請換一個代號。"
    en = "Invalid campaign: a campaign '{key}' exists already"


class CampaignKeywordInvalid(CampaignError):
    zh = "領取關鍵字是一個詞（不含空白），最多 64 個字。"
    en = "Invalid campaign: the keyword is one word of up to 64 characters"


class CampaignKeywordTaken(CampaignError):
    zh = "另一個活動已經使用關鍵字「{keyword}」了。"
    en = "Invalid campaign: another campaign uses the keyword '{keyword}'"


class CampaignCapInvalid(CampaignError):
    zh = "領取上限至少要 1 張。"
    en = "Invalid campaign: the cap must be at least 1"


class CampaignNotScheduled(CampaignError):
    zh = "「{name}」只有尚未發送的發券活動可以安排發送時間。"
    en = "Invalid campaign: only a draft issue campaign can be scheduled, not \"{name}\""


class CampaignNotClaim(CampaignError):
    zh = "「{name}」是直接發放的活動，沒有開放或結束領取。"
    en = "Invalid campaign: \"{name}\" is given, not claimed: it is not opened or closed"


class CampaignNoSchedule(CampaignError):
    zh = "「{name}」沒有排定的發送時間。"
    en = "Invalid campaign: \"{name}\" is not scheduled"


class CampaignTimePassed(CampaignError):
    zh = "發送時間 {when} 已經過了，請選一個未來的時間。"
    en = "Invalid campaign: {when} has passed; choose a time to come"


class CampaignSending(CampaignError):
    zh = "「{name}」的發送時間已到，排程正在發送，無法取消。"
    en = "Invalid campaign: \"{name}\" is due and being sent; it cannot be cancelled"


class UnknownCampaign(LoyaltyError):
    code = "not_found"
    zh = "沒有這個活動。"
    en = "No such campaign."


class CampaignNotOpen(LoyaltyError):
    code = "campaign_ended"
    zh = "「{name}」目前沒有開放領取。"
    en = "\"{name}\" is not open for claiming."


class CampaignFull(LoyaltyError):
    code = "quantity_exceeded"
    zh = "「{name}」已經被領取完畢，下次請早！"
    en = "\"{name}\" has all been claimed. Better luck next time!"


class AlreadyClaimed(LoyaltyError):
    code = "already_claimed"
    zh = "你已經領過「{name}」了，請到優惠券查看。"
    en = "You already have \"{name}\": see your coupons."


class NotInSegment(LoyaltyError):
    code = "not_eligible"
    zh = "這個活動不適用於你的會員資格。"
    en = "This offer is not available for your membership."


class SegmentError(LoyaltyError):
    code = "invalid_segment"
    zh = "分眾條件有誤：{detail}"
    en = "Invalid segment: {detail}"


class TagNameInvalid(SegmentError):
    zh = "「{text}」不能當標籤：請用中文、英文字母、數字、_ 或 -，最多 64 字。"
    en = "'{text}' is not a tag name (letters, digits, _ and -, up to 64)."


class TagAutomatic(SegmentError):
    zh = "「{name}」是系統每天自動計算的標籤，不能手動加上。"
    en = "{name} is an automatic tag, recomputed every day: it is not given by hand."


# -- API tokens (bot.loyalty.api_tokens) --------------------------------------------------------
class TokenError(LoyaltyError):
    """A token command that cannot be done, in words for the owner."""
    code = "token_error"


class TokenNameInvalid(TokenError):
    code = "token_name_invalid"
    zh = "請為權杖取一個 1 到 100 字的名稱（例如收銀機的名字）。"
    en = "Give the token a name of 1 to 100 characters (the POS's name, say)."


class TokenScopeMissing(TokenError):
    code = "token_scope_missing"
    zh = "請至少選一項權限。"
    en = "Give the token at least one scope."


class TokenScopeUnknown(TokenError):
    code = "token_scope_unknown"
    zh = "沒有這種權限：{unknown}；可以選：{choices}。"
    en = "Unknown scopes: {unknown}; choose from: {choices}."


class UnknownToken(TokenError):
    code = "unknown_token"
    zh = "找不到權杖 {which}：權杖列表有每個權杖的編號與開頭。"
    en = "No token {which}: the list of tokens shows each one's id and first characters."


# -- member data: import and linking -----------------------------------------------------------


class ImportFileError(LoyaltyError):
    code = "import_bad_file"
    zh = "匯入檔案無法使用：{detail}"
    en = "The import file can't be used: {detail}"


class InvalidPhone(LoyaltyError):
    code = "invalid_phone"
    zh = "手機號碼格式不正確（請輸入 09 開頭的 10 碼手機號碼）。"
    en = "That is not a Taiwan mobile number (10 digits starting with 09)."


class LinkUnknownRecord(LoyaltyError):
    code = "link_unknown_record"
    zh = "查無此會員編號，請確認後再試一次。"
    en = "No member record has this member code. Please check it and try again."


class LinkNoRecordForPhone(LoyaltyError):
    """Said alike whether nobody has the phone or someone it cannot be linked from does: a
    refusal must not tell a guesser whose phone it is."""
    code = "link_unknown_record"
    zh = "沒有可以用這支電話綁定的匯入會員資料，請確認號碼。"
    en = "No imported member record can be linked with this phone number. Please check it."


class LinkPhoneMismatch(LoyaltyError):
    code = "link_phone_mismatch"
    zh = "手機號碼與這筆會員資料不符。"
    en = "The phone number does not match this member record."


class LinkNotImported(LoyaltyError):
    code = "link_not_imported"
    zh = "這個會員編號屬於已加入 LINE 的會員，不是待綁定的匯入資料。"
    en = "This member code belongs to a LINE member, not to an imported record."


class LinkAlreadyLinked(LoyaltyError):
    code = "link_already_linked"
    zh = "這筆會員資料已經綁定過了。"
    en = "This member record has already been linked."


class LinkRecordClosed(LoyaltyError):
    code = "link_record_closed"
    zh = "這筆會員資料已停用或已刪除，無法綁定。"
    en = "This member record is closed or erased and can't be linked."


class LinkToSelf(LoyaltyError):
    code = "link_to_self"
    zh = "不能把會員資料綁定到自己。"
    en = "A member record can't be linked to itself."


class LinkNeedsLineMember(LoyaltyError):
    code = "link_not_line_member"
    zh = "只能綁定到已加入 LINE 的會員。"
    en = "A record can only be linked to a member who joined on LINE."


class ConsoleError(LoyaltyError):
    code = "console_error"


class SetupClosed(ConsoleError):
    code = "setup_closed"
    zh = "已經有店主帳號了：請登入，或請店主邀請你。"
    en = "An owner account exists already: sign in, or ask the owner to invite you."


class WrongSetupToken(ConsoleError):
    code = "wrong_setup_token"
    zh = "設定碼不正確（請看部署平台上的 CONSOLE_SETUP_TOKEN）。"
    en = "That setup token is not right (see CONSOLE_SETUP_TOKEN in your hosting settings)."


class SetupNotConfigured(ConsoleError):
    code = "setup_not_configured"
    zh = "尚未設定 CONSOLE_SETUP_TOKEN：請在部署平台設定後重新啟動，或用指令 owner add 建立帳號。"
    en = "CONSOLE_SETUP_TOKEN is not set: set it in your hosting settings and restart, or " \
         "create the account with the owner add command."


class InvalidEmail(ConsoleError):
    code = "invalid_email"
    zh = "電子郵件格式不正確：{email}"
    en = "That is not an e-mail address: {email}"


class WeakPassword(ConsoleError):
    code = "weak_password"
    zh = "密碼至少要 {minimum} 個字元，且不能只有同一個字。"
    en = "A password needs at least {minimum} characters, not all the same."


class AccountExists(ConsoleError):
    code = "account_exists"
    zh = "{email} 已經有帳號了。"
    en = "{email} has an account already."


class UnknownAccount(ConsoleError):
    code = "unknown_account"
    zh = "沒有 {email} 這個帳號。"
    en = "There is no account for {email}."


class LastOwner(ConsoleError):
    code = "last_owner"
    zh = "這是最後一個店主帳號，不能移除。"
    en = "This is the last owner account: it cannot be removed."


class LoginRefused(ConsoleError):
    code = "login_refused"
    zh = "電子郵件或密碼不正確。"
    en = "Wrong e-mail or password."


class LoginThrottled(ConsoleError):
    code = "login_throttled"
    zh = "登入失敗太多次，請 {minutes} 分鐘後再試。"
    en = "Too many failed sign-ins: try again in {minutes} minutes."


class LinkInvalid(ConsoleError):
    code = "link_invalid"
    zh = "這個連結已失效或已使用過，請向店主要新的連結。"
    en = "This link has expired or was used already: ask the owner for a new one."


class OwnerOnly(ConsoleError):
    code = "owner_only"
    zh = "只有店主可以這樣做。"
    en = "Only an owner can do this."



class ClaimsOff(LoyaltyError):
    code = "claims_off"
    zh = "本店未開啟領取碼，請在集點時輸入會員碼：集點 會員碼 金額。"
    en = "Claim codes are off in this shop: record the purchase with the member code, " \
         "earn MEMBERCODE AMOUNT."


class UnknownClaim(LoyaltyError):
    code = "unknown_claim"
    zh = "查無此領取碼，請確認後再試一次。"
    en = "No such claim code. Please check it and try again."


class ClaimExpired(LoyaltyError):
    code = "claim_expired"
    zh = "這個領取碼已於 {until} 過期，請向店員索取新的領取碼。"
    en = "This claim code expired at {until}. Please ask the staff for a new one."


class ClaimCancelled(LoyaltyError):
    code = "claim_cancelled"
    zh = "這個領取碼已被店家取消。"
    en = "This claim code was cancelled by the shop."


class ClaimTaken(LoyaltyError):
    code = "claim_taken"
    zh = "這個領取碼已被領取過了。"
    en = "This claim code has already been claimed."


class ClaimNotYours(LoyaltyError):
    code = "claim_not_yours"
    zh = "這個領取碼是給另一位會員的。"
    en = "This claim code belongs to another member."


class ClaimLimitReached(LoyaltyError):
    code = "claim_limit"
    money = ("limit",)
    zh = "今天的領取碼總額已達上限 {limit}，請改用 集點 會員碼 金額。"
    en = "Today's total of claim codes has reached its limit of {limit}: use earn " \
         "MEMBERCODE AMOUNT instead."


class AmountMissing(LoyaltyError):
    code = "amount_missing"
    zh = "請在會員碼後面輸入金額，例如：集點 {code} 150"
    en = "Type the amount after the member code, e.g. earn {code} 150"


# -- corrections by hand (the owner console) ---------------------------------------------------


class ReasonRequired(InvalidAmount):  # an input left out, as a missing amount is
    code = "invalid_amount"
    zh = "請寫下原因（會記在異動紀錄裡）。"
    en = "Give a reason: it is kept in the audit trail."


class InvalidStampCount(LoyaltyError):
    code = "invalid_stamp_count"
    zh = "請輸入 1 到 {goal} 之間的章數，給章用正數、收回用負數（例如 1 或 -1）。"
    en = "Type a number of stamps from 1 to {goal}: positive to give, negative to take " \
         "back (e.g. 1 or -1)."


class NotEnoughStamps(LoyaltyError):
    code = "not_enough_stamps"
    zh = "目前的集點卡只有 {stamps} 章，不能收回 {count} 章。"
    en = "The current card holds {stamps} stamps: {count} cannot be taken back."


class UnknownTemplate(LoyaltyError):
    code = "unknown_template"
    zh = "方案裡沒有「{key}」這種優惠券。"
    en = "The program has no coupon template \"{key}\"."


class ConfirmationMismatch(LoyaltyError):
    code = "confirmation_mismatch"
    zh = "輸入的會員碼與這位會員不符，沒有刪除任何資料。"
    en = "The member code typed does not match this member: nothing was erased."


class RetryUnsafe(LoyaltyError):
    code = "retry_unsafe"
    zh = "只有 LINE 明確拒收（4xx）的推播可以重送；這則訊息的結果不明或已處理，" \
         "重送可能讓顧客收到兩次。"
    en = "Only a push LINE definitely refused (a 4xx answer) can be sent again; this one's " \
         "fate is unknown or settled, and sending it again could show it twice."


class MoveUnknownAccount(LoyaltyError):
    code = "move_unknown_account"
    zh = "找不到會員碼 {code}：請顧客在新的 LINE 帳號點「會員卡」，念出卡上的會員碼。"
    en = "No member has the code {code}: ask the customer to open the member card in their " \
         "new LINE account and read its code."


class MoveToSelf(LoyaltyError):
    code = "move_to_self"
    zh = "這是同一位會員的會員碼：請輸入顧客新 LINE 帳號的會員卡上的會員碼。"
    en = "That is this member's own code: type the code on the member card of the " \
         "customer's new LINE account."


class MoveAlreadyDone(LoyaltyError):
    code = "move_already_done"
    zh = "會員碼 {code} 的帳號已經轉移過了（併入 {into}），沒有再轉移一次。"
    en = "The account with the code {code} was already moved (into {into}): nothing was " \
         "moved again."


class MoveNeedsLineAccount(LoyaltyError):
    code = "move_needs_line_account"
    zh = "會員碼 {code} 不是 LINE 帳號的會員（是匯入的資料）：只能轉移到顧客新的 LINE 帳號。"
    en = "The code {code} is not a LINE account's member (it is an imported record): a " \
         "membership moves only to the customer's new LINE account."


class MoveFromNoLine(LoyaltyError):
    code = "move_from_no_line"
    zh = "這位會員沒有 LINE 帳號（匯入的資料）：請店員用「綁定」把它綁到顧客的 LINE 會員。"
    en = "This member has no LINE account (an imported record): staff link it to the " \
         "customer's LINE membership with 綁定 (link) instead."


class MoveTargetHasHistory(LoyaltyError):
    code = "move_target_has_history"
    zh = "會員碼 {code} 的帳號已有自己的消費或使用過優惠券，不能轉移到這個帳號"
    zh += "（只能轉移到還沒有消費、沒用過優惠券的新帳號）。"
    en = "The account with the code {code} already has purchases or used coupons of its " \
         "own: a membership moves only to a new account without any."


class MoveToStaffAccount(LoyaltyError):
    code = "move_to_staff_account"
    zh = "會員碼 {code} 是店員的 LINE 帳號，不能把會員資格轉移過去。"
    en = "The code {code} is a staff member's LINE account: a membership can't be moved " \
         "there."


class MoveFromStaffAccount(LoyaltyError):
    code = "move_from_staff_account"
    zh = "這位會員的 LINE 帳號是店員帳號：請先在「員工」頁移除，再轉移會員資格。"
    en = "This member's LINE account is a staff member's: remove them on the Staff page " \
         "first, then move the membership."
