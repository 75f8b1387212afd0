"""Shared fixtures: every codec test runs on both twins, every server test on
every engine. With FASTNET_REQUIRE_NATIVE=1 (CI) a missing C extension fails
at import, so no C case can be skipped there."""
from __future__ import annotations

import pytest

from fastnet import codec
from helpers import ENGINES, require_engine


@pytest.fixture(params=["c", "python"])
def impl(request):
    """The codec twin under test: every codec's C twin or every codec's Python
    twin (a namespace from fastnet.codec.impls, e.g. impl.RespRequestDecoder
    is fastnet.codec.resp.c's or fastnet.codec.resp.py's)."""
    if request.param not in codec.impls:
        pytest.skip("C extension not built (set FASTNET_REQUIRE_NATIVE=1 to make this an error)")
    return codec.impls[request.param]


@pytest.fixture(params=ENGINES)
def engine(request):
    """The engine under test, by name ("c", "python", "threaded"); the c
    engine is skipped without the C extension, never under
    FASTNET_REQUIRE_NATIVE=1 (helpers.require_engine)."""
    require_engine(request.param)
    return request.param
