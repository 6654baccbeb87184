"""QR codes: what they hold, and the opaque tokens their PNGs are served under
(bot/line/qr_images.py serves them; this module loads no web framework, so the clock's
messages can name QR images).

A token is the payload encrypted with AES-SIV under a key derived from SECRET_KEY: it
cannot be read (the payload holds a coupon or member code, and every image URL lands in the
access log) or forged, and the same payload always gives the same URL, so LINE's image cache
keeps working. Tokens of the earlier, signed-only kind still show their image: they are in
customers' chats already."""

from __future__ import annotations

import base64
import binascii
import functools
import io
from urllib.parse import quote, unquote, urlsplit

import qrcode
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, URLSafeSerializer

SALT = "qr-image"


def chat_payload(basic_id: str, text: str) -> str:
    """A LINE URL opening the chat with the shop, `text` typed in; without an OA id, the text."""
    if not basic_id:
        return text.strip()
    return f"https://line.me/R/oaMessage/{quote(basic_id, safe='')}/?{quote(text, safe='')}"


def coupon_payload(basic_id: str, code: str) -> str:
    """Staff scan it with LINE's camera and tap send: `核銷 CODE`."""
    return chat_payload(basic_id, f"核銷 {code}")


def member_payload(basic_id: str, member_code: str) -> str:
    """Staff scan it and type the amount after the prefilled `集點 MEMBERCODE `."""
    return chat_payload(basic_id, f"集點 {member_code} ")


def claim_payload(basic_id: str, code: str) -> str:
    """The customer scans it with LINE and taps send: `領取 CODE` (bot.loyalty.claims)."""
    return chat_payload(basic_id, f"領取 {code}")


def qr_url(secret_key: str, public_base_url: str, payload: str) -> str:
    return f"{public_base_url}/qr/{seal(secret_key, payload)}.png"


@functools.cache
def _cipher(secret_key: str) -> AESSIV:
    key = HKDF(algorithm=hashes.SHA256(), length=64, salt=None,
               info=b"qr-image tokens").derive(secret_key.encode())
    return AESSIV(key)


def seal(secret_key: str, payload: str) -> str:
    sealed = _cipher(secret_key).encrypt(payload.encode(), [SALT.encode()])
    return "q" + base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def payload(secret_key: str, token: str) -> str | None:
    """What a token holds; None for anything forged, altered or oversized."""
    if len(token) > 1500:
        return None
    if token.startswith("q"):
        try:
            data = base64.urlsafe_b64decode(token[1:] + "=" * (-len(token[1:]) % 4))
            return _cipher(secret_key).decrypt(data, [SALT.encode()]).decode()
        except (binascii.Error, ValueError, InvalidTag, UnicodeDecodeError):
            return None
    try:  # a signed token made before tokens were encrypted
        payload = URLSafeSerializer(secret_key, salt=SALT).loads(token)
    except BadSignature:
        return None
    return payload if isinstance(payload, str) and len(payload) <= 1000 else None


def payload_of(secret_key: str, public_base_url: str, url: str) -> str | None:
    """What the QR image at `url` holds, if it is one of ours with a valid signature."""
    prefix = f"{public_base_url}/qr/"
    if not (url.startswith(prefix) and url.endswith(".png")):
        return None
    return payload(secret_key, url[len(prefix):-4])


def typed_text(payload: str) -> str:
    """What scanning the payload with LINE leaves typed in the chat box."""
    parts = urlsplit(payload)
    if parts.scheme == "https" and parts.netloc == "line.me" and "/oaMessage/" in parts.path:
        return unquote(parts.query)
    return payload


def png(payload: str, box_size: int = 10) -> bytes:
    image = qrcode.make(payload, box_size=box_size, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
