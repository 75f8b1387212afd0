"""What both h2sess twins share: the event kinds, the checks' results and
the exception each error rule stands for, so the twins fail alike."""
from __future__ import annotations

from ...errors import (H2ConnectionError, H2ErrorCode, HeaderListTooLarge, HpackBadHuffman,
                       HpackBadIndex, HpackBadTableSizeUpdate, HpackError, HpackIntegerOverflow,
                       HpackTruncated, ProtocolError)
from ...limits import DEFAULT_H2_MAX_FIELD_BLOCK, H2_MAX_CONTINUATIONS
from ..h2frame._common import RULES, frame_error
from ..hpack._common import hpack_error

# Event kinds: the frame type a tuple comes from (CONTINUATIONs are folded
# into their HEADERS), UNKNOWN for a type RFC 9113 does not define, ERROR
# for the connection error that ends a batch.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE = range(9)
UNKNOWN = 10
ERROR = -1

#: A HEADERS tuple's ``req`` when its list is not a well-formed request.
NOT_A_REQUEST = -2

#: HPACK's errors by rule name (the decoding error's class).
HPACK_RULES: dict[str, type[HpackError]] = {
    "hpack_truncated": HpackTruncated,
    "hpack_integer": HpackIntegerOverflow,
    "hpack_index": HpackBadIndex,
    "hpack_huffman": HpackBadHuffman,
    "hpack_table_size": HpackBadTableSizeUpdate,
}
#: The field block limits (RFC 9113 10.5: the CONTINUATION flood).
BLOCK_RULES: dict[str, str] = {
    "field_block": f"a field block over DEFAULT_H2_MAX_FIELD_BLOCK={DEFAULT_H2_MAX_FIELD_BLOCK} bytes",
    "continuations": "CONTINUATION flood: a field block in more than "
                     f"H2_MAX_CONTINUATIONS={H2_MAX_CONTINUATIONS} frames",
    "continuation_block": "CONTINUATION flood: a field block over "
                          f"DEFAULT_H2_MAX_FIELD_BLOCK={DEFAULT_H2_MAX_FIELD_BLOCK} bytes",
}


def error_of(rule: str, max_header_list_size: int) -> ProtocolError:
    """The exception an ERROR tuple's rule stands for: H2FrameError for a
    frame-level rule, an HpackError for a field block that does not decode
    (HeaderListTooLarge past max_header_list_size), H2ConnectionError
    (ENHANCE_YOUR_CALM) for the field block limits."""
    if rule in RULES:
        return frame_error(rule)
    if rule in HPACK_RULES:
        return hpack_error(HPACK_RULES[rule])
    if rule == "header_list_too_large":
        return HeaderListTooLarge(max_header_list_size)
    return H2ConnectionError(H2ErrorCode.ENHANCE_YOUR_CALM, "10.5", BLOCK_RULES[rule])


def rule_of(error: HpackError) -> str:
    """The rule name of an HPACK decoding error."""
    if isinstance(error, HeaderListTooLarge):
        return "header_list_too_large"
    return next(rule for rule, cls in HPACK_RULES.items() if isinstance(error, cls))
