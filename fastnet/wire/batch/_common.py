"""What both request batcher twins share."""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from ...codec.wire import RESPONSE
from ...codec.wire._common import frame_bytes
from ...limits import WIRE_MAX_BODY


def frame_replies(results: Sequence[Any], ids: Sequence[int], version: int,
                  threshold: Optional[int], packb: Callable[[Any], bytes]) -> Optional[bytes]:
    """RESPONSE frames of results for requests ids, each body packed by
    packb, or None (replies()'s contract) when the caller must frame them."""
    if len(results) != len(ids) or not version:
        return None
    limit = WIRE_MAX_BODY + 1 if threshold is None else min(threshold, WIRE_MAX_BODY + 1)
    out = []
    for result, request_id in zip(results, ids):
        try:
            body = packb(result)
        except (TypeError, ValueError, OverflowError):
            return None
        if len(body) >= limit:
            return None
        out.append(frame_bytes(RESPONSE, body, version, 0, request_id))
    return b"".join(out)
