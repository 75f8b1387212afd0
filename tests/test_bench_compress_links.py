"""bench compress's end-to-end part on its smallest form: wire requests over
a tbf-shaped veth between two namespaces it builds and removes, and on
loopback. Checks the shape of what it reports, that every codec really was
negotiated, and that no namespace is left behind; never a speed."""
from __future__ import annotations

from bench import compress_links
from bench.scenarios.compress import payload
from fastnet.lab.netlab import lab_namespaces


def test_requests_cross_a_shaped_link_and_loopback_with_every_codec():
    sizes = (64, 4096)
    result = compress_links.measure({s: payload("pack", s) for s in sizes}, budget=0.01,
                                    links={"100 Mbit/s": 100.0, "loopback": None})
    assert "skipped" not in result, result
    assert set(result) == {"100 Mbit/s", "loopback"}
    for link, rows in result.items():
        for size in sizes:
            row = rows[str(size)]
            assert set(row) == set(compress_links.CODECS)
            for entry in row.values():
                assert entry["calls"] >= compress_links.MIN_CALLS and entry["median_ms"] > 0
    assert len(result["100 Mbit/s"]["namespaces"]) == 2
    assert lab_namespaces() == []


def test_break_even_is_the_smallest_size_from_which_every_larger_one_pays():
    def row(none, zlib):
        return {"none": {"median_ms": none}, "zlib": {"median_ms": zlib},
                "zstd": {"median_ms": none}, "lz4": {"median_ms": none * 2}}
    links = {"l": {"64": row(1, 0.5), "256": row(1, 2), "1024": row(2, 1), "4096": row(4, 1),
                   "namespaces": ["a", "b"]}}
    assert compress_links.break_even(links) == {"l": {"zlib": 1024, "zstd": None, "lz4": None}}
