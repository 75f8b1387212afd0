"""Redis's number texts: C's strtod/strtold as Redis calls them, its
double replies, and INCRBYFLOAT's long double arithmetic.

Redis parses floats with glibc's strtod (scores, ranges) and strtold
(INCRBYFLOAT, HINCRBYFLOAT), then applies its own checks; each caller
here reproduces one of those check sets. :func:`strtod_prefix` is the C
function itself: the longest prefix that parses (decimal, hex, inf,
infinity, nan, any case; leading blanks skipped) and where it ends.

INCRBYFLOAT computes in x87 80-bit long doubles (64-bit significand) and
prints ``%.17Lf`` with trailing zeros removed, so 1.6 + 0.1 is "1.7" where
doubles would print "1.70000000000000018". :class:`LongDouble` emulates
that format exactly with rationals: every result is rounded to 64
significant bits (ties to even), with the format's exponent range,
subnormals and overflow to infinity. It is not a hot path (one rounding per
command), so exactness wins over speed.
"""
from __future__ import annotations

import re
from fractions import Fraction
from typing import Optional

__all__ = ["LongDouble", "format_double", "format_score", "parse_double", "parse_range_bound",
           "strtod_prefix"]

_SPACE = b" \t\n\v\f\r"
_INF = float("inf")
_NUMBER = re.compile(
    rb"[+-]?(?:0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    rb"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    rb"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?"
    rb"|[nN][aA][nN](?:\([0-9A-Za-z_]*\))?)")


class _Parsed:
    """What strtod read: its exact value (None for inf/nan), text and end."""

    __slots__ = ("text", "end", "exact", "special")

    def __init__(self, text: bytes, end: int, exact: Optional[Fraction], special: float) -> None:
        self.text, self.end, self.exact, self.special = text, end, exact, special


def _exact(text: bytes) -> Fraction:
    """The exact rational a decimal or hex literal (no inf/nan) denotes."""
    negative = text[:1] == b"-"
    body = text.lstrip(b"+-")
    if body[:2] in (b"0x", b"0X"):
        mantissa, _, exponent = body[2:].lower().partition(b"p")
        whole, _, fraction = mantissa.partition(b".")
        digits = (whole + fraction) or b"0"
        value = Fraction(int(digits, 16)) * Fraction(2) ** (int(exponent or b"0") - 4 * len(fraction))
    else:
        value = Fraction(body.decode())
    return -value if negative else value


def strtod_prefix(data: bytes) -> Optional[_Parsed]:
    """C's strtod on data: None if nothing converts (endptr = start), else
    the parse (``end`` counts the skipped blanks too)."""
    start = 0
    while start < len(data) and data[start] in _SPACE:
        start += 1
    match = _NUMBER.match(data, start)
    if match is None:
        return None
    text = match.group()
    lowered = text.lower().lstrip(b"+-")
    sign = -1.0 if text[:1] == b"-" else 1.0
    if lowered.startswith(b"inf"):
        return _Parsed(text, match.end(), None, sign * float("inf"))
    if lowered.startswith(b"nan"):
        return _Parsed(text, match.end(), None, float("nan"))
    return _Parsed(text, match.end(), _exact(text), 0.0)


def _to_double(parsed: _Parsed) -> tuple[float, bool]:
    """strtod's value and whether it set ERANGE to overflow or to zero."""
    if parsed.exact is None:
        return parsed.special, False
    try:
        value = float(parsed.exact)  # correctly rounded, as glibc's strtod
    except OverflowError:
        return (float("-inf") if parsed.exact < 0 else float("inf")), True
    if value == 0 and parsed.text[:1] == b"-":
        value = -0.0  # a rational has no signed zero
    return value, value == 0 and parsed.exact != 0


_DECIMAL = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_double(arg: bytes) -> Optional[float]:
    """Redis's getDoubleFromObject (ZADD scores, ZINCRBY): the whole text,
    no leading blank, no overflow or underflow to zero, not nan."""
    if not arg or arg[0] in _SPACE:
        return None
    if _DECIMAL.fullmatch(arg):  # the common case: float() rounds as glibc's strtod
        value = float(arg)
        if value in (_INF, -_INF):
            return None  # overflow (ERANGE)
        if value == 0 and arg.lower().partition(b"e")[0].strip(b"+-.0"):
            return None  # underflow to zero: a non-zero mantissa (ERANGE)
        return value
    parsed = strtod_prefix(arg)
    if parsed is None or parsed.end != len(arg):
        return None
    value, out_of_range = _to_double(parsed)
    if out_of_range or value != value:
        return None
    return value


def parse_range_bound(arg: bytes) -> Optional[float]:
    """zslParseRange's strtod (after any "("): leading blanks allowed,
    overflow allowed, the text may end at a NUL, the empty text is 0; not nan."""
    parsed = strtod_prefix(arg)
    if parsed is None:
        return 0.0 if arg[:1] in (b"", b"\0") else None
    if arg[parsed.end:parsed.end + 1] not in (b"", b"\0"):
        return None
    value, _ = _to_double(parsed)
    return None if value != value else value


def format_double(value: float) -> bytes:
    """C's %.17g, with Redis's spelling of infinities."""
    if value in (float("inf"), float("-inf")):
        return b"inf" if value > 0 else b"-inf"
    return b"%.17g" % value


#: Redis's own name for the scores' text in a listpack and in ZSCAN.
format_score = format_double


# --- long double (x87 80-bit) ---------------------------------------------------

_MANT_BITS = 64
_MIN_QUANTUM = -16445  # the smallest subnormal is 2**-16445
_OVERFLOW = Fraction(2) ** 16384
#: Redis's MAX_LONG_DOUBLE_CHARS: string2ld refuses texts this long or longer.
MAX_LONG_DOUBLE_CHARS = 5 * 1024


def _round_ld(value: Fraction) -> Optional[Fraction]:
    """value rounded to the nearest long double (ties to even); None if it
    overflows to infinity."""
    if value == 0:
        return value
    magnitude = abs(value)
    exponent = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if Fraction(2) ** exponent > magnitude:
        exponent -= 1
    quantum = max(exponent - (_MANT_BITS - 1), _MIN_QUANTUM)
    scaled = magnitude / Fraction(2) ** quantum
    whole, rest = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * rest
    if twice > scaled.denominator or (twice == scaled.denominator and whole % 2):
        whole += 1
    rounded = whole * Fraction(2) ** quantum
    if rounded >= _OVERFLOW:
        return None
    return -rounded if value < 0 else rounded


class LongDouble:
    """A finite long double value (exact rational), as INCRBYFLOAT uses."""

    __slots__ = ("value",)

    def __init__(self, value: Fraction) -> None:
        self.value = value

    @classmethod
    def parse(cls, arg: bytes) -> Optional["LongDouble | float"]:
        """Redis's string2ld: the whole text (shorter than 5 KiB, no leading
        blank) as strtold reads it; None if invalid (nan, overflow, underflow
        to zero); a float for a literal infinity."""
        if not arg or len(arg) >= MAX_LONG_DOUBLE_CHARS or arg[0] in _SPACE:
            return None
        parsed = strtod_prefix(arg)
        if parsed is None or parsed.end != len(arg):
            return None
        if parsed.exact is None:
            return None if parsed.special != parsed.special else parsed.special
        rounded = _round_ld(parsed.exact)
        if rounded is None or (rounded == 0 and parsed.exact != 0):
            return None
        return cls(rounded)

    def add(self, other: "LongDouble") -> Optional["LongDouble"]:
        """The long double sum; None if it overflows (inf)."""
        rounded = _round_ld(self.value + other.value)
        return None if rounded is None else LongDouble(rounded)

    def times(self, factor: int) -> Optional["LongDouble"]:
        """The long double product with factor; None if it overflows (inf)."""
        rounded = _round_ld(self.value * factor)
        return None if rounded is None else LongDouble(rounded)

    def human(self) -> bytes:
        """ld2string's LD_STR_HUMAN: %.17Lf, trailing zeros (and point) cut, "-0" as "0"."""
        scaled = self.value * 10**17
        whole, rest = divmod(abs(scaled.numerator), scaled.denominator)
        twice = 2 * rest
        if twice > scaled.denominator or (twice == scaled.denominator and whole % 2):
            whole += 1
        digits = b"%018d" % whole
        text = digits[:-17] + b"." + digits[-17:]
        text = text.rstrip(b"0").rstrip(b".")
        if self.value < 0 and text != b"0":
            text = b"-" + text
        return text
