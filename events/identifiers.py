"""Does a string carry personal data? A pure, conservative detector for fields that travel in
clear.

Only an event's ``personal`` section is sealed per subject and shredded on erasure; every other
field stays readable in the log for good. This finds the identifiers that slip into those other
fields most often: e-mail addresses, IP addresses and phone numbers. It is tuned to leave alone
what legitimately appears there: dates and times, notice versions, UUIDs, URLs without an
address, business ids, postal addresses and version strings.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address

#: local@domain, any domain (``x@localhost`` too) that has a letter: ``package@1.2.3`` pins a
#: version, it names nobody.
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]@[\w.-]*[^\W\d_]")
#: A dotted quad on its own (not inside a longer dotted number); ``ipaddress`` checks the range.
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?!\w|\.\d)")
#: A run of hex digits, colons and dots with a colon in it, not inside a word (``T10:00:00``).
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")
#: Numbers that look like phone numbers but are not: dates with their times, times, UUIDs and
#: Finnish business ids. They are blanked before phone numbers are looked for.
_NOT_A_PHONE = re.compile(
    r"""(?<!\d)(?:
        \d{4}-\d{2}-\d{2}(?:[T\s]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?  # 2024-03-04T10:00:00
      | \d{1,2}\.\d{1,2}\.\d{4}                                      # 22.2.2022
      | \d{1,2}:\d{2}(?::\d{2})?                                     # 10:00
      | [0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}                  # a UUID
      | \d{7}-\d                                                     # 2083762-5
    )(?!\d)""",
    re.VERBOSE | re.IGNORECASE,
)
#: An optional +, then digits that spaces, dashes, dots or parentheses may group; the whole run
#: (atomic: never a shorter prefix of it), not a part of a word or of a dotted or dashed name.
_PHONE = re.compile(r"(?<![\w.+-])(?>\+?\(?\d(?:[ \t().-]{0,2}\d)*)(?![\w-])")
#: Fewer digits than this are a house number, a postal code or a count, not a phone number.
PHONE_MIN_DIGITS = 8

EMAIL = "an e-mail address"
IP_ADDRESS = "an IP address"
PHONE = "a phone number"


def personal_data_in(text: str) -> str | None:
    """What kind of personal data ``text`` seems to hold (:data:`EMAIL`, :data:`IP_ADDRESS` or
    :data:`PHONE`), or ``None`` if it seems to hold none."""
    if _EMAIL.search(text):
        return EMAIL
    if _has_ip_address(text):
        return IP_ADDRESS
    if _has_phone_number(text):
        return PHONE
    return None


def _has_ip_address(text: str) -> bool:
    """Candidates are cut out by pattern; ``ipaddress`` decides, so a time is no IPv6 address."""
    if any(_is_ip(match[0], IPv4Address) for match in _IPV4.finditer(text)):
        return True
    return any(
        _is_ip(match[0], IPv6Address) or _is_ip(match[0].rstrip(".:"), IPv6Address)
        for match in _IPV6.finditer(text)
    )


def _is_ip(candidate: str, kind: type[IPv4Address] | type[IPv6Address]) -> bool:
    try:
        kind(candidate)
    except ValueError:
        return False
    return True


def _has_phone_number(text: str) -> bool:
    """Blank the dates, times, UUIDs and business ids first, so their digits count for none."""
    blanked = _NOT_A_PHONE.sub("_", text)
    return any(
        sum(c.isdigit() for c in match[0]) >= PHONE_MIN_DIGITS for match in _PHONE.finditer(blanked)
    )
