"""What the atheris targets (fuzz_diff_*.py) share: one input as a config
byte, up to 8 split points and the stream, so a saved input replays the
same chunks."""
from __future__ import annotations

import atheris


def config_and_chunks(raw: bytes) -> tuple[int, bytes, list[bytes]]:
    """(config byte, the stream, the stream cut at the input's split points)."""
    fdp = atheris.FuzzedDataProvider(raw)
    config = fdp.ConsumeInt(1)
    cuts = sorted(fdp.ConsumeIntInRange(0, 255) for _ in range(fdp.ConsumeIntInRange(0, 8)))
    data = fdp.ConsumeBytes(fdp.remaining_bytes())
    points = [0] + [min(c, len(data)) for c in cuts] + [len(data)]
    return config, data, [data[a:b] for a, b in zip(points, points[1:])]
