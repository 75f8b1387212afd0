"""The .proto tokenizer: identifiers, numbers, strings and symbols, with the
line and column of each token as protoc counts them (0-based internally,
a tab advancing the column to the next multiple of 8; errors print both
1-based).

Comments of both kinds (``//`` to the end of the line, ``/* ... */``) are
skipped. Schemas are trusted input, but a malformed one still ends in a
:class:`~fastnet.errors.ProtoSchemaError` naming the position, never an
IndexError.
"""
from __future__ import annotations

from dataclasses import dataclass

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


class LexError(Exception):
    """Raised inside the tokenizer; the parser turns it into a positioned error."""

    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.col = col
        self.message = message


def tokenize(text: str) -> list[Token]:
    """Every token of ``text``, ending with one END token."""
    tokens: list[Token] = []
    pos, end = 0, len(text)
    line = col = 0

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
                advance(end - pos)
                raise LexError(line, col, "End-of-file inside block comment.")
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
            stop, kind, value = _number(text, pos, start_line, start_col)
            tokens.append(Token(kind, text[pos:stop], start_line, start_col, value))
            advance(stop - pos)
        elif ch in "\"'":
            stop, value = _string(text, pos, start_line, start_col)
            tokens.append(Token(STRING, text[pos:stop], start_line, start_col, value))
            advance(stop - pos)
        else:
            tokens.append(Token(SYMBOL, ch, start_line, start_col))
            advance(1)
    tokens.append(Token(END, "", line, col))
    return tokens


def _number(text: str, pos: int, line: int, col: int) -> tuple[int, str, object]:
    end = len(text)
    stop = pos
    value: object
    if text.startswith(("0x", "0X"), pos):
        stop = pos + 2
        while stop < end and text[stop] in _HEX:
            stop += 1
        if stop == pos + 2:
            raise LexError(line, col, '"0x" must be followed by hex digits.')
        kind, value = INT, int(text[pos + 2:stop], 16)
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
                raise LexError(line, col, '"e" must be followed by exponent.')
        literal = text[pos:stop]
        if stop < end and text[stop] in "fF" and is_float:
            stop += 1
        if is_float:
            kind, value = FLOAT, float(literal)
        elif len(literal) > 1 and literal[0] == "0":
            if any(c not in _OCTAL for c in literal):
                raise LexError(line, col, "Numbers starting with leading zero must be in octal.")
            kind, value = INT, int(literal, 8)
        else:
            kind, value = INT, int(literal)
    if stop < end and text[stop] in _IDENT_CHARS:
        raise LexError(line, col + (stop - pos), "Need space between number and identifier.")
    return stop, kind, value


def _string(text: str, pos: int, line: int, col: int) -> tuple[int, bytes]:
    quote = text[pos]
    out = bytearray()
    i, end = pos + 1, len(text)
    while True:
        if i >= end or text[i] == "\n":
            newline_col = col + len(text[pos:i].expandtabs(8))
            raise LexError(line, newline_col,
                           'Multiline strings are not allowed. Did you miss a "?.')
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
            if len(digits) != width or any(c not in _HEX for c in digits):
                raise LexError(line, col, "Expected four hex digits for \\u escape sequence."
                               if esc == "u" else "Expected eight hex digits up to 10ffff "
                               "for \\U escape sequence")
            out += chr(int(digits, 16)).encode("utf-8", "surrogatepass")
            i += 1 + width
        else:
            raise LexError(line, col, "Invalid escape sequence in string literal.")

