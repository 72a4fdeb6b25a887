"""Go's `path.Match`, as Docker's `reference` filter uses it: the matcher itself, and the
same language as a regular expression so that a listing can match in SQL.

Pure: no SQLAlchemy, no Typer.
"""

from __future__ import annotations

from catalog.errors import InvalidArgument

__all__ = ["BadPattern", "literal_prefix", "path_match", "path_pattern_regex"]


class BadPattern(InvalidArgument, ValueError):
    """Go's path.ErrBadPattern: the shell pattern is malformed."""

    def __init__(self) -> None:
        super().__init__("syntax error in pattern")


_STAR, _QUESTION, _BACKSLASH, _LBRACKET, _RBRACKET, _CARET, _DASH, _SLASH = b"*?\\[]^-/"
_RUNE_ERROR = 0xFFFD


def _utf8(s: str) -> bytes:
    # Go strings are bytes; a lone surrogate becomes 3 bytes that decode as errors, as in Go.
    return s.encode("utf-8", "surrogatepass")


def _decode_rune(s: bytes) -> tuple[int, int]:
    """Go's utf8.DecodeRune on a non-empty byte string: (rune, width), (RuneError, 1) if bad."""
    lead = s[0]
    if lead < 0x80:
        return lead, 1
    if 0xC2 <= lead <= 0xDF:
        width = 2
    elif 0xE0 <= lead <= 0xEF:
        width = 3
    elif 0xF0 <= lead <= 0xF4:
        width = 4
    else:
        return _RUNE_ERROR, 1
    try:
        # Python's strict decoder rejects overlong forms, surrogates and > U+10FFFF like Go.
        text = s[:width].decode("utf-8")
    except UnicodeDecodeError:
        return _RUNE_ERROR, 1
    return ord(text), width


def _scan_chunk(pattern: bytes) -> tuple[bool, bytes, bytes]:
    star = False
    while pattern and pattern[0] == _STAR:
        pattern = pattern[1:]
        star = True
    in_range = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == _BACKSLASH:
            # A trailing backslash is reported by _match_chunk.
            if i + 1 < len(pattern):
                i += 1
        elif c == _LBRACKET:
            in_range = True
        elif c == _RBRACKET:
            in_range = False
        elif c == _STAR and not in_range:
            return star, pattern[:i], pattern[i:]
        i += 1
    return star, pattern, b""


def _get_esc(chunk: bytes) -> tuple[int, bytes]:
    if not chunk or chunk[0] in (_DASH, _RBRACKET):
        raise BadPattern
    if chunk[0] == _BACKSLASH:
        chunk = chunk[1:]
        if not chunk:
            raise BadPattern
    rune, width = _decode_rune(chunk)
    if rune == _RUNE_ERROR and width == 1:
        raise BadPattern
    rest = chunk[width:]
    if not rest:
        raise BadPattern
    return rune, rest


def _match_chunk(chunk: bytes, s: bytes) -> bytes | None:
    """The rest of `s` after `chunk` matched its start, or None. Checks all of `chunk`."""
    # After a failure Go keeps walking the chunk only to report a malformed pattern.
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        c = chunk[0]
        if c == _LBRACKET:
            rune = 0
            if not failed:
                rune, width = _decode_rune(s)
                s = s[width:]
            chunk = chunk[1:]
            negated = False
            if chunk and chunk[0] == _CARET:
                negated = True
                chunk = chunk[1:]
            matched = False
            nrange = 0
            while True:
                if chunk and chunk[0] == _RBRACKET and nrange > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_esc(chunk)
                hi = lo
                if chunk[0] == _DASH:
                    hi, chunk = _get_esc(chunk[1:])
                if lo <= rune <= hi:
                    matched = True
                nrange += 1
            if matched == negated:
                failed = True
        elif c == _QUESTION:
            if not failed:
                if s[0] == _SLASH:
                    failed = True
                _, width = _decode_rune(s)
                s = s[width:]
            chunk = chunk[1:]
        else:
            if c == _BACKSLASH:
                chunk = chunk[1:]
                if not chunk:
                    raise BadPattern
            if not failed:
                if chunk[0] != s[0]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
    return None if failed else s


def path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: whether `name` matches the shell `pattern` as a whole.

    `*` and `?` never match `/`; `[...]`/`[^...]` classes, `\\` escapes. Works on UTF-8
    bytes as Go does. Raises BadPattern for a malformed pattern.
    """
    pat, s = _utf8(pattern), _utf8(name)
    while pat:
        star, chunk, pat = _scan_chunk(pat)
        if star and not chunk:
            # A trailing * matches the rest unless it has a /.
            return _SLASH not in s
        rest = _match_chunk(chunk, s)
        # The last chunk must consume the whole name, else a star may still do better.
        if rest is not None and (not rest or pat):
            s = rest
            continue
        if star:
            found = False
            i = 0
            while i < len(s) and s[i] != _SLASH:
                rest = _match_chunk(chunk, s[i + 1 :])
                i += 1
                if rest is not None:
                    if not pat and rest:
                        continue
                    s = rest
                    found = True
                    break
            if found:
                continue
        # Before reporting no match, check that the rest of the pattern is well-formed.
        while pat:
            _, chunk, pat = _scan_chunk(pat)
            _match_chunk(chunk, b"")
        return False
    return not s


# --- The same language as a regular expression ---


def _escape(char: str) -> str:
    # A backslash before a non-alphanumeric ASCII character means that character in both
    # Python's re and PostgreSQL's AREs; other characters stand for themselves.
    return "\\" + char if char.isascii() and not char.isalnum() else char


def _class_char(code: int) -> str:
    return _escape(chr(code))


def path_pattern_regex(pattern: str) -> str:
    """A regular expression, valid in Python and PostgreSQL, that matches exactly the
    ASCII strings Go's path.Match(pattern, s) accepts.

    Go matches each `*chunk` at its leftmost position and never backtracks; a regex would
    backtrack, which differs when a class can match `/`. So a star before a chunk C that
    is not the last becomes `(?:(?!C)[^/])*C`: skip non-slash characters only while C does
    not match, then C. Raises BadPattern for a malformed pattern (checked as Go does).
    """
    path_match(pattern, "")  # raises BadPattern, as matching anything would
    chunks = _split_chunks(pattern)
    parts = ["\\A"]
    for index, (star, atoms) in enumerate(chunks):
        chunk = "".join(atoms)
        last = index == len(chunks) - 1
        if star and not atoms:
            parts.append("[^/]*")
        elif star and not last:
            parts.append(f"(?:(?!{chunk})[^/])*{chunk}")
        elif star:
            parts.append(f"[^/]*{chunk}")
        else:
            parts.append(chunk)
    parts.append("\\Z")
    return "".join(parts)


def _split_chunks(pattern: str) -> list[tuple[bool, list[str]]]:
    """Go's scanChunk loop, with each chunk turned into regex atoms."""
    chunks: list[tuple[bool, list[str]]] = []
    i = 0
    while i < len(pattern):
        star = False
        while i < len(pattern) and pattern[i] == "*":
            star, i = True, i + 1
        atoms: list[str] = []
        while i < len(pattern) and pattern[i] != "*":
            c = pattern[i]
            if c == "\\":
                atoms.append(_escape(pattern[i + 1]))
                i += 2
            elif c == "?":
                atoms.append("[^/]")
                i += 1
            elif c == "[":
                atom, i = _class(pattern, i + 1)
                atoms.append(atom)
            else:
                atoms.append(_escape(c))
                i += 1
        chunks.append((star, atoms))
    if not chunks:
        chunks.append((False, []))
    return chunks


def _class(pattern: str, i: int) -> tuple[str, int]:
    negated = pattern[i] == "^"
    if negated:
        i += 1
    ranges: list[str] = []
    seen = 0
    while True:
        if pattern[i] == "]" and seen:
            i += 1
            break
        lo, i = _class_rune(pattern, i)
        hi = lo
        if pattern[i] == "-":
            hi, i = _class_rune(pattern, i + 1)
        if lo <= hi:  # Go: lo <= r <= hi, so an inverted range matches nothing
            ranges.append(_class_char(lo) if lo == hi else f"{_class_char(lo)}-{_class_char(hi)}")
        seen += 1
    if not ranges:
        # Nothing in the class can match: the class fails, or (negated) takes any character.
        return ("(?:[^/]|/)" if negated else "(?!x)x"), i
    return ("[^" if negated else "[") + "".join(ranges) + "]", i


def _class_rune(pattern: str, i: int) -> tuple[int, int]:
    if pattern[i] == "\\":
        i += 1
    return ord(pattern[i]), i + 1


def literal_prefix(pattern: str) -> str:
    """What every name `pattern` matches starts with: its characters before the first
    `*`, `?`, `[` or `\\` (a listing narrows the names it matches by it first)."""
    for index, char in enumerate(pattern):
        if char in "*?[\\":
            return pattern[:index]
    return pattern
