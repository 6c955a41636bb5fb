"""Check-digit rules of the national identifiers we look for.

Every function takes the bare characters (separators already removed) and
answers True/False; none of them raises on odd input, so a recognizer can call
them on any OCR candidate. A checksum turns "some 10-digit number" into
"almost certainly an NHS number": only ~1 in 11 random numbers pass mod 11.
"""

from __future__ import annotations

import datetime as _dt


def _digits(s: str, n: int) -> list[int] | None:
    if len(s) != n or not s.isdecimal():  # isdigit() takes "²", which int() refuses
        return None
    return [int(c) for c in s]


def mod11_10(s: str) -> bool:
    """NHS (England/Wales), CHI (Scotland) and H&C (Northern Ireland) numbers:
    weights 10..2 over the first nine digits, check = 11 - sum mod 11
    (11 -> 0, 10 -> the number is never issued)."""
    d = _digits(s, 10)
    if d is None:
        return False
    check = 11 - sum(w * x for w, x in zip(range(10, 1, -1), d)) % 11
    if check == 11:
        check = 0
    return check != 10 and check == d[9]


def nhs_number(s: str) -> bool:
    return mod11_10(s) and len(set(s)) > 1


def chi_number(s: str) -> bool:
    """CHI = DDMMYY of birth + 4 digits, same mod 11 as NHS."""
    return mod11_10(s) and valid_ddmmyy(s[:6])


def hc_number(s: str) -> bool:
    """Northern Ireland Health & Care number: mod 11, issued from 320 000 0000 to 399 999 9999."""
    return mod11_10(s) and 320 <= int(s[:3]) <= 399


def valid_ddmmyy(s: str) -> bool:
    try:
        dd, mm, yy = int(s[0:2]), int(s[2:4]), int(s[4:6])
        del yy  # any century will do for a plausibility check
        _dt.date(2000, mm, dd)  # 2000 is a leap year: 29 Feb passes
        return True
    except ValueError:
        return False


def bsn(s: str) -> bool:
    """Dutch burgerservicenummer, '11-proef': 9*d1 + 8*d2 + ... + 2*d8 - d9 == 0 (mod 11)."""
    d = _digits(s, 9)
    if d is None or s == "000000000":
        return False
    total = sum(w * x for w, x in zip(range(9, 1, -1), d)) - d[8]
    return total % 11 == 0


def rrn(s: str) -> bool:
    """Belgian rijksregisternummer / INSZ / NISS: YYMMDD + 3-digit counter + 2-digit
    check = 97 - (first nine mod 97); people born from 2000 on get a '2' prefixed
    before the modulus. Bis numbers add 20 or 40 to the month."""
    d = _digits(s, 11)
    if d is None:
        return False
    mm = int(s[2:4]) % 20 if int(s[2:4]) >= 20 else int(s[2:4])
    if not (0 <= mm <= 12 and 0 <= int(s[4:6]) <= 31):
        return False
    base, check = int(s[:9]), int(s[9:])
    return check in (97 - base % 97, 97 - (2_000_000_000 + base) % 97)


def kvnr(s: str) -> bool:
    """German Krankenversichertennummer (§ 290 SGB V): a letter and nine digits.
    The letter becomes its two-digit alphabet position (A=01 .. Z=26); the ten
    resulting digits before the check digit are weighted 1,2,1,2,..., two-digit
    products are replaced by their digit sum, and the check digit is the total mod 10."""
    if len(s) != 10 or not s[0].isalpha() or not s[0].isascii() or not s[1:].isdigit():
        return False
    digits = f"{ord(s[0].upper()) - 64:02d}" + s[1:9]
    total = 0
    for i, c in enumerate(digits):
        p = int(c) * (1 if i % 2 == 0 else 2)
        total += p // 10 + p % 10
    return total % 10 == int(s[9])


def nir(s: str) -> bool:
    """French NIR ('numéro de Sécu'): 13 characters + 2-digit key = 97 - (n mod 97).
    Corsica's departments 2A/2B count as 19/18 for the key."""
    if len(s) != 15:
        return False
    body, key = s[:13].upper(), s[13:]
    if not key.isdecimal() or body[0] not in "12345678":
        return False
    if body[5:7] == "2A":
        body = body[:5] + "19" + body[7:]
    elif body[5:7] == "2B":
        body = body[:5] + "18" + body[7:]
    if not body.isdecimal():
        return False
    mm = int(body[3:5])
    if not (1 <= mm <= 12 or 20 <= mm <= 42 or 50 <= mm <= 99):
        return False
    return int(key) == 97 - int(body) % 97


def ppsn(s: str) -> bool:
    """Irish PPS number: 7 digits + check letter (+ optional second letter).
    Weights 8..2 on the digits, the second letter (A=1 .. W=0) weighted 9; the
    check letter is the total mod 23 with 0 -> W, 1 -> A ..."""
    s = s.upper()
    if len(s) not in (8, 9) or not s[:7].isdecimal() or not s[7:].isalpha() or not s.isascii():
        return False
    total = sum(w * int(c) for w, c in zip(range(8, 1, -1), s[:7]))
    if len(s) == 9:
        second = s[8]
        total += 9 * (0 if second == "W" else ord(second) - 64)
    r = total % 23
    return s[7] == ("W" if r == 0 else chr(64 + r))


def ssn(s: str) -> bool:
    """US social security number: area 001-899 except 666, group 01-99, serial 0001-9999."""
    d = _digits(s, 9)
    if d is None:
        return False
    area, group, serial = int(s[:3]), int(s[3:5]), int(s[5:])
    return 0 < area < 900 and area != 666 and group != 0 and serial != 0


_MBI_ALPHA = "ACDEFGHJKMNPQRTUVWXY"  # letters minus S L O I B Z
_MBI_SHAPE = ("N", "A", "X", "N", "A", "X", "N", "A", "A", "N", "N")


def mbi(s: str) -> bool:
    """US Medicare Beneficiary Identifier: 11 characters in a fixed numeric/alpha
    pattern (no check digit): C A AN N A AN N A A N N, first digit 1-9."""
    s = s.upper()
    if len(s) != 11 or s[0] == "0":
        return False
    for c, kind in zip(s, _MBI_SHAPE):
        if kind == "N" and not c.isdigit():
            return False
        if kind == "A" and c not in _MBI_ALPHA:
            return False
        if kind == "X" and not (c.isdigit() or c in _MBI_ALPHA):
            return False
    return True
