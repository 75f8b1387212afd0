"""The .proto tokenizer: identifiers, numbers, strings and symbols, with the
line and column of each token as protoc counts them (0-based internally,
a tab advancing the column to the next multiple of 8; errors print both
1-based).

Comments of both kinds (``//`` to the end of the line, ``/* ... */``) are
skipped. Errors are recorded and tokenizing goes on, as protoc's tokenizer
does, so a malformed schema ends in a
:class:`~fastnet.errors.ProtoSchemaError` naming each position, never an
IndexError.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

IDENT = "ident"
INT = "int"
FLOAT = "float"
STRING = "string"
SYMBOL = "symbol"
END = "end"

_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT_CHARS = _IDENT_START | frozenset("0123456789")
_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
_OCTAL = frozenset("01234567")
_SIMPLE_ESCAPES = {
    "a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11,
    "\\": 92, "?": 63, "'": 39, '"': 34,
}


@dataclass
class Token:
    kind: str
    text: str          # the source text (for strings: with quotes)
    line: int          # 0-based
    col: int           # 0-based, tabs to multiples of 8
    value: object = None   # int / float / bytes (decoded string)


@dataclass
class LexIssue:
    """An error the tokenizer found and went on after, as protoc's does. It
    is reported when the parser reaches token ``index`` (protoc reads one
    token ahead, so that is when protoc prints it)."""

    index: int
    line: int
    col: int
    message: str


def tokenize(text: str) -> tuple[list[Token], list[LexIssue]]:
    """Every token of ``text``, ending with one END token, and the errors."""
    tokens: list[Token] = []
    issues: list[LexIssue] = []
    pos, end = 0, len(text)
    line = col = 0

    def report(at_line: int, at_col: int, message: str) -> None:
        issues.append(LexIssue(len(tokens), at_line, at_col, message))

    def advance(n: int) -> None:
        nonlocal pos, line, col
        for ch in text[pos:pos + n]:
            if ch == "\n":
                line += 1
                col = 0
            elif ch == "\t":
                col += 8 - col % 8
            else:
                col += 1
        pos += n

    while pos < end:
        ch = text[pos]
        if ch in " \t\r\n\v\f":
            advance(1)
            continue
        if text.startswith("//", pos):
            stop = text.find("\n", pos)
            advance((end if stop < 0 else stop) - pos)
            continue
        if text.startswith("/*", pos):
            stop = text.find("*/", pos + 2)
            if stop < 0:
                start_line, start_col = line, col
                advance(end - pos)
                report(line, col, "End-of-file inside block comment.")
                report(start_line, start_col, "  Comment started here.")
                break
            advance(stop + 2 - pos)
            continue
        start_line, start_col = line, col
        if ch in _IDENT_START:
            stop = pos + 1
            while stop < end and text[stop] in _IDENT_CHARS:
                stop += 1
            tokens.append(Token(IDENT, text[pos:stop], start_line, start_col))
            advance(stop - pos)
        elif ch in _DIGITS or (ch == "." and pos + 1 < end and text[pos + 1] in _DIGITS):
            stop, kind, value = _number(text, pos, start_line, start_col, report)
            tokens.append(Token(kind, text[pos:stop], start_line, start_col, value))
            advance(stop - pos)
        elif ch in "\"'":
            stop, value = _string(text, pos, start_line, start_col, report)
            tokens.append(Token(STRING, text[pos:stop], start_line, start_col, value))
            advance(stop - pos)
        else:
            tokens.append(Token(SYMBOL, ch, start_line, start_col))
            advance(1)
    tokens.append(Token(END, "", line, col))
    return tokens, issues


Report = Callable[[int, int, str], None]

#: The value of an integer token that does not parse (protoc then reports
#: "Integer out of range." where it is used): above every limit.
_UNPARSABLE = 1 << 64


def _number(text: str, pos: int, line: int, col: int, report: Report
            ) -> tuple[int, str, object]:
    end = len(text)
    stop = pos
    value: object
    if text.startswith(("0x", "0X"), pos):
        stop = pos + 2
        while stop < end and text[stop] in _HEX:
            stop += 1
        if stop == pos + 2:
            report(line, col + 2, '"0x" must be followed by hex digits.')
        kind, value = INT, int(text[pos + 2:stop] or "0", 16)
    else:
        while stop < end and text[stop] in _DIGITS:
            stop += 1
        is_float = False
        if stop < end and text[stop] == ".":
            is_float = True
            stop += 1
            while stop < end and text[stop] in _DIGITS:
                stop += 1
        if stop < end and text[stop] in "eE":
            exp = stop + 1
            if exp < end and text[exp] in "+-":
                exp += 1
            if exp < end and text[exp] in _DIGITS:
                is_float = True
                stop = exp
                while stop < end and text[stop] in _DIGITS:
                    stop += 1
            else:
                report(line, col + (exp - pos), '"e" must be followed by exponent.')
                stop = exp
                is_float = True
        literal = text[pos:stop].rstrip("eE+-")
        if stop < end and text[stop] in "fF" and is_float:
            stop += 1
        if is_float:
            kind, value = FLOAT, float(literal)
        elif len(literal) > 1 and literal[0] == "0":
            bad = next((k for k, c in enumerate(literal) if c not in _OCTAL), None)
            if bad is not None:
                report(line, col + bad, "Numbers starting with leading zero must be in octal.")
                kind, value = INT, _UNPARSABLE
            else:
                kind, value = INT, int(literal, 8)
        else:
            kind, value = INT, int(literal)
    if stop < end and text[stop] in _IDENT_CHARS:
        report(line, col + (stop - pos), "Need space between number and identifier.")
    return stop, kind, value


def _string(text: str, pos: int, line: int, col: int, report: Report) -> tuple[int, bytes]:
    """The string token at ``pos``; an unterminated one ends at the line end."""
    quote = text[pos]
    out = bytearray()
    i, end = pos + 1, len(text)
    while True:
        if i >= end or text[i] == "\n":
            report(line, col + (i - pos), 'Multiline strings are not allowed. Did you miss a "?.')
            return i, bytes(out)
        ch = text[i]
        if ch == quote:
            return i + 1, bytes(out)
        if ch != "\\":
            out += ch.encode("utf-8")
            i += 1
            continue
        i += 1
        esc = text[i] if i < end else ""
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
            i += 1
        elif esc in _OCTAL:
            stop = i
            while stop < end and stop < i + 3 and text[stop] in _OCTAL:
                stop += 1
            out.append(int(text[i:stop], 8) & 0xFF)
            i = stop
        elif esc in ("x", "X") and i + 1 < end and text[i + 1] in _HEX:
            stop = i + 1
            while stop < end and stop < i + 3 and text[stop] in _HEX:
                stop += 1
            out.append(int(text[i + 1:stop], 16))
            i = stop
        elif esc in ("u", "U"):
            width = 4 if esc == "u" else 8
            digits = text[i + 1:i + 1 + width]
            if len(digits) != width or any(c not in _HEX for c in digits) or int(
                    digits, 16) > 0x10FFFF:
                report(line, col + (i - pos), "Expected four hex digits for \\u escape sequence."
                       if esc == "u" else "Expected eight hex digits up to 10ffff for \\U "
                       "escape sequence")
                i += 1
                continue
            out += chr(int(digits, 16)).encode("utf-8", "surrogatepass")
            i += 1 + width
        else:
            report(line, col + (i - pos), "Invalid escape sequence in string literal.")

