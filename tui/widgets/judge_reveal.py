"""The reveal table shown when a session ends: each item's source next to what the rater
said. Only `BlindSession.end()`/`reveal()` output reaches it, so it appears only after
the session is closed."""

from __future__ import annotations

from textual.widgets import DataTable

from engine.display import safe_text
from engine.judge.session import RevealedItem


class RevealTable(DataTable):
    """One row per item, in the order the rater saw them."""

    def show(self, revealed: list[RevealedItem], criteria: list[str], names: dict[str, str] | None = None) -> None:
        """`names`: how each label reads (`demo-ar lora #3 @ step 20`); labels as stored otherwise."""
        names = names or {}
        self.clear(columns=True)
        pairwise = any(item.left_label is not None for item in revealed)
        who = ["left", "right", "choice"] if pairwise else ["written by", *criteria, "flags"]
        self.add_columns("#", "canary", *who, "repeat of", "note")
        for item in revealed:
            if pairwise:
                cells = [names.get(item.left_label, item.left_label or ""), names.get(item.right_label, item.right_label or ""),
                         ", ".join(f"{k}: {v}" for k, v in sorted(item.choices.items())) or item.status]
            else:
                cells = [names.get(item.label, item.label or ""), *[str(item.scores.get(name, "·")) for name in criteria],
                         ", ".join(item.flags)]
            repeat = "" if item.repeat_of_position is None else f"#{item.repeat_of_position + 1}"
            self.add_row(str(item.position + 1), *map(safe_text, (item.canary_id or "", *cells, repeat, item.note or "")))
