"""The automatic voice score as the app shows it: one result (Judge screen), and the score
beside her own verdict with their rank agreement (leaderboard, reading view).

Plain text and rich Text only; the numbers come from `engine.judge.voice` (a VoiceScored)
and `engine.judge.report.voice_agreement` (the report's "voice" section), so the app says
what `voicebench voice` and `voicebench report` say.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from engine.display import safe_text
from engine.judge.report import MIN_CONTESTANTS_FOR_AGREEMENT

NOT_SCORED = "not scored"
TOO_LITTLE = "too little text"
HUMAN_NAMES = {"rubric_voice": "rubric voice", "bt": "pairwise"}
READING = "0.5 = cannot be told from you, 1.0 = always can"


def _num(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def auc_text(auc: float | None, low: float | None, high: float | None) -> str:
    """`0.95 [0.87, 0.99]`."""
    return f"{auc:.2f} [{low:.2f}, {high:.2f}]"


def row_auc(row: dict[str, Any] | None) -> str:
    """A voice_agreement row (or a voice_scores row) as a cell: the AUC with its interval,
    "too little text", or NOT_SCORED."""
    if not row or (row.get("auc") is None and not row.get("status")):
        return NOT_SCORED
    if row.get("auc") is None:
        return TOO_LITTLE
    return auc_text(row["auc"], row["auc_low"], row["auc_high"])


def result_text(result: Any, name: str) -> Text:
    """A VoiceScored for the Judge screen: the score and interval, then its calibration."""
    name = safe_text(name)
    if result.status != "scored":
        return Text(f"{name}: no voice score — {result.message}", style="bold")
    same, shuffled = result.same_writer, result.shuffled
    text = Text()
    text.append(f"{name}: voice AUC {auc_text(result.auc, result.auc_low, result.auc_high)}", style="bold")
    text.append(f" ({READING})\n")
    text.append(f"calibration on your text: you vs you {auc_text(*same)}, shuffled {auc_text(*shuffled)} · "
                f"Burrows' Delta {_num(result.delta)} (yours {_num(result.delta_own)}) · "
                f"longest copy {result.copied_words} words · {result.seconds:.0f} s", style="dim")
    if result.message:
        text.append(f"\nnote: {result.message}", style="dim")
    return text


def agreement_lines(section: dict[str, Any] | None, names: dict[str, str]) -> Text:
    """Spearman rank agreement of the voice score with each human verdict, and every
    contestant the two rank two or more places apart (a disagreement is shown, not hidden)."""
    text = Text()
    agreement = (section or {}).get("agreement", {})
    if not agreement or not any(row["auc"] is not None for row in section["rows"]):
        text.append("Rank agreement: – (no voice scores yet: ctrl+s on the Judge screen, or `voicebench voice`)",
                    style="dim")
        return text
    for number, (human, entry) in enumerate(agreement.items()):
        if number:
            text.append("\n")
        label = f"Voice score vs {HUMAN_NAMES[human]}: "
        if entry["spearman"] is None:
            text.append(label + f"– (rank agreement needs {MIN_CONTESTANTS_FOR_AGREEMENT} contestants with both; "
                                f"{entry['contestants']} {'has' if entry['contestants'] == 1 else 'have'})", style="dim")
            continue
        text.append(label)
        rho = entry["spearman"]
        text.append(f"Spearman {rho:.2f}", style="bold" if rho >= 0.5 else "bold yellow")
        text.append(f" over {entry['contestants']} contestants")
        if rho < 0.5 and not entry["disagreements"]:
            text.append(" — the two orders disagree more than they agree", style="yellow")
        for item in entry["disagreements"]:
            name = safe_text(names.get(item["label"], item["label"]))
            text.append(f"\n  ⚠ {name}: #{item['voice_rank']} by voice score, #{item['human_rank']} by "
                        f"{HUMAN_NAMES[human]}", style="yellow")
    return text
