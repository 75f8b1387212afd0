"""The .proto parser: source text to a FileDescriptorProto whose names are not
yet resolved, plus what resolution needs (positions, uninterpreted options).

It builds what protoc's parser builds: map fields get their ``XEntry``
nested type where the field stands, groups their nested type, proto3
``optional`` fields a synthetic oneof (after the real ones), ranges are
half-open (``to max`` is 2^29), and ``default``/``json_name`` go to the
field rather than its options. Type names stay as written until
:mod:`fastnet.proto.resolve` qualifies them. Positions are protoc's: 0-based
line and column of the token an error points at.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from . import descriptor as d
from .lexer import END, FLOAT, IDENT, INT, STRING, SYMBOL, LexIssue, Token, tokenize

#: Highest field number (FieldDescriptor::kMaxNumber); ranges ending at
#: ``max`` end (exclusively) one past it.
MAX_FIELD_NUMBER = (1 << 29) - 1
INT32_MAX = (1 << 31) - 1

SCALAR_TYPES = {
    "double": d.FieldType.TYPE_DOUBLE, "float": d.FieldType.TYPE_FLOAT,
    "int64": d.FieldType.TYPE_INT64, "uint64": d.FieldType.TYPE_UINT64,
    "int32": d.FieldType.TYPE_INT32, "fixed64": d.FieldType.TYPE_FIXED64,
    "fixed32": d.FieldType.TYPE_FIXED32, "bool": d.FieldType.TYPE_BOOL,
    "string": d.FieldType.TYPE_STRING, "bytes": d.FieldType.TYPE_BYTES,
    "uint32": d.FieldType.TYPE_UINT32, "sfixed32": d.FieldType.TYPE_SFIXED32,
    "sfixed64": d.FieldType.TYPE_SFIXED64, "sint32": d.FieldType.TYPE_SINT32,
    "sint64": d.FieldType.TYPE_SINT64,
}

Pos = tuple[int, int]


@dataclass
class OptionValue:
    """The right-hand side of an option, as UninterpretedOption keeps it:
    ``kind`` is "ident", "pos_int", "neg_int", "double", "string",
    "aggregate" (value: a list of :class:`TextField`) or "aggregate_error"
    (value: why the text format did not parse)."""

    kind: str
    value: object
    pos: Pos


@dataclass
class TextField:
    """One ``name: value`` of an aggregate (text format) option value;
    ``value`` is an OptionValue, or a list of them for ``[a, b]``."""

    name: str
    is_extension: bool
    value: Union[OptionValue, list[OptionValue]]
    pos: Pos


@dataclass
class Option:
    """One ``option a.(b.c).d = value`` statement (or bracketed option)."""

    name: list[tuple[str, bool]]      # (part, is_extension)
    value: OptionValue
    pos: Pos                          # of the option name

    def name_text(self) -> str:
        return ".".join(f"({p})" if ext else p for p, ext in self.name)


@dataclass
class OptionSite:
    """Options of one element, interpreted later into ``target.options``.
    ``kind`` names the options message ("FileOptions", "FieldOptions", ...);
    ``scope`` is the full name options are looked up from."""

    target: object
    kind: str
    options: list[Option]
    scope: str = ""


@dataclass
class ParsedFile:
    """A parsed file: the descriptor, and what resolution needs."""

    proto: d.FileDescriptorProto
    path: str                  # the name imports use (relative to its include dir)
    disk: str = ""             # where it was read from, as protoc prints it in errors
    #: (id(element), what) -> position; what is "name", "number", "type",
    #: "extendee", "default", "json_name", "input_type", "output_type",
    #: or "element" (a field's first token).
    pos: dict[tuple[int, str], Pos] = field(default_factory=dict)
    option_sites: list[OptionSite] = field(default_factory=list)
    #: syntax errors, in protoc's order (the file is unusable when there are any)
    errors: list[tuple[Pos, str]] = field(default_factory=list)
    import_pos: list[Pos] = field(default_factory=list)


class ParseError(Exception):
    """A statement that did not parse (the parser records it and skips on)."""

    def __init__(self, pos: Pos, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message


def parse(text: str, path: str) -> ParsedFile:
    """Parse one file. Syntax errors are collected in ``errors`` the way
    protoc's parser reports them: a statement that fails is skipped (to its
    ";" or past its "{ }" block) and parsing goes on."""
    tokens, lex_issues = tokenize(text)
    return _Parser(tokens, lex_issues, path).parse_file()


def json_name(name: str) -> str:
    """protoc's default json_name: underscores dropped, the letter after each
    one upper-cased."""
    out = []
    upper = False
    for ch in name:
        if ch == "_":
            upper = True
        elif upper:
            out.append(ch.upper() if "a" <= ch <= "z" else ch)
            upper = False
        else:
            out.append(ch)
    return "".join(out)


def map_entry_name(field_name: str) -> str:
    """The nested type protoc generates for map field ``field_name``."""
    out = []
    upper = True
    for ch in field_name:
        if ch == "_":
            upper = True
        elif upper:
            out.append(ch.upper() if "a" <= ch <= "z" else ch)
            upper = False
        else:
            out.append(ch)
    return "".join(out) + "Entry"


class _Parser:
    def __init__(self, tokens: list[Token], lex_issues: list[LexIssue], path: str) -> None:
        self.tokens = tokens
        self.i = 0
        self.syntax = "proto2"
        self.out = ParsedFile(d.FileDescriptorProto(name=path), path)
        self.lex_issues = lex_issues
        self.lex_done = 0          # lex issues reported so far
        self.in_block = False      # parsing an aggregate's tokens, not the file's
        self.report_lex()

    # --- token helpers ---------------------------------------------------

    @property
    def cur(self) -> Token:
        return self.tokens[self.i]

    def at(self, text: str) -> bool:
        tok = self.cur
        return tok.kind in (SYMBOL, IDENT) and tok.text == text

    def next(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != END:
            self.i += 1
            self.report_lex()
        return tok

    def report_lex(self) -> None:
        """Record the tokenizer's errors up to the current token, when
        protoc's tokenizer (one token ahead) would print them."""
        if self.in_block:
            return
        issues = self.lex_issues
        while self.lex_done < len(issues) and issues[self.lex_done].index <= self.i:
            issue = issues[self.lex_done]
            self.out.errors.append(((issue.line, issue.col), issue.message))
            self.lex_done += 1

    def statement(self, parse_one: Callable[[], object]) -> bool:
        """Parse one statement; when it fails, record why, skip the rest of
        it (protoc's SkipStatement) and return False."""
        try:
            parse_one()
        except ParseError as exc:
            self.out.errors.append((exc.pos, exc.message))
            self.skip_statement()
            return False
        return True

    def skip_statement(self) -> None:
        """protoc's SkipStatement: up to and including the next ";", or past
        the next "{ }" block, or up to (not including) a "}" that closes the
        enclosing block."""
        while self.cur.kind != END:
            if self.cur.kind == SYMBOL:
                if self.accept(";"):
                    return
                if self.accept("{"):
                    self.skip_rest_of_block()
                    return
                if self.at("}"):
                    return
            self.next()

    def skip_rest_of_block(self) -> None:
        """protoc's SkipRestOfBlock, without its recursion: past the "}" that
        closes the block. Like protoc, after a nested block closes it steps
        over one more token, whatever it is (even the "}" of the block)."""
        depth = 1
        while self.cur.kind != END:
            if self.accept("}"):
                depth -= 1
                if depth == 0:
                    return
                self.next()
            elif self.accept("{"):
                depth += 1
            else:
                self.next()

    def error(self, message: str, tok: Optional[Token] = None) -> ParseError:
        tok = tok or self.cur
        return ParseError((tok.line, tok.col), message)

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.next()
            return True
        return False

    def expect(self, text: str, message: Optional[str] = None) -> Token:
        if not self.at(text):
            if message is None:
                message = f'Expected "{text}".'
            raise self.error(message)
        return self.next()

    def end_statement(self) -> None:
        self.expect(";")

    def ident(self, message: str = "Expected identifier.") -> Token:
        if self.cur.kind != IDENT:
            raise self.error(message)
        return self.next()

    def full_ident(self, message: str = "Expected identifier.") -> str:
        parts = [self.ident(message).text]
        while self.accept("."):
            parts.append(self.ident(message).text)
        return ".".join(parts)

    def integer(self, message: str, limit: int = INT32_MAX) -> int:
        tok = self.cur
        if tok.kind != INT:
            raise self.error(message)
        self.next()
        assert isinstance(tok.value, int)
        if tok.value > limit:
            raise self.error("Integer out of range.", tok)
        return tok.value

    def string(self) -> bytes:
        if self.cur.kind != STRING:
            raise self.error("Expected string.")
        value = b""
        while self.cur.kind == STRING:
            tok = self.next()
            assert isinstance(tok.value, bytes)
            value += tok.value
        return value

    def mark(self, element: object, what: str, tok: Token) -> None:
        # every element marked lives in the file's tree, so its id stays unique
        self.out.pos[(id(element), what)] = (tok.line, tok.col)

    def block(self, what: str, options: Optional[list[Option]],
              parse_one: Callable[[], object]) -> None:
        """The statements of a ``{ ... }`` block (the "{" consumed): empty
        statements skipped, ``option`` statements collected into ``options``
        (when the block allows them), ``parse_one`` for every other one; a
        statement that fails is recorded and skipped."""
        while not self.accept("}"):
            if self.cur.kind == END:
                raise self.error(f"Reached end of input in {what} (missing '}}').")
            if self.accept(";"):
                continue
            if options is not None and self.at("option"):
                self.next()
                self.statement(lambda: options.append(self.option_statement()))
                continue
            self.statement(parse_one)

    def named(self, element: object, message: str) -> Token:
        """Read the element's name (an identifier), set and locate it."""
        tok = self.ident(message)
        setattr(element, "name", tok.text)
        self.mark(element, "name", tok)
        return tok

    # --- file ------------------------------------------------------------

    def parse_file(self) -> ParsedFile:
        fd = self.out.proto
        try:
            self.parse_syntax()
        except ParseError as exc:         # protoc parses no further either
            self.out.errors.append((exc.pos, exc.message))
            return self.out
        if self.syntax == "proto3":
            fd.syntax = "proto3"
        file_options: list[Option] = []

        def one() -> None:
            if self.at("import"):
                self.parse_import()
            elif self.at("package"):
                tok = self.next()
                if fd.package is not None:      # reported, and parsing goes on
                    self.out.errors.append(((tok.line, tok.col), "Multiple package definitions."))
                fd.package = self.full_ident()
                self.end_statement()
            elif self.at("option"):
                self.next()
                file_options.append(self.option_statement())
            elif self.at("message"):
                fd.message_type.append(self.parse_message())
            elif self.at("enum"):
                fd.enum_type.append(self.parse_enum())
            elif self.at("service"):
                fd.service.append(self.parse_service())
            elif self.at("extend"):
                self.parse_extend(fd.extension, fd.message_type, "")
            else:
                raise self.error("Expected top-level statement (e.g. \"message\").")

        while self.cur.kind != END:
            if self.accept(";"):
                continue
            if not self.statement(one) and self.at("}"):
                self.out.errors.append(((self.cur.line, self.cur.col), 'Unmatched "}".'))
                self.next()
        self.site(fd, "FileOptions", file_options)
        return self.out

    def parse_syntax(self) -> None:
        if self.at("syntax"):
            self.next()
            self.expect("=")
            tok = self.cur
            syntax = self.string().decode("utf-8", "replace")
            if syntax not in ("proto2", "proto3"):
                raise self.error(f'Unrecognized syntax identifier "{syntax}".  This parser '
                                 'only recognizes "proto2" and "proto3".', tok)
            self.end_statement()
            self.syntax = syntax
        elif self.at("edition"):
            raise self.error('fastnet does not support editions; use syntax = "proto2" or '
                             '"proto3".')

    def site(self, target: object, kind: str, options: list[Option]) -> None:
        if options:
            self.out.option_sites.append(OptionSite(target, kind, options))

    def parse_import(self) -> None:
        fd = self.out.proto
        tok = self.next()
        if self.accept("public"):
            fd.public_dependency.append(len(fd.dependency))
        elif self.accept("weak"):
            fd.weak_dependency.append(len(fd.dependency))
        if self.cur.kind != STRING:
            raise self.error("Expected a string naming the file to import.")
        fd.dependency.append(self.string().decode("utf-8"))
        self.out.import_pos.append((tok.line, tok.col))
        self.end_statement()

    # --- options ---------------------------------------------------------

    def option_name(self) -> list[tuple[str, bool]]:
        parts: list[tuple[str, bool]] = []
        while True:
            if self.accept("("):
                name = "." if self.accept(".") else ""
                name += self.full_ident()
                self.expect(")")
                parts.append((name, True))
            else:
                parts.append((self.ident().text, False))
            if not self.accept("."):
                return parts

    def option_statement(self) -> Option:
        opt = self.option_assignment()
        self.end_statement()
        return opt

    def option_assignment(self) -> Option:
        tok = self.cur
        name = self.option_name()
        self.expect("=")
        return Option(name, self.option_value(), (tok.line, tok.col))

    def option_value(self) -> OptionValue:
        tok = self.cur
        pos = (tok.line, tok.col)
        if self.at("{"):
            return self.aggregate_block(pos)
        negative = self.accept("-")
        tok = self.cur
        if tok.kind == IDENT:
            self.next()
            if negative:
                if tok.text == "inf":
                    return OptionValue("double", float("-inf"), pos)
                if tok.text == "nan":
                    return OptionValue("double", float("nan"), pos)
                raise self.error("Identifier after '-' symbol must be inf or nan.", tok)
            return OptionValue("ident", tok.text, pos)
        if tok.kind == INT:
            self.next()
            assert isinstance(tok.value, int)
            # protoc keeps an integer too big for 64 bits as a double
            if negative:
                if tok.value > 1 << 63:
                    return OptionValue("double", -float(tok.value), pos)
                return OptionValue("neg_int", -tok.value, pos)
            if tok.value >= 1 << 64:
                return OptionValue("double", float(tok.value), pos)
            return OptionValue("pos_int", tok.value, pos)
        if tok.kind == FLOAT:
            self.next()
            assert isinstance(tok.value, float)
            return OptionValue("double", -tok.value if negative else tok.value, pos)
        if tok.kind == STRING and not negative:
            return OptionValue("string", self.string(), pos)
        raise self.error("Expected integer." if negative else "Expected option value.")

    def aggregate_block(self, pos: Pos) -> OptionValue:
        """An aggregate option value, ``{ ... }`` in text format. protoc keeps
        the tokens up to the matching brace as text and parses them when it
        interprets the option, so a text-format ``#`` comment hides the rest
        of the block (there are no line breaks left) and a malformed block
        is an option error, reported then."""
        depth, j, cut = 0, self.i, None
        while True:
            tok = self.tokens[j]
            if tok.kind == END:
                raise self.error("Unexpected end of stream while parsing aggregate value.", tok)
            if tok.kind == SYMBOL and tok.text == "{":
                depth += 1
            elif tok.kind == SYMBOL and tok.text == "}":
                depth -= 1
                if depth == 0:
                    break
            elif tok.kind == SYMBOL and tok.text == "#" and cut is None:
                cut = j
            j += 1
        body = self.tokens[self.i + 1:j if cut is None else cut]
        saved = self.tokens, self.i
        self.tokens, self.i = body + [Token(END, "", tok.line, tok.col)], 0
        self.in_block = True
        try:
            value = OptionValue("aggregate", self.text_fields(END), pos)
        except ParseError as exc:
            value = OptionValue("aggregate_error", exc.message, pos)
        finally:
            self.tokens, self.i = saved
            self.in_block = False
        self.i = j + 1
        self.report_lex()
        return value

    def text_fields(self, close: str) -> list[TextField]:
        """Text-format fields up to ``close`` ("}", ">" or the END kind)."""
        fields: list[TextField] = []
        while not (self.cur.kind == END if close == END else self.accept(close)):
            tok = self.cur
            if self.accept("["):
                name = self.full_ident(f"Expected identifier, got: {self.cur.text}")
                self.expect("]")
                is_ext = True
            else:
                name = self.ident(f"Expected identifier, got: {tok.text}").text
                is_ext = False
            value: Union[OptionValue, list[OptionValue]]
            if self.accept(":"):
                if self.at("["):
                    self.next()
                    items: list[OptionValue] = []
                    while not self.accept("]"):
                        items.append(self.text_value())
                        if not self.at("]"):
                            self.expect(",")
                    value = items
                else:
                    value = self.text_value()
            else:
                if not (self.at("{") or self.at("<")):
                    raise self.error(f'Expected ":", found "{self.cur.text}".')
                value = self.text_value()
            fields.append(TextField(name, is_ext, value, (tok.line, tok.col)))
            if not self.accept(","):
                self.accept(";")
        return fields

    def text_value(self) -> OptionValue:
        if self.at("{") or self.at("<"):
            tok = self.next()
            return OptionValue("aggregate", self.text_fields("}" if tok.text == "{" else ">"),
                               (tok.line, tok.col))
        return self.option_value()

    def bracket_options(self, fld: Optional[d.FieldDescriptorProto] = None) -> list[Option]:
        """``[a = 1, (b) = 2]``; on a field, ``default`` and ``json_name`` go
        to the field itself."""
        options: list[Option] = []
        if not self.accept("["):
            return options
        while True:
            tok = self.cur
            if fld is not None and self.at("default") and self.tokens[self.i + 1].text == "=":
                self.next()
                self.next()
                if fld.default_value is not None:
                    raise self.error('Already set option "default".', tok)
                if fld.label == d.FieldLabel.LABEL_REPEATED:
                    raise self.error("Repeated fields can't have default values.")
                self.mark(fld, "default", self.cur)
                fld.default_value = self.default_value(fld)
            elif fld is not None and self.at("json_name") and self.tokens[self.i + 1].text == "=":
                self.next()
                self.next()
                if fld.json_name is not None:
                    raise self.error('Already set option "json_name".', tok)
                if fld.extendee is not None:
                    raise self.error("option json_name is not allowed on extension fields.",
                                     tok)
                self.mark(fld, "json_name", tok)
                fld.json_name = self.string().decode("utf-8")
            else:
                options.append(self.option_assignment())
            if self.accept("]"):
                return options
            self.expect(",")

    def default_value(self, fld: d.FieldDescriptorProto) -> str:
        """The default as protoc's parser keeps it (numbers re-printed later
        by the resolver, which knows the final type)."""
        T = d.FieldType
        if fld.type in (T.TYPE_STRING, T.TYPE_BYTES):
            if self.cur.kind != STRING:
                raise self.error("Expected string for field default value.")
            raw = self.string()
            return raw.decode("latin-1")     # bytes kept 1:1; re-encoded by the resolver
        if fld.type == T.TYPE_BOOL:
            tok = self.cur
            if tok.kind == IDENT and tok.text in ("true", "false"):
                self.next()
                return tok.text
            raise self.error('Expected "true" or "false".')
        negative = self.accept("-")
        tok = self.cur
        if fld.type in (T.TYPE_FLOAT, T.TYPE_DOUBLE):
            if tok.kind == IDENT and tok.text in ("inf", "nan"):
                self.next()
                return ("-" if negative else "") + tok.text
            if tok.kind not in (INT, FLOAT):
                raise self.error("Expected number.")
            self.next()
            return repr(-float(tok.value) if negative else float(tok.value))  # type: ignore[arg-type]
        if fld.type is None:          # enum (or message: an error later)
            if negative:
                raise self.error("Expected identifier.")
            return self.ident("Expected enum identifier.").text
        if tok.kind != INT:
            raise self.error("Expected integer for field default value.")
        if negative and fld.type in (T.TYPE_UINT32, T.TYPE_UINT64, T.TYPE_FIXED32, T.TYPE_FIXED64):
            raise self.error("Unsigned field can't have negative default value.", tok)
        self.next()
        assert isinstance(tok.value, int)
        bits = 64 if fld.type in (T.TYPE_INT64, T.TYPE_UINT64, T.TYPE_SINT64, T.TYPE_FIXED64,
                                  T.TYPE_SFIXED64) else 32
        signed = fld.type not in (T.TYPE_UINT32, T.TYPE_UINT64, T.TYPE_FIXED32, T.TYPE_FIXED64)
        top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        if tok.value > top + (1 if negative else 0):
            raise self.error("Integer out of range.", tok)
        return str(-tok.value if negative else tok.value)

    # --- messages --------------------------------------------------------

    def parse_message(self) -> d.DescriptorProto:
        self.expect("message")
        msg = d.DescriptorProto()
        self.named(msg, "Expected message name.")
        self.expect("{")
        self.message_body(msg)
        return msg

    def message_body(self, msg: d.DescriptorProto) -> None:
        options: list[Option] = []

        def one() -> None:
            if self.at("message"):
                msg.nested_type.append(self.parse_message())
            elif self.at("enum"):
                msg.enum_type.append(self.parse_enum())
            elif self.at("oneof"):
                self.parse_oneof(msg)
            elif self.at("extensions"):
                self.parse_extensions(msg)
            elif self.at("reserved"):
                self.parse_reserved(msg.reserved_range, msg.reserved_name, d.ReservedRange, 1)
            elif self.at("extend"):
                self.parse_extend(msg.extension, msg.nested_type, msg.name or "")
            else:
                self.parse_field(msg.field, msg.nested_type, msg, None)

        self.block("message definition", options, one)
        self.site(msg, "MessageOptions", options)
        self.add_synthetic_oneofs(msg)

    def add_synthetic_oneofs(self, msg: d.DescriptorProto) -> None:
        """proto3 ``optional`` fields each get a oneof ``_name`` after the
        real ones ('X' prefixed while the name is taken)."""
        taken = {f.name for f in msg.field} | {o.name for o in msg.oneof_decl}
        taken |= {m.name for m in msg.nested_type} | {e.name for e in msg.enum_type}
        for fld in msg.field:
            if fld.proto3_optional:
                name = fld.name or ""
                if not name.startswith("_"):
                    name = "_" + name
                while name in taken:
                    name = "X" + name
                taken.add(name)
                fld.oneof_index = len(msg.oneof_decl)
                msg.oneof_decl.append(d.OneofDescriptorProto(name=name))

    def parse_oneof(self, msg: d.DescriptorProto) -> None:
        self.next()
        oneof = d.OneofDescriptorProto()
        self.named(oneof, "Expected oneof name.")
        index = len(msg.oneof_decl)
        msg.oneof_decl.append(oneof)
        self.expect("{")
        options: list[Option] = []

        def one() -> None:
            if self.at("required") or self.at("optional") or self.at("repeated"):
                # protoc reports it and reads the field as if the label were not there
                tok = self.next()
                self.out.errors.append(((tok.line, tok.col), "Fields in oneofs must not have "
                                        "labels (required / optional / repeated)."))
            self.parse_field(msg.field, msg.nested_type, msg, index)

        if self.at("}"):        # protoc's loop reads a field before it looks for the "}"
            self.statement(one)
        self.block("oneof definition", options, one)
        self.site(oneof, "OneofOptions", options)

    def parse_field(self, fields: list[d.FieldDescriptorProto],
                    nested: list[d.DescriptorProto], msg: Optional[d.DescriptorProto],
                    oneof_index: Optional[int], extendee: Optional[Token] = None) -> None:
        fld = d.FieldDescriptorProto()
        start = self.cur
        label: Optional[d.FieldLabel] = None
        if self.at("required") or self.at("optional") or self.at("repeated"):
            tok = self.next()
            label = d.FieldLabel["LABEL_" + tok.text.upper()]
            if self.syntax == "proto3" and label == d.FieldLabel.LABEL_REQUIRED:
                raise self.error("Required fields are not allowed in proto3.")
            if self.syntax == "proto3" and label == d.FieldLabel.LABEL_OPTIONAL:
                fld.proto3_optional = True
        if extendee is not None:
            fld.extendee = extendee.text
            self.mark(fld, "extendee", extendee)
        self.mark(fld, "element", start)
        if self.at("map") and self.tokens[self.i + 1].text == "<":
            self.parse_map_field(fld, label, nested, oneof_index)
            fields.append(fld)
            return
        if label is None and oneof_index is None and self.syntax == "proto2":
            raise self.error('Expected "required", "optional", or "repeated".')
        fld.label = label or d.FieldLabel.LABEL_OPTIONAL
        if oneof_index is not None:
            fld.oneof_index = oneof_index
        group = self.at("group") and self.tokens[self.i + 1].kind == IDENT
        type_tok = self.cur
        self.mark(fld, "type", type_tok)
        if group:
            self.next()
            if self.syntax == "proto3":
                raise self.error("Groups are not supported in proto3 syntax.", type_tok)
            fld.type = d.FieldType.TYPE_GROUP
        else:
            self.field_type(fld)
        name_tok = self.ident("Expected field name.")
        self.mark(fld, "name", name_tok)
        fld.name = name_tok.text
        self.expect("=", 'Missing field number.')
        self.mark(fld, "number", self.cur)
        fld.number = self.integer("Expected field number.")
        options = self.bracket_options(fld)
        self.site(fld, "FieldOptions", options)
        fields.append(fld)
        if group:
            if not ("A" <= name_tok.text[0] <= "Z"):
                raise self.error("Group names must start with a capital letter.", name_tok)
            group_msg = d.DescriptorProto(name=name_tok.text)
            self.mark(group_msg, "name", name_tok)
            fld.name = name_tok.text.lower()
            fld.type_name = name_tok.text
            nested.append(group_msg)
            self.expect("{")
            self.message_body(group_msg)
        else:
            self.end_statement()

    def field_type(self, fld: d.FieldDescriptorProto) -> None:
        tok = self.cur
        if tok.kind == IDENT and tok.text in SCALAR_TYPES and self.tokens[self.i + 1].text != ".":
            self.next()
            fld.type = SCALAR_TYPES[tok.text]
            return
        name = "." if self.accept(".") else ""
        fld.type_name = name + self.full_ident("Expected type name.")

    def parse_map_field(self, fld: d.FieldDescriptorProto, label: Optional[d.FieldLabel],
                        nested: list[d.DescriptorProto], oneof_index: Optional[int]) -> None:
        map_tok = self.next()
        if oneof_index is not None:
            raise self.error("Map fields are not allowed in oneofs.")
        if label is not None:
            raise self.error("Field labels (required/optional/repeated) are not allowed on map "
                             "fields.", map_tok)
        self.expect("<")
        key = d.FieldDescriptorProto(name="key", number=1, label=d.FieldLabel.LABEL_OPTIONAL,
                                     json_name="key")
        self.field_type(key)      # unmarked: protoc has no position for the entry's fields
        self.expect(",")
        value = d.FieldDescriptorProto(name="value", number=2,
                                       label=d.FieldLabel.LABEL_OPTIONAL, json_name="value")
        self.field_type(value)
        self.expect(">")
        name_tok = self.ident("Expected field name.")
        self.mark(fld, "name", name_tok)
        self.mark(fld, "type", map_tok)
        fld.name = name_tok.text
        fld.label = d.FieldLabel.LABEL_REPEATED
        self.expect("=", 'Missing field number.')
        self.mark(fld, "number", self.cur)
        fld.number = self.integer("Expected field number.")
        entry = d.DescriptorProto(name=map_entry_name(fld.name), field=[key, value],
                                  options=b"\x38\x01")      # MessageOptions.map_entry = true
        self.mark(entry, "name", name_tok)
        self.out.pos[(id(entry), "map_entry")] = (name_tok.line, name_tok.col)
        fld.type_name = entry.name
        nested.append(entry)
        self.site(fld, "FieldOptions", self.bracket_options(fld))
        self.end_statement()

    def parse_extensions(self, msg: d.DescriptorProto) -> None:
        self.next()
        ranges: list[d.ExtensionRange] = []
        while True:
            tok = self.cur
            start = self.integer("Expected field number range.")
            end = start
            if self.accept("to"):
                if self.accept("max"):
                    end = MAX_FIELD_NUMBER
                else:
                    end = self.integer("Expected integer.")
            rng = d.ExtensionRange(start=start, end=end + 1)
            self.mark(rng, "number", tok)
            ranges.append(rng)
            if not self.accept(","):
                break
        options = self.bracket_options()
        for rng in ranges:
            self.site(rng, "ExtensionRangeOptions", options)
        msg.extension_range.extend(ranges)
        self.end_statement()

    def parse_reserved(self, ranges: list, names: list[str], cls: type, end_add: int) -> None:
        self.next()
        if self.cur.kind == STRING:
            while True:
                names.append(self.string().decode("utf-8"))
                if not self.accept(","):
                    break
            self.end_statement()
            return
        maximum = MAX_FIELD_NUMBER if end_add else INT32_MAX
        while True:
            tok = self.cur
            negative = not end_add and self.accept("-")
            start = self.integer("Expected field number range." if end_add else
                                 "Expected enum number range.")
            start = -start if negative else start
            end = start
            if self.accept("to"):
                if self.accept("max"):
                    end = maximum
                else:
                    negative = not end_add and self.accept("-")
                    end = self.integer("Expected integer.")
                    end = -end if negative else end
            rng = cls(start=start, end=end + end_add)
            self.mark(rng, "number", tok if not negative else self.tokens[self.i - 1])
            ranges.append(rng)
            if not self.accept(","):
                break
        self.end_statement()

    def parse_extend(self, extensions: list[d.FieldDescriptorProto],
                     nested: list[d.DescriptorProto], scope: str) -> None:
        self.next()
        tok = self.cur
        name = "." if self.accept(".") else ""
        name += self.full_ident()
        target = Token(IDENT, name, tok.line, tok.col)
        self.expect("{")
        self.block("extend definition", None,
                   lambda: self.parse_field(extensions, nested, None, None, extendee=target))

    # --- enums -----------------------------------------------------------

    def parse_enum(self) -> d.EnumDescriptorProto:
        self.next()
        enum = d.EnumDescriptorProto()
        self.named(enum, "Expected enum name.")
        self.expect("{")
        options: list[Option] = []

        def one() -> None:
            if self.at("reserved"):
                self.parse_reserved(enum.reserved_range, enum.reserved_name,
                                    d.EnumReservedRange, 0)
            else:
                value = d.EnumValueDescriptorProto()
                self.named(value, "Expected enum constant name.")
                self.expect("=", 'Missing numeric value for enum constant.')
                self.mark(value, "number", self.cur)
                negative = self.accept("-")
                number = self.integer("Expected integer.",
                                      INT32_MAX + 1 if negative else INT32_MAX)
                value.number = -number if negative else number
                self.site(value, "EnumValueOptions", self.bracket_options())
                enum.value.append(value)
                self.end_statement()

        self.block("enum definition", options, one)
        self.site(enum, "EnumOptions", options)
        self.check_allow_alias(enum, options)
        return enum

    def check_allow_alias(self, enum: d.EnumDescriptorProto, options: list[Option]) -> None:
        """protoc's parser refuses an ``allow_alias`` that changes nothing,
        pointing at the token after the enum (and parses no further)."""
        for opt in options:
            if opt.name != [("allow_alias", False)] or opt.value.kind != "ident":
                continue
            numbers = [v.number for v in enum.value]
            if opt.value.value == "false":
                raise self.error(f'"{enum.name}" declares \'option allow_alias = false;\' which '
                                 "has no effect. Please remove the declaration.")
            if opt.value.value == "true" and len(set(numbers)) == len(numbers):
                raise self.error(f'"{enum.name}" declares support for enum aliases but no enum '
                                 "values share field numbers. Please remove the unnecessary "
                                 "'option allow_alias = true;' declaration.")

    # --- services --------------------------------------------------------

    def parse_service(self) -> d.ServiceDescriptorProto:
        self.next()
        svc = d.ServiceDescriptorProto()
        self.named(svc, "Expected service name.")
        self.expect("{")
        options: list[Option] = []

        def one() -> None:
            self.expect("rpc")
            svc.method.append(self.parse_method())

        self.block("service definition", options, one)
        self.site(svc, "ServiceOptions", options)
        return svc

    def parse_method(self) -> d.MethodDescriptorProto:
        method = d.MethodDescriptorProto()
        self.named(method, "Expected method name.")
        for which in ("input_type", "output_type"):
            if which == "output_type":
                self.expect("returns")
            self.expect("(")
            if self.at("stream"):
                self.next()
                setattr(method, "client_streaming" if which == "input_type"
                        else "server_streaming", True)
            self.mark(method, which, self.cur)
            name = "." if self.accept(".") else ""
            setattr(method, which, name + self.full_ident())
            self.expect(")")
        options: list[Option] = []
        if self.accept("{"):
            method.options = b""        # protoc writes an empty MethodOptions for a { } body
            self.block("method options", options, lambda: self.expect("option"))
        else:
            self.end_statement()
        self.site(method, "MethodOptions", options)
        return method
