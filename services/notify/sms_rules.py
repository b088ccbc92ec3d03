"""What an SMS costs and when it may go: pure rules, no sending.

GSM 03.38 (7-bit) carries 160 characters in one segment and 153 in each part of a longer
message; anything outside it (every Vietnamese letter with a diacritic but a few) makes the
whole message UCS-2: 70 characters, 67 per part. Sending unaccented Vietnamese (không dấu)
keeps most messages in GSM-7, at a third of the segments.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass

_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")  # two septets each (escape + character)


@dataclass(frozen=True)
class Segments:
    encoding: str
    """``gsm7`` or ``ucs2``."""
    count: int
    units: int
    """Septets (GSM-7) or UTF-16 code units (UCS-2) of the whole text."""


def segments(text: str) -> Segments:
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in text):
        units = sum(2 if c in _GSM_EXTENDED else 1 for c in text)
        return Segments("gsm7", 1 if units <= 160 else -(-units // 153), units)
    units = len(text.encode("utf-16-le")) // 2
    return Segments("ucs2", 1 if units <= 70 else -(-units // 67), units)


def unaccented(text: str) -> str:
    """Vietnamese without diacritics: "Ủy ban nhân dân xã Đắk Xú" -> "Uy ban nhan dan xa Dak Xu";
    typographic dashes and quotes become their ASCII forms so the text stays GSM-7."""
    text = text.replace("Đ", "D").replace("đ", "d")
    text = text.translate(_ASCII_PUNCTUATION)
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_ASCII_PUNCTUATION = str.maketrans({"–": "-", "—": "-", "“": '"', "”": '"', "‘": "'", "’": "'"})


def quiet_until(
    now: dt.datetime, tz: dt.tzinfo, start: dt.time, end: dt.time
) -> dt.datetime | None:
    """The end of the quiet hours (local ``start`` to ``end``, over midnight if start > end)
    that ``now`` falls in, or None if an SMS may go now."""
    local = now.astimezone(tz)
    clock = local.time()
    if start == end:
        return None
    overnight = start > end
    quiet = (clock >= start or clock < end) if overnight else (start <= clock < end)
    if not quiet:
        return None
    day = local.date() if clock < end else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, end, tzinfo=tz).astimezone(dt.UTC)
