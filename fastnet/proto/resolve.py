"""Name resolution and checks: parsed files to the descriptors protoc writes.

The phases are protoc's (DescriptorBuilder), so errors come out in the same
order with the same text and position:

1. build: every symbol entered in one table (duplicate names, field numbers
   out of range, use of reserved numbers and names);
2. cross-link: type names resolved with protobuf's scoping rules (the
   innermost scope first; a compound name's first part found, the rest must
   exist inside it), extendees, methods, defaults, duplicate numbers;
3. when those found nothing: options interpreted (:mod:`.options`) and the
   rules of proto3, maps, enums and JSON names checked.

Every error is collected as ``(file, line, column, message)``; the caller
raises :class:`~fastnet.errors.ProtoSchemaError` with all of them.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from . import descriptor as d
from .parser import INT32_MAX, MAX_FIELD_NUMBER, ParsedFile, json_name

T = d.FieldType
L = d.FieldLabel

#: Field numbers protobuf keeps for itself (FieldDescriptor::kFirstReservedNumber..).
FIRST_RESERVED = 19000
LAST_RESERVED = 19999

_AGGREGATES = ("message", "package", "enum", "service")
_TYPES = ("message", "enum")


@dataclass
class Symbol:
    kind: str       # package, message, enum, enum_value, field, oneof, extension, service, method
    full: str
    file: ParsedFile
    obj: object = None
    parent: str = ""          # the enclosing message/package (enum values: the enum's parent)


class Issue(Exception):
    """One error: file path, 0-based position (None when protoc gives none), text."""

    def __init__(self, path: str, pos: Optional[tuple[int, int]], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.pos = pos
        self.message = message

    def __str__(self) -> str:
        if self.pos is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.pos[0] + 1}:{self.pos[1] + 1}: {self.message}"


def walk_messages(prefix: str, messages: list[d.DescriptorProto]
                  ) -> Iterator[tuple[str, d.DescriptorProto]]:
    """(full name, message) for every message, depth first, parents first."""
    for msg in messages:
        full = f"{prefix}.{msg.name}" if prefix else msg.name or ""
        yield full, msg
        yield from walk_messages(full, msg.nested_type)


class Pool:
    """Every symbol of the files built so far, by full name (no leading dot)."""

    def __init__(self) -> None:
        self.symbols: dict[str, Symbol] = {}
        self.files: dict[str, ParsedFile] = {}
        self.issues: list[Issue] = []
        #: transitive public imports: what each file makes visible
        self.visible: dict[str, set[str]] = {}
        #: per message with unusable field numbers: where the first one is, how many
        self.bad_numbers: dict[str, tuple[d.DescriptorProto, tuple[int, int], int]] = {}
        #: extendee -> number -> the field or extension that holds it
        self.extension_numbers: dict[str, dict[int, str]] = {}
        #: 19000..19999 uses found by validate(), reported only when nothing else is wrong
        self._reserved_numbers: list[Issue] = []
        #: the last symbol a lookup found but could not see (not imported)
        self._hidden: Optional[Symbol] = None

    # --- helpers ---------------------------------------------------------

    def error(self, pf: ParsedFile, element: object, what: str, message: str) -> None:
        pos = pf.pos.get((id(element), what))
        if pos is None:
            pos = pf.pos.get((id(element), "name"))
        self.issues.append(Issue(pf.disk, pos, message))

    def message(self, full: str) -> Optional[d.DescriptorProto]:
        obj = self._of_kind(full, "message")
        assert obj is None or isinstance(obj, d.DescriptorProto)
        return obj

    def enum(self, full: str) -> Optional[d.EnumDescriptorProto]:
        obj = self._of_kind(full, "enum")
        assert obj is None or isinstance(obj, d.EnumDescriptorProto)
        return obj

    def _of_kind(self, full: str, kind: str) -> object:
        sym = self.symbols.get(full)
        return sym.obj if sym is not None and sym.kind == kind else None

    def syntax_of(self, full: str) -> str:
        sym = self.symbols.get(full)
        if sym is None:
            return "proto2"
        return sym.file.proto.syntax or "proto2"

    def forget(self, pf: ParsedFile) -> None:
        """Take a file that failed out of the pool: files importing it see
        none of its names (protoc never adds a failed file)."""
        self.symbols = {full: sym for full, sym in self.symbols.items() if sym.file is not pf}
        self.files.pop(pf.path, None)
        self.extension_numbers.clear()

    # --- phase 1: symbols --------------------------------------------------

    def add(self, pf: ParsedFile, kind: str, full: str, obj: object, parent: str,
            what: str = "name") -> bool:
        old = self.symbols.get(full)
        if old is not None:
            if kind == "package" and old.kind == "package":
                return True
            name = full.rsplit(".", 1)[-1]
            if kind == "package":
                self.issues.append(Issue(pf.disk, None, f'"{full}" is already defined (as '
                                         f'something other than a package) in file '
                                         f'"{old.file.path}".'))
            elif old.file is not pf:
                self.error(pf, obj, what, f'"{full}" is already defined in file '
                                          f'"{old.file.path}".')
            elif parent:
                self.error(pf, obj, what, f'"{name}" is already defined in "{parent}".')
            else:
                self.error(pf, obj, what, f'"{name}" is already defined.')
            return False
        self.symbols[full] = Symbol(kind, full, pf, obj, parent)
        return True

    def build(self, pf: ParsedFile) -> None:
        """Phase 1 for one file (its imports were built before it)."""
        fd = pf.proto
        self.files[pf.path] = pf
        visible = {pf.path}
        for i, dep in enumerate(fd.dependency):
            visible.add(dep)
            visible |= self._public_closure(dep)
        self.visible[pf.path] = visible
        listed: set[str] = set()
        for dep, pos in zip(fd.dependency, pf.import_pos):
            if dep in listed:
                self.issues.append(Issue(pf.disk, pos, f'Import "{dep}" was listed twice.'))
            listed.add(dep)
        package = fd.package or ""
        if package:
            parts = package.split(".")
            for i in range(len(parts)):
                self.add(pf, "package", ".".join(parts[:i + 1]), fd, "")
        for msg in fd.message_type:
            self._build_message(pf, package, msg)
        for enum in fd.enum_type:
            self._build_enum(pf, package, enum)
        for ext in fd.extension:
            self._build_field(pf, package, ext, "extension")
        for svc in fd.service:
            full = f"{package}.{svc.name}" if package else svc.name or ""
            self.add(pf, "service", full, svc, package)
            for method in svc.method:
                self.add(pf, "method", f"{full}.{method.name}", method, full)

    def _public_closure(self, path: str) -> set[str]:
        out: set[str] = set()
        pf = self.files.get(path)
        if pf is None:
            return out
        for index in pf.proto.public_dependency:
            dep = pf.proto.dependency[index]
            out.add(dep)
            out |= self._public_closure(dep)
        return out

    def _build_message(self, pf: ParsedFile, scope: str, msg: d.DescriptorProto) -> None:
        """protoc's BuildMessage, in its order: oneofs, fields, nested types,
        enums, extension ranges, extensions, reserved ranges, then the
        checks of numbers against ranges."""
        full = f"{scope}.{msg.name}" if scope else msg.name or ""
        self.add(pf, "message", full, msg, scope)
        for oneof in msg.oneof_decl:
            self.add(pf, "oneof", f"{full}.{oneof.name}", oneof, full)
        for fld in msg.field:
            self._build_field(pf, full, fld, "field")
            if not 0 < (fld.number or 0) <= MAX_FIELD_NUMBER:
                self._bad_number(pf, full, msg, fld)
        for nested in msg.nested_type:
            self._build_message(pf, full, nested)
        for enum in msg.enum_type:
            self._build_enum(pf, full, enum)
        if pf.proto.syntax == "proto3" and msg.extension_range:
            self.error(pf, msg.extension_range[0], "number",
                       "Extension ranges are not allowed in proto3.")
        for ext_range in msg.extension_range:
            assert ext_range.start is not None and ext_range.end is not None
            if ext_range.start <= 0:
                self.error(pf, ext_range, "number",
                           "Extension numbers must be positive integers.")
            elif ext_range.end <= ext_range.start:
                self.error(pf, ext_range, "number",
                           "Extension range end number must be greater than start number.")
        for ext in msg.extension:
            self._build_field(pf, full, ext, "extension")
        for rng in msg.reserved_range:
            assert rng.start is not None and rng.end is not None
            if rng.end <= rng.start:
                self.error(pf, rng, "number",
                           "Reserved range end number must be greater than start number.")
        for fld in msg.field:
            number = fld.number or 0
            for ext_range in msg.extension_range:
                assert ext_range.start is not None and ext_range.end is not None
                if ext_range.start <= number < ext_range.end:
                    self.error(pf, ext_range, "number",
                               f"Extension range {ext_range.start} to {ext_range.end - 1} "
                               f'includes field "{fld.name}" ({number}).')
                    self._bad_number(pf, full, msg, ext_range)
            for rng in msg.reserved_range:
                assert rng.start is not None and rng.end is not None
                if rng.start <= number < rng.end:
                    self.error(pf, rng, "number",
                               f'Field "{fld.name}" uses reserved number {number}.')
                    self._bad_number(pf, full, msg, rng)
            if fld.name in msg.reserved_name:
                self.error(pf, fld, "name", f'Field name "{fld.name}" is reserved.')
        self._overlaps(pf, msg.extension_range, msg.reserved_range)

    def _overlaps(self, pf: ParsedFile, ext_ranges: list[d.ExtensionRange],
                  reserved: list[d.ReservedRange]) -> None:
        for i, one in enumerate(ext_ranges):
            assert one.start is not None and one.end is not None
            for res in reserved:
                assert res.start is not None and res.end is not None
                if one.end > res.start and res.end > one.start:
                    self.error(pf, one, "number",
                               f"Extension range {one.start} to {one.end - 1} overlaps with "
                               f"reserved range {res.start} to {res.end - 1}.")
            for other in ext_ranges[i + 1:]:
                assert other.start is not None and other.end is not None
                if one.end > other.start and other.end > one.start:
                    self.error(pf, one, "number",
                               f"Extension range {other.start} to {other.end - 1} overlaps "
                               f"with already-defined range {one.start} to {one.end - 1}.")
        for i, first in enumerate(reserved):
            assert first.start is not None and first.end is not None
            for later in reserved[i + 1:]:
                assert later.start is not None and later.end is not None
                if first.end > later.start and later.end > first.start:
                    self.error(pf, first, "number",
                               f"Reserved range {later.start} to {later.end - 1} overlaps "
                               f"with already-defined range {first.start} to {first.end - 1}.")

    def _bad_number(self, pf: ParsedFile, full: str, msg: d.DescriptorProto,
                    element: object) -> None:
        if all(top is not msg for top in pf.proto.message_type):
            return          # protoc prints its hint for top-level messages only
        old = self.bad_numbers.get(full)
        if old is None:
            pos = pf.pos.get((id(element), "number"), (0, 0))
            self.bad_numbers[full] = (msg, pos, 1)
        else:
            self.bad_numbers[full] = (old[0], old[1], old[2] + 1)

    def suggest_numbers(self, pf: ParsedFile) -> None:
        """protoc's closing hint for each message whose fields had unusable
        numbers: as many free numbers as there were such fields, up to three."""
        for full, (msg, pos, count) in self.bad_numbers.items():
            used = {f.number for f in msg.field if 0 < (f.number or 0) <= MAX_FIELD_NUMBER}
            free: list[str] = []
            n = 1
            while len(free) < min(count, 3):      # protoc suggests three at most
                if n not in used and not self._in_ranges(msg, n):
                    free.append(str(n))
                n += 1
            self.issues.append(Issue(pf.disk, pos, f"Suggested field numbers for {full}: "
                                     + ", ".join(free)))
        self.bad_numbers.clear()

    @staticmethod
    def _in_ranges(msg: d.DescriptorProto, n: int) -> bool:
        return (any(r.start <= n < r.end for r in msg.reserved_range)       # type: ignore
                or any(r.start <= n < r.end for r in msg.extension_range))  # type: ignore

    def _build_field(self, pf: ParsedFile, scope: str, fld: d.FieldDescriptorProto,
                     kind: str) -> None:
        full = f"{scope}.{fld.name}" if scope else fld.name or ""
        number = fld.number or 0
        if number <= 0:
            self.error(pf, fld, "number", "Field numbers must be positive integers.")
        elif number > MAX_FIELD_NUMBER:
            self.error(pf, fld, "number",
                       f"Field numbers cannot be greater than {MAX_FIELD_NUMBER}.")
        if kind == "extension" and fld.label == L.LABEL_REQUIRED:
            self.error(pf, fld, "type", f"The extension {full} cannot be required.")
        self.add(pf, kind, full, fld, scope)

    def _build_enum(self, pf: ParsedFile, scope: str, enum: d.EnumDescriptorProto) -> None:
        full = f"{scope}.{enum.name}" if scope else enum.name or ""
        self.add(pf, "enum", full, enum, scope)
        for value in enum.value:
            value_full = f"{scope}.{value.name}" if scope else value.name or ""
            old = self.symbols.get(value_full)
            if self.add(pf, "enum_value", value_full, value, scope):
                continue
            if old is not None and old.kind == "enum_value" and all(
                    old.obj is not v for v in enum.value):
                where = f'"{scope}"' if scope else "the global scope"
                self.error(pf, value, "name",
                           "Note that enum values use C++ scoping rules, meaning that enum "
                           "values are siblings of their type, not children of it.  Therefore, "
                           f'"{value.name}" must be unique within {where}, not just within '
                           f'"{enum.name}".')
        for rng in enum.reserved_range:
            assert rng.start is not None and rng.end is not None
            if rng.end < rng.start:
                self.error(pf, rng, "number",
                           "Reserved range end number must be greater than start number.")
        for i, one in enumerate(enum.reserved_range):
            assert one.start is not None and one.end is not None
            for other in enum.reserved_range[i + 1:]:
                assert other.start is not None and other.end is not None
                if one.end >= other.start and other.end >= one.start:
                    self.error(pf, one, "number",
                               f"Reserved range {other.start} to {other.end} overlaps with "
                               f"already-defined range {one.start} to {one.end}.")
        for value in enum.value:
            for rng in enum.reserved_range:
                assert rng.start is not None and rng.end is not None
                if value.number is not None and rng.start <= value.number <= rng.end:
                    self.error(pf, rng, "number",
                               f'Enum value "{value.name}" uses reserved number '
                               f'{value.number}.')
            if value.name in enum.reserved_name:
                self.error(pf, value, "name",
                           f'Enum value "{value.name}" is reserved.')

    # --- phase 2: cross-link ---------------------------------------------

    def lookup(self, pf: ParsedFile, name: str, relative_to: str, types_only: bool
               ) -> tuple[Optional[Symbol], str]:
        """protoc's LookupSymbol: the symbol and, when not found, the name
        that was last tried (for the "is resolved to" message)."""
        if name.startswith("."):
            return self._visible(pf, name[1:]), ""
        first = name.split(".", 1)[0]
        scope = relative_to
        while True:
            dot = scope.rfind(".")
            if dot < 0:
                if scope == "":
                    break
                scope = ""
            else:
                scope = scope[:dot]
            candidate = f"{scope}.{first}" if scope else first
            sym = self._visible(pf, candidate)
            if sym is not None:
                if len(first) < len(name):
                    if sym.kind in _AGGREGATES:
                        full = (f"{scope}.{name}" if scope else name)
                        found = self._visible(pf, full)
                        return found, "" if found else full
                elif not types_only or sym.kind in _TYPES:
                    return sym, ""
            if scope == "":
                break
        return None, ""

    def _visible(self, pf: ParsedFile, full: str) -> Optional[Symbol]:
        sym = self.symbols.get(full)
        if sym is None:
            return None
        if sym.kind == "package" or sym.file.path in self.visible[pf.path]:
            return sym
        self._hidden = sym
        return None

    def resolve_type(self, pf: ParsedFile, element: object, what: str, name: str,
                     relative_to: str, types_only: bool = True) -> Optional[Symbol]:
        self._hidden = None
        sym, tried = self.lookup(pf, name, relative_to, types_only)
        if sym is not None:
            return sym
        hidden = self._hidden
        if hidden is not None:
            self.error(pf, element, what,
                       f'"{name}" seems to be defined in "{hidden.file.path}", which is not '
                       f'imported by "{pf.path}".  To use it here, please add the necessary '
                       f"import.")
        elif tried and tried != name:     # found in an inner scope, not where the name says
            self.error(pf, element, what,
                       f'"{name}" is resolved to "{tried}", which is not defined. The innermost '
                       f"scope is searched first in name resolution. Consider using a leading "
                       f"'.'(i.e., \".{name}\") to start from the outermost scope.")
        else:
            self.error(pf, element, what, f'"{name}" is not defined.')
        return None

    def cross_link(self, pf: ParsedFile) -> None:
        """Phase 2, in protoc's order: messages (each after its nested
        messages), file extensions, services."""
        fd = pf.proto
        package = fd.package or ""
        for msg in fd.message_type:
            self._cross_link_message(pf, package, msg)
        for ext in fd.extension:
            self._link_field(pf, f"{package}.{ext.name}" if package else ext.name or "", ext)
        for svc in fd.service:
            svc_full = f"{package}.{svc.name}" if package else svc.name or ""
            for method in svc.method:
                for which in ("input_type", "output_type"):
                    sym = self.resolve_type(pf, method, which, getattr(method, which),
                                            f"{svc_full}.{method.name}", types_only=False)
                    if sym is None:
                        continue
                    if sym.kind != "message":
                        self.error(pf, method, which,
                                   f'"{getattr(method, which)}" is not a message type.')
                        continue
                    setattr(method, which, "." + sym.full)

    def _cross_link_message(self, pf: ParsedFile, scope: str, msg: d.DescriptorProto) -> None:
        full = f"{scope}.{msg.name}" if scope else msg.name or ""
        for nested in msg.nested_type:
            self._cross_link_message(pf, full, nested)
        by_number: dict[int, d.FieldDescriptorProto] = {}
        for fld in msg.field:
            linked = self._link_field(pf, f"{full}.{fld.name}", fld)
            if not linked or fld.number is None:    # invalid numbers are registered too
                continue
            other = by_number.get(fld.number)
            if other is not None:
                self.error(pf, fld, "number",
                           f'Field number {fld.number} has already been used in "{full}" by '
                           f'field "{other.name}". Next available field number is '
                           f"{self._next_free(msg)}.")
            else:
                by_number[fld.number] = fld
        for ext in msg.extension:
            self._link_field(pf, f"{full}.{ext.name}", ext)

    def _next_free(self, msg: d.DescriptorProto) -> int:
        used = {f.number for f in msg.field}
        if any((number or 0) <= 0 for number in used):
            return 1        # what protoc answers whenever a field has number 0
        n = 1
        while n in used or self._in_ranges(msg, n):
            n += 1
        return n

    def _link_field(self, pf: ParsedFile, full: str, fld: d.FieldDescriptorProto) -> bool:
        """protoc's CrossLinkField: extendee, type, default, then (for an
        extension) its number in the extendee. False when a name did not
        resolve (protoc then leaves the number unchecked)."""
        if fld.json_name is None:
            fld.json_name = json_name(fld.name or "")
        extendee: Optional[Symbol] = None
        if fld.extendee is not None:
            extendee = self.resolve_type(pf, fld, "extendee", fld.extendee, full,
                                         types_only=False)
            if extendee is None:
                return False
            if extendee.kind != "message":
                self.error(pf, fld, "extendee", f'"{fld.extendee}" is not a message type.')
                return False
            fld.extendee = "." + extendee.full
            msg = extendee.obj
            assert isinstance(msg, d.DescriptorProto)
            if not self._in_ranges_of(msg.extension_range, fld.number or 0):
                self.error(pf, fld, "number", f'"{extendee.full}" does not declare '
                                              f"{fld.number} as an extension number.")
        if fld.type_name is not None:
            name = fld.type_name
            sym = self.resolve_type(pf, fld, "type", name, full)
            if sym is None:
                return False
            fld.type_name = "." + sym.full
            if fld.type is None:
                fld.type = T.TYPE_MESSAGE if sym.kind == "message" else T.TYPE_ENUM
            elif fld.type == T.TYPE_GROUP and sym.kind != "message":
                self.error(pf, fld, "type", f'"{name}" is not a message type.')
                return False
        self._link_default(pf, fld)
        if extendee is not None:
            assert isinstance(extendee.obj, d.DescriptorProto)
            self._extension_number(pf, fld, full, extendee.full, extendee.obj)
        return True

    @staticmethod
    def _in_ranges_of(ranges: list[d.ExtensionRange], number: int) -> bool:
        return any(r.start is not None and r.end is not None and r.start <= number < r.end
                   for r in ranges)

    def _extension_number(self, pf: ParsedFile, fld: d.FieldDescriptorProto, full: str,
                          extendee: str, msg: d.DescriptorProto) -> None:
        """An extension's number must be free in its extendee (fields and
        other extensions alike)."""
        taken = self.extension_numbers.setdefault(extendee, {
            f.number: f"{extendee}.{f.name}" for f in msg.field if f.number is not None})
        assert fld.number is not None
        other = taken.get(fld.number)
        if other is not None:
            self.error(pf, fld, "number", f"Extension number {fld.number} has already been "
                                          f'used in "{extendee}" by extension "{other}".')
        else:
            taken[fld.number] = full

    def _link_default(self, pf: ParsedFile, fld: d.FieldDescriptorProto) -> None:
        raw = fld.default_value
        if raw is None:
            return
        if fld.type in (T.TYPE_MESSAGE, T.TYPE_GROUP):
            self.error(pf, fld, "default", "Messages can't have default values.")
        elif fld.type == T.TYPE_ENUM:
            enum = self.enum((fld.type_name or ".")[1:])
            if enum is not None and not any(v.name == raw for v in enum.value):
                self.error(pf, fld, "default", f'Enum type "{(fld.type_name or "")[1:]}" has '
                                               f'no value named "{raw}".')
        elif fld.type == T.TYPE_STRING:
            fld.default_value = raw.encode("latin-1").decode("utf-8")
        elif fld.type == T.TYPE_BYTES:
            fld.default_value = c_escape(raw.encode("latin-1"))
        elif fld.type == T.TYPE_DOUBLE:
            fld.default_value = simple_dtoa(float(raw))
        elif fld.type == T.TYPE_FLOAT:
            fld.default_value = simple_ftoa(float(raw))

    # --- phase 3: rules checked once everything resolved ------------------

    def validate(self, pf: ParsedFile, option: Callable[[object, int], object]) -> None:
        """Phase 3; ``option(element, number)`` reads an interpreted option.
        The order is protoc's: top-level messages (each: JSON names, its
        enums, its fields, then its nested messages), top-level enums,
        extensions; field numbers in 19000..19999 only when nothing else
        was wrong (protoc checks them last, with no position)."""
        fd = pf.proto
        proto3 = fd.syntax == "proto3"
        self._reserved_numbers = []
        for msg in fd.message_type:
            self._validate_message(pf, fd.package or "", msg, proto3, option)
        for enum in fd.enum_type:
            self._validate_enum(pf, fd.package or "", enum, proto3, bool(option(enum, 2)))
        for ext in fd.extension:
            self._validate_field(pf, ext, proto3, option)
        if not self.issues:
            self.issues.extend(self._reserved_numbers)

    def _validate_message(self, pf: ParsedFile, scope: str, msg: d.DescriptorProto,
                          proto3: bool, option: Callable[[object, int], object]) -> None:
        full = f"{scope}.{msg.name}" if scope else msg.name or ""
        if proto3:
            self._json_conflicts(pf, msg)
        for enum in msg.enum_type:
            self._validate_enum(pf, full, enum, proto3, bool(option(enum, 2)))  # allow_alias
        for fld in msg.field + msg.extension:
            self._validate_field(pf, fld, proto3, option)
        for nested in msg.nested_type:
            self._validate_message(pf, full, nested, proto3, option)

    def _validate_field(self, pf: ParsedFile, fld: d.FieldDescriptorProto, proto3: bool,
                        option: Callable[[object, int], object]) -> None:
        number = fld.number or 0
        # FieldOptions: packed 2, lazy 5, jstype 6, unverified_lazy 15
        if (option(fld, 5) or option(fld, 15)) and fld.type != T.TYPE_MESSAGE:
            self.error(pf, fld, "type",
                       "[lazy = true] can only be specified for submessage fields.")
        if option(fld, 2) and (fld.label != L.LABEL_REPEATED or fld.type in (
                T.TYPE_STRING, T.TYPE_BYTES, T.TYPE_MESSAGE, T.TYPE_GROUP)):
            self.error(pf, fld, "type",
                       "[packed = true] can only be specified for repeated primitive fields.")
        if FIRST_RESERVED <= number <= LAST_RESERVED and fld.extendee is None:
            self._reserved_numbers.append(Issue(pf.disk, None,
                                     f"Field numbers {FIRST_RESERVED} through {LAST_RESERVED} "
                                     "are reserved for the protocol buffer library "
                                     "implementation."))
        if proto3 and fld.default_value is not None:
            self.error(pf, fld, "default", "Explicit default values are not allowed in proto3.")
        if proto3 and fld.extendee is not None and not fld.extendee.startswith(
                ".google.protobuf.") and not fld.extendee.endswith("Options"):
            self.error(pf, fld, "extendee",
                       "Extensions in proto3 are only allowed for defining options.")
        if fld.type == T.TYPE_MESSAGE and fld.label == L.LABEL_REPEATED:
            entry = self.message((fld.type_name or ".")[1:])
            if entry is not None and d.option_varint(entry.options, 7):
                key = entry.field[0]
                if key.type in (T.TYPE_FLOAT, T.TYPE_DOUBLE, T.TYPE_BYTES, T.TYPE_MESSAGE,
                                T.TYPE_GROUP):
                    self.error(pf, fld, "type", "Key in map fields cannot be float/double, "
                                                "bytes or message types.")
                elif key.type == T.TYPE_ENUM:
                    self.error(pf, fld, "type", "Key in map fields cannot be enum types.")
                value = entry.field[1]
                value_enum = self.enum((value.type_name or ".")[1:]) \
                    if value.type == T.TYPE_ENUM else None
                if value_enum is not None and value_enum.value and value_enum.value[0].number:
                    self.error(pf, fld, "type",
                               "Enum value in map must define 0 as the first value.")
        if option(fld, 6) and fld.type not in (T.TYPE_INT64, T.TYPE_UINT64, T.TYPE_SINT64,
                                               T.TYPE_FIXED64, T.TYPE_SFIXED64):
            self.error(pf, fld, "type", "jstype is only allowed on int64, uint64, sint64, "
                                        "fixed64 or sfixed64 fields.")
        if proto3 and fld.type == T.TYPE_ENUM and fld.type_name is not None:
            if self.syntax_of(fld.type_name[1:]) != "proto3":
                self.error(pf, fld, "type",
                           f'Enum type "{fld.type_name[1:]}" is not an open enum, but is used '
                           f'in "{self._owner(fld)}" which is a proto3 message type.')

    def _owner(self, fld: d.FieldDescriptorProto) -> str:
        for full, sym in self.symbols.items():
            if sym.obj is fld:
                return sym.parent
        return ""

    def _json_conflicts(self, pf: ParsedFile, msg: d.DescriptorProto) -> None:
        seen: dict[str, d.FieldDescriptorProto] = {}
        for fld in msg.field:
            key = json_name(fld.name or "")
            other = seen.get(key)
            if other is not None:
                self.error(pf, fld, "name",
                           f'The default JSON name of field "{fld.name}" '
                           f'("{json_name(fld.name or "")}") conflicts with the default JSON '
                           f'name of field "{other.name}".')
            else:
                seen[key] = fld

    def _validate_enum(self, pf: ParsedFile, scope: str, enum: d.EnumDescriptorProto,
                       proto3: bool, allow_alias: bool) -> None:
        prefix = scope + "." if scope else ""     # enum values are siblings of their enum
        if proto3 and enum.value and enum.value[0].number != 0:
            self.error(pf, enum.value[0], "number",
                       "The first enum value must be zero for open enums.")
        by_number: dict[int, d.EnumValueDescriptorProto] = {}
        for value in enum.value:
            assert value.number is not None
            other = by_number.get(value.number)
            if other is None:
                by_number[value.number] = value
                continue
            if not allow_alias:
                # protoc suggests the first free value above the repeated one, if any
                used = {v.number for v in enum.value}
                free = next((n for n in range(value.number + 1, INT32_MAX + 1)
                             if n not in used), None)
                hint = "" if free is None else f" The next available enum value is {free}."
                self.error(pf, value, "number",
                           f'"{prefix}{value.name}" uses the same enum value as '
                           f'"{prefix}{other.name}". If this is intended, set \'option '
                           f"allow_alias = true;' to the enum definition.{hint}")


def c_escape(data: bytes) -> str:
    """protoc's CEscape (how a bytes default is written in a descriptor)."""
    out = []
    for byte in data:
        ch = chr(byte)
        if ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch in "\"'\\":
            out.append("\\" + ch)
        elif byte < 0x20 or byte >= 0x7F:
            out.append(f"\\{byte:03o}")
        else:
            out.append(ch)
    return "".join(out)


def _special(value: float) -> Optional[str]:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return None


def simple_dtoa(value: float) -> str:
    """protoc's SimpleDtoa: the shortest of %.15g / %.17g that round-trips."""
    special = _special(value)
    if special is not None:
        return special
    text = "%.15g" % value
    if abs(value) < 2.2250738585072014e-308 and value:
        return "%.17g" % value          # strtod reports ERANGE for subnormals: no round trip
    return text if float(text) == value else "%.17g" % value


def to_float32(value: float) -> float:
    """``value`` rounded to single precision (inf when out of its range)."""
    try:
        return float(struct.unpack("<f", struct.pack("<f", value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def simple_ftoa(value: float) -> str:
    """protoc's SimpleFtoa: %.6g unless it does not round-trip as a float, %.9g."""
    value = to_float32(value)
    special = _special(value)
    if special is not None:
        return special
    text = "%.6g" % value
    if abs(value) < 1.1754943508222875e-38 and value:
        return "%.9g" % value           # strtof reports ERANGE for subnormals: no round trip
    return text if to_float32(float(text)) == value else "%.9g" % value

