"""A small, fixed workspace for the Pairs screen tests: a dozen pairs with known problems,
two source files for ingest, and a word-level tokenizer so token counts are exact and fast.

Never the repo's data/: every test gets its own copy in tmp_path.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.workspace import Workspace
from tests.tui.waiting import workers_done

RIVER = "The river keeps its own time, and you learn to keep it with it — slowly, then all at once."
BREAD = "Bread asks for patience. You cannot hurry it, and it knows when you try."

# (id, prompt, response, source, tier, split, tags, notes)
PAIRS = [
    ("mending-thesis", "Write an essay titled “On Mending”.", "A patched coat is a record of winters. " * 6,
     "essays/2024-03-02-on-mending", "thesis", "train", ["repair"], ""),
    ("mending-continuation", "Continue: A patched coat is a record of winters.", "Every stitch says someone stayed.",
     "essays/2024-03-02-on-mending", "continuation", "train", ["repair"], ""),
    ("river-thesis", "Write an essay titled “The River in March”.", RIVER * 3,
     "essays/2024-04-11-river-in-march", "thesis", "train", ["river"], "good opening"),
    ("river-paragraph-01", "Continue the essay: The ice went out on a Tuesday.", RIVER,
     "essays/2024-04-11-river-in-march", "paragraph", "val", ["river"], ""),
    ("bread-note", "Write a short note about bread.", BREAD * 2,
     "notes/2024-05-01-bread", "note", "train", ["bread"], ""),
    ("library-note", "Write a short note about the library.", "The library smells of radiators and rain.",
     "notes/2024-05-09-library", "note", "val", [], ""),
    ("walking-note", "Write a short note about walking.", "",
     "notes/2024-05-12-walking", "note", "train", [], "response still to write"),
    ("letters-note", "Write a short note about letters.", "A letter is a slow kind of company.",
     "notes/2024-06-01-letters", "note", "train", ["letters"], ""),
    ("letters-note", "Write a short note about letters, again.", "Nobody writes back fast, and that is the point.",
     "notes/2024-06-02-letters-again", "note", "train", [], ""),
    ("weather-note", "Write a short note about weather.", "Weather is the town’s one shared opinion.",
     "notes/2024-06-10-weather", "note", "train", ["weather"], ""),
    ("hands-note", "Write a short note about work with hands.", "Hands remember what the head forgets.",
     "notes/2024-06-20-hands", "note", "train", [], ""),
]
BAD_LINE = '{"id": "broken", "prompt": "unterminated'
BAD_LINE_NUMBER = 4  # inserted as the 4th line of the file

SOURCES = {
    "notes/2024-07-01-ferry.md": "# The Ferry\n\nThe ferry runs when it runs. You wait, and the waiting is the trip.\n",
    "notes/2024-07-02-kettle.md": "# Kettle\n\nThe kettle is the first voice in the house. It does not mind being ignored.\n",
}


def pairs_text() -> str:
    lines = [
        json.dumps({"id": pair_id, "prompt": prompt, "response": response.strip(), "source": source,
                    "tier": tier, "split": split, "tags": tags, "notes": notes}, ensure_ascii=False)
        for pair_id, prompt, response, source, tier, split, tags, notes in PAIRS
    ]
    lines.insert(BAD_LINE_NUMBER - 1, BAD_LINE)
    return "".join(line + "\n" for line in lines)


def write_word_tokenizer(folder: Path) -> None:
    """A tokenizer.json that splits on words and punctuation (one token each): counts are
    exact, deterministic, and need no training or transformers import."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))


def make_workspace(root: Path, *, budget: int = 40) -> Workspace:
    """The fixed workspace in `root` (created). `budget` is demo-ar's token budget, small so
    that one pair is over it."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "pairs.jsonl").write_text(pairs_text(), encoding="utf-8")
    for name, text in SOURCES.items():
        path = root / "data" / "sources" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    write_word_tokenizer(root / "data" / "models" / "demo-ar")
    (root / "voicebench.toml").write_text(f"[budgets]\ndemo-ar = {budget}\n", encoding="utf-8")
    return Workspace.open(root)


async def settle(pilot, rounds: int = 3) -> None:
    """Let timers fire and workers finish, then let their messages be handled. A screen
    with a `busy` property (the Pairs screen) is also waited for: its validation starts
    from a debounce timer, so there can be a moment with work due but no worker yet."""
    app = pilot.app
    for _ in range(rounds):
        await pilot.pause()
        for _attempt in range(500):
            if any(not worker.is_finished for worker in app.workers):
                await workers_done(app)
            elif getattr(app.screen, "busy", False):
                await pilot.pause(0.01)  # a debounce timer is about to start the next worker
            else:
                break
            await pilot.pause()
    await pilot.pause()
    await pilot.pause()
