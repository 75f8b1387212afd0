"""The front end's entry point: .proto files (and their imports) to the
FileDescriptorProtos protoc would write.

Files are found as protoc finds them: an input file's name is its path
relative to the include directory (``-I``) that holds it, imports are looked
up in the include directories in order, and the well-known types
(``google/protobuf/*.proto``, bundled in ``wkt/``) come last, so they
resolve without the user supplying them. descriptor.proto is always loaded
(options are fields of its messages) but appears in the output only when a
file imports it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence, Union

from ..errors import ProtoSchemaError
from . import descriptor as d
from .options import Interpreter
from .parser import ParsedFile, parse
from .resolve import Issue, Pool

#: The bundled well-known types (google/protobuf/*.proto).
WKT_DIR = Path(__file__).parent / "wkt"
DESCRIPTOR_PROTO = "google/protobuf/descriptor.proto"

PathLike = Union[str, "os.PathLike[str]"]


class _Loader:
    def __init__(self, include: Sequence[PathLike]) -> None:
        self.include = [Path(p) for p in include] + [WKT_DIR]
        self.pool = Pool()
        self.options = Interpreter(self.pool)
        self.loaded: dict[str, ParsedFile] = {}
        self.stack: list[str] = []

    def fail(self) -> None:
        if self.pool.issues:
            raise ProtoSchemaError([str(issue) for issue in self.pool.issues])

    def find(self, name: str) -> Path:
        for directory in self.include:
            candidate = directory / name
            if candidate.is_file():
                return candidate
        raise ProtoSchemaError([f"{name}: File not found."])

    def load(self, name: str) -> ParsedFile:
        if name in self.loaded:
            return self.loaded[name]
        if name in self.stack:
            chain = " -> ".join(self.stack[self.stack.index(name):] + [name])
            raise ProtoSchemaError([f"{self.stack[-1]}: File recursively imports itself: "
                                    f"{chain}"])
        found = self.find(name)
        pf = parse(found.read_text(encoding="utf-8"), name)
        if pf.errors:
            raise ProtoSchemaError([str(Issue(str(found), pos, message))
                                    for pos, message in pf.errors])
        pf.disk = str(found)
        self.stack.append(name)
        for dep, pos in zip(pf.proto.dependency, pf.import_pos):
            try:
                self.load(dep)
            except ProtoSchemaError as exc:
                raise ProtoSchemaError(exc.errors + [str(Issue(
                    str(found), pos, f'Import "{dep}" was not found or had errors.'))]) from None
        self.stack.pop()
        self.pool.build(pf)
        self.pool.cross_link(pf)     # also after build errors, as protoc
        self.pool.suggest_numbers(pf)
        self.fail()
        self.options.interpret(pf)
        self.fail()
        self.pool.validate(pf, self.options.option)
        self.fail()
        self.loaded[name] = pf
        return pf

    def virtual_name(self, path: PathLike) -> str:
        """The name protoc gives an input file: its path relative to the
        include dir that holds it; a path that is not on disk is taken as
        that name already (as protoc does) when an include dir has it."""
        target = Path(path)
        if not target.exists():
            if not target.is_absolute() and any((directory / target).is_file()
                                                for directory in self.include):
                return target.as_posix()
            raise ProtoSchemaError([f"Could not make proto path relative: {path}: No such "
                                    "file or directory"])
        for directory in self.include[:-1]:
            try:
                return (target.resolve().relative_to(directory.resolve())).as_posix()
            except ValueError:
                continue
        raise ProtoSchemaError([f"{path}: File does not reside within any path specified "
                                "using --proto_path (or -I).  You must specify a --proto_path "
                                "which encompasses this file.  Note that the proto_path must "
                                "be an exact prefix of the .proto file names -- protoc is too "
                                "dumb to figure out when two paths (e.g. absolute and "
                                "relative) are equivalent (it's harder than you think)."])


def parse_files(paths: Iterable[PathLike], include: Sequence[PathLike] = (".",)
                ) -> list[d.FileDescriptorProto]:
    """Parse, resolve and check ``paths`` and everything they import.

    Returns the files as ``protoc --descriptor_set_out --include_imports``
    lists them: each input after its imports (depth first, in import order),
    every file once. ``include`` are the ``-I`` directories; an input file
    must lie inside one of them. Raises
    :class:`~fastnet.errors.ProtoSchemaError` with protoc's error lines.
    """
    loader = _Loader(include)
    names = [loader.virtual_name(p) for p in paths]
    loader.load(DESCRIPTOR_PROTO)
    for name in names:
        loader.load(name)
    loader.options.serialize_all()
    out: list[d.FileDescriptorProto] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        pf = loader.loaded[name]
        for dep in pf.proto.dependency:
            visit(dep)
        out.append(pf.proto)

    for name in names:
        visit(name)
    return out
