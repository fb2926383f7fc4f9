"""`NumberInput`: the one rule for numeric fields in every form.

Focusing a numeric field (tab, or `.focus()` from code) selects its whole value, shown
highlighted, so the first digit typed replaces it: tab into "60", type 30, get 30 — never
6030. Any cursor key (left, right, home, end) drops the selection to edit in place, and a
mouse click puts the cursor where it lands. Text fields (labels, lists of names, notes)
keep Textual's `select_on_focus=False` in our forms: tabbing into them never arms a
silent replace-all.

    NumberInput("60", integer=True, id="train-max_steps", compact=True)
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Input


class NumberInput(Input):
    """An Input for integers (`integer=True`) or decimals whose value is selected on focus."""

    DEFAULT_CSS = """
    NumberInput:focus > .input--selection {
        text-style: reverse;
    }
    """

    def __init__(self, value: str | None = None, *, integer: bool = True, **kwargs: Any) -> None:
        kwargs.pop("select_on_focus", None)
        kwargs.pop("type", None)
        super().__init__(value, type="integer" if integer else "number", select_on_focus=True, **kwargs)
