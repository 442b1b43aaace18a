"""What user-typed text may hold: one line of printable characters, of a sensible length.

Names travel into emails, logs, other people's screens and terminals. A newline there lets a name
pose as the rest of a message; control and format characters (NUL, escapes, bidirectional
overrides, zero-width joiners) hide or reorder what a reader sees; unpaired surrogates cannot even
be stored. So a name is refused unless every character is a letter, mark, number, punctuation,
symbol or an ordinary space.
"""

from __future__ import annotations

import unicodedata

from app.domain.errors import Code, Problem

# Unicode general categories allowed: Letters, Marks, Numbers, Punctuation, Symbols, and the
# space separator (Zs). Refused: Cc (controls, NUL, CR, LF), Cf (format: RTL override,
# zero-width), Cs (surrogates), Co (private use), Cn (unassigned), Zl/Zp (line, paragraph).
_ALLOWED = frozenset("LMNPS")


def is_storable(text: str) -> bool:
    """Whether text can be stored at all: no NUL character (PostgreSQL's text cannot hold one)
    and no unpaired surrogate (UTF-8 cannot encode one; Python joins valid pairs)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unprintable(text: str) -> str | None:
    """The first character of `text` that is not printable on one line, or None."""
    for char in text:
        category = unicodedata.category(char)
        if category[0] not in _ALLOWED and category != "Zs":
            return char
    return None


def one_line(
    value: str, field: str, limit: int, problems: list[Problem], *, required: bool = False
) -> str:
    """`value` trimmed; a problem for `field` unless it is one printable line of <= `limit`."""
    text = value.strip()
    if len(text) > limit:
        problems.append(Problem(Code.BAD_USER_INPUT, f"At most {limit} characters", (field,)))
    elif required and not text:
        problems.append(Problem(Code.BAD_USER_INPUT, "Must not be empty", (field,)))
    elif (char := unprintable(text)) is not None:
        problems.append(
            Problem(
                Code.BAD_USER_INPUT,
                f"Must be one line of printable text (found U+{ord(char):04X})",
                (field,),
            )
        )
    return text
