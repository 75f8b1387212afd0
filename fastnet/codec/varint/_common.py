"""What both varint twins share: the error each malformed input raises, with
one message, so the twins fail alike."""
from __future__ import annotations

from ...errors import VarintError, VarintOverflow, VarintOverlong, VarintTruncated

_VARINT_MESSAGES: dict[type[VarintError], str] = {
    VarintTruncated: "input ends inside a varint",
    VarintOverlong: "overlong varint: the value has a shorter encoding",
    VarintOverflow: "varint value does not fit in 64 bits",
}


def varint_error(cls: type[VarintError]) -> VarintError:
    """A new VarintError of class cls, with the message both twins use."""
    return cls(_VARINT_MESSAGES[cls])
