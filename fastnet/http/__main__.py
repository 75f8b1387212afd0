"""``python -m fastnet.http METHOD URL [-v]``: one request, curl-like: the
status line, with -v the response headers, then the body."""
from __future__ import annotations

import argparse
import sys
from typing import Optional

from ..errors import FastnetError
from .client import Client


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command line; the exit status (0, or 1 if the request failed)."""
    p = argparse.ArgumentParser(prog="python -m fastnet.http", description=__doc__)
    p.add_argument("method", help="GET, HEAD, POST, ...")
    p.add_argument("url", help="an http:// URL")
    p.add_argument("-v", "--verbose", action="store_true", help="print the response headers")
    p.add_argument("-d", "--data", help="the request body (UTF-8)")
    p.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="a request header (repeatable)")
    p.add_argument("-L", "--location", action="store_true", help="follow redirects")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds (default: 30)")
    args = p.parse_args(argv)
    fields = []
    for line in args.header:
        name, sep, value = line.partition(":")
        if not sep:
            p.error(f"-H {line!r}: use 'Name: value'")
        fields.append((name.strip(), value.strip()))
    body = args.data.encode() if args.data is not None else None
    try:
        with Client(timeout=args.timeout, follow_redirects=args.location) as client:
            response = client.request(args.method.upper(), args.url, headers=fields, body=body)
    except (OSError, FastnetError, ValueError) as exc:
        print(f"fastnet.http: {exc}", file=sys.stderr)
        return 1
    print(f"{response.version} {response.status} {response.reason}".rstrip())
    if args.verbose:
        for name, value in response.headers:
            print(f"{name}: {value}")
        print()
    sys.stdout.flush()
    sys.stdout.buffer.write(response.body)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
