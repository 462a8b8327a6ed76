"""Who a customer is, as both systems can tell: normalised company names, e-mail addresses and domains (pure).

Shared by every flow that matches a QBO customer with a HubSpot company or contact: the deal sync
(QBO -> HubSpot, ``ledgerlink.deal_sync.matching``) and the document sync (HubSpot -> QBO) apply the same
rules, so a customer matched one way is matched the other way too (docs/mapping.md#matching).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "live.com",
        "live.co.uk",
        "msn.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "yahoo.de",
        "yahoo.co.jp",
        "ymail.com",
        "rocketmail.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "pm.me",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "t-online.de",
        "mail.com",
        "zoho.com",
        "yandex.com",
        "yandex.ru",
        "mail.ru",
        "qq.com",
        "163.com",
        "126.com",
        "comcast.net",
        "verizon.net",
        "att.net",
        "sbcglobal.net",
        "btinternet.com",
        "orange.fr",
        "free.fr",
        "laposte.net",
        "libero.it",
        "rediffmail.com",
        "fastmail.com",
        "hey.com",
    }
)

LEGAL_SUFFIXES: frozenset[str] = frozenset(
    {
        "inc",
        "incorporated",
        "llc",
        "llp",
        "lp",
        "ltd",
        "limited",
        "gmbh",
        "corp",
        "corporation",
        "co",
        "company",
        "plc",
        "pty",
        "pte",
        "ag",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "bv",
        "nv",
        "oy",
        "ab",
        "kg",
    }
)

_JOINING_PUNCTUATION = re.compile("[.'`\u2019]")
_NON_WORD = re.compile(r"[^\w]+|_")
_EMAIL = re.compile(r"^[^@\s]+@([^@\s]+\.[^@\s]+)$")


def normalise_name(name: str | None) -> str:
    """Company name for comparison: case-folded, accents and punctuation gone, legal suffixes dropped.

    "Acme Corp." → "acme", "ACME, Inc" → "acme", "Müller GmbH" → "muller", "L.L.C." joins to
    "llc". Dots and apostrophes join letters ("O'Brien" → "obrien"); other punctuation
    separates words. Suffixes are dropped from the end only, and never the last word left.
    """
    if not name:
        return ""
    decomposed = unicodedata.normalize("NFKD", name)
    without_marks = "".join(char for char in decomposed if not unicodedata.combining(char))
    text = _JOINING_PUNCTUATION.sub("", without_marks.casefold())
    words = [word for word in _NON_WORD.split(text) if word]
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


def first_email(raw: str | None) -> str | None:
    """The first address in a QBO email field (QBO allows "a@x.com, b@x.com"), lower-cased."""
    if not raw:
        return None
    for candidate in re.split(r"[,;\s]+", raw):
        candidate = candidate.strip().strip("<>").lower()
        if _EMAIL.match(candidate):
            return candidate
    return None


def email_domain(email: str | None) -> str | None:
    if not email:
        return None
    match = _EMAIL.match(email)
    return match.group(1).lower().rstrip(".") if match else None


def website_domain(uri: str | None) -> str | None:
    """The host of a web address without "www." ("https://www.Acme.com/about" → "acme.com")."""
    if not uri or not uri.strip():
        return None
    text = uri.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    if not host or "." not in host:
        return None
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def company_domain(website: str | None, email: str | None) -> str | None:
    """The company's domain: its website's host, else its email's domain; never a free-mail domain."""
    for domain in (website_domain(website), email_domain(email)):
        if domain and domain not in FREE_MAIL_DOMAINS:
            return domain
    return None
