"""Human-friendly one-time codes: 9 symbols from a 31-symbol alphabet (about 44.6 bits)."""

from __future__ import annotations

import secrets
import unicodedata

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L
LENGTH = 9
_DASHES = "-‐‑‒–—―ー－ 　_"


def new_code() -> str:
    """A fresh random code in its canonical (undashed, upper-case) form."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def format_code(code: str) -> str:
    """`7KQ2M9XHF` -> `7KQ-2M9-XHF`, for reading aloud and printing."""
    return "-".join(code[i:i + 3] for i in range(0, len(code), 3))


def normalize_code(text: str) -> str | None:
    """Canonical form of what a person typed, or None if it cannot be a code.

    Accepts any case, dashes or spaces anywhere, and full-width characters (NFKC folds
    `７ＫＱ－２Ｍ９` to `7KQ-2M9`).
    """
    folded = unicodedata.normalize("NFKC", text or "").upper()
    cleaned = "".join(ch for ch in folded if ch not in _DASHES)
    if len(cleaned) != LENGTH or any(ch not in ALPHABET for ch in cleaned):
        return None
    return cleaned
