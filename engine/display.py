"""Untrusted text made safe to show on a terminal: `safe_text(s)`.

Pairs, sources, generations, labels and notes are text anyone may have written; a terminal
obeys control characters inside them (an OSC sequence retitles the window, a CSI one clears
the screen or moves the cursor, a bare carriage return overwrites the line). Every printer
and widget that shows such text passes it through `safe_text` first. The rule:

- tab and newline stay as they are;
- every other C0 control (U+0000–U+001F), DEL (U+007F) and every C1 control
  (U+0080–U+009F) is shown as a visible backslash escape: ESC becomes `\\x1b`, BEL `\\x07`,
  CSI (U+009B) `\\x9b`. Because ESC itself is shown, a whole escape sequence (CSI, OSC with
  a BEL or ST terminator, …) appears as harmless text: `\\x1b[2J`, `\\x1b]0;title\\x07`;
- a lone surrogate (undecodable bytes kept with surrogateescape, or "\\ud800" from JSON) is
  shown as the replacement character U+FFFD.

Nothing else changes, so already safe text comes back identical. This module imports nothing
from the UI; the app (tui/) and the CLI both use it.

An editor cannot change what it edits, and its cursor arithmetic counts characters, so it
draws with `one_for_one(s)` instead: every unsafe character becomes one visible character
(C0 and DEL their Unicode control pictures, ␛ for ESC; C1 and lone surrogates U+FFFD), in
what is painted only, never in the text that is saved.
"""

from __future__ import annotations

import re

_KEEP = {"\t", "\n"}
_CONTROLS = [chr(code) for code in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)) if chr(code) not in _KEEP]
_VISIBLE = str.maketrans({char: f"\\x{ord(char):02x}" for char in _CONTROLS})
_UNSAFE = re.compile("[" + "".join(re.escape(char) for char in _CONTROLS) + "\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"
# C0 U+0000–U+001F → U+2400–U+241F, DEL → U+2421; C1 has no pictures.
_PICTURES = str.maketrans({char: (chr(0x2400 + ord(char)) if ord(char) < 0x20 else "\u2421" if char == "\x7f"
                                  else REPLACEMENT) for char in _CONTROLS})


def safe_text(text: str) -> str:
    """`text` with control characters shown as escapes and lone surrogates as U+FFFD (see above)."""
    if not isinstance(text, str):
        text = str(text)
    if _UNSAFE.search(text) is None:  # the common case: nothing to change
        return text
    return _SURROGATE.sub(REPLACEMENT, text).translate(_VISIBLE)


def one_for_one(text: str) -> str:
    """`text` with each unsafe character replaced by one visible character (see above)."""
    if _UNSAFE.search(text) is None:
        return text
    return _SURROGATE.sub(REPLACEMENT, text).translate(_PICTURES)


_JSON_UNSAFE = re.compile("[\x7f-\x9f\ud800-\udfff\u2028\u2029]")


def terminal_json(value: object, **options: object) -> str:
    """`json.dumps(value, ensure_ascii=False)` that is also safe on a terminal: C0 controls are
    escaped by JSON itself; DEL, C1 controls and lone surrogates (which JSON leaves raw, and
    which cannot even be encoded for output) become \\uXXXX escapes. The same JSON value."""
    import json

    text = json.dumps(value, ensure_ascii=False, **options)  # type: ignore[arg-type]
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
