"""``python -m fastnet.proto descriptor-set x.proto [-I DIR ...] -o out.pb``

Writes the FileDescriptorSet of the given files and everything they import,
the bytes ``protoc --descriptor_set_out=out.pb --include_imports`` writes.
Errors go to stderr as protoc prints them (``file:line:col: message``), and
the exit status is 1.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from ..errors import ProtoSchemaError
from .frontend import parse_files
from .writer import encode_set


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastnet.proto",
                                     description="fastnet's .proto compiler front end")
    commands = parser.add_subparsers(dest="command", required=True)
    dset = commands.add_parser("descriptor-set", help="write a FileDescriptorSet "
                               "(protoc --descriptor_set_out --include_imports)")
    dset.add_argument("files", nargs="+", metavar="FILE.proto")
    dset.add_argument("-I", "--proto_path", dest="include", action="append", metavar="DIR",
                      help="a directory to look for imports in (repeatable; default: .)")
    dset.add_argument("-o", "--output", required=True, metavar="OUT.pb")
    args = parser.parse_args(argv)
    try:
        files = parse_files(args.files, args.include or ["."])
    except ProtoSchemaError as exc:
        print(exc, file=sys.stderr)
        return 1
    with open(args.output, "wb") as out:
        out.write(encode_set(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
