"""Ingest: export artefacts removed, footnotes kept aside, encodings and line endings
handled, long paragraphs split, pairs built per tier with stable ids and a leak-free split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.curate.ingest import (
    FileIngested,
    FileSkipped,
    IngestFinished,
    IngestStarted,
    IngestWarning,
    Piece,
    build_pairs,
    Budget,
    clean_markdown,
    clean_source_file,
    ingest,
    run_ingest,
    split_long_paragraph,
)
from engine.curate.pairs import PairFile, find_duplicates, load_pairs, validate
from engine.curate.tokens import word_counter

ESSAY = """\
# The Flood Step

*Four days of high water, and what it leaves behind*

Mar 3, 2024

![](https://cdn.example/images/step.jpg)

*The third step on Tuesday, going under.*

Everyone here has a flood mark.[^1] Mine is a pencil line on the cellar door, and it is
a plain one — a date and a height.

[Subscribe now](https://example.com/subscribe)

## The water

The river does not roar. It hisses, a long steady note you stop hearing after an hour.
{para2}

Share

{rest}

*Thanks for reading The Mending Hour! Subscribe for free to receive new posts and support my work.*

[^1]: The gauge at the weir updates every fifteen minutes. I checked it two hundred times.
    It told me nothing the step did not.
"""


def essay_text(paragraphs: int = 8, place: str = "the mill") -> str:
    para2 = "You learn what you keep by what you carry upstairs first. " * 3
    rest = "\n\n".join(
        f"Paragraph {i} is about {place}, the lane and the bread we baked when the power went. "
        f"It has its own detail number {i}, and it ends on the kettle." for i in range(3, paragraphs + 1)
    )
    return ESSAY.format(para2=para2, rest=rest)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


# Cleaning ----------------------------------------------------------------------------------------

def test_export_artefacts_are_removed_and_header_kept_aside():
    piece = clean_markdown(essay_text(), "2024-03-03-the-flood-step.md", "essays/2024-03-03-the-flood-step")
    assert piece.title == "The Flood Step"
    assert piece.subtitle == "Four days of high water, and what it leaves behind"
    assert piece.date == "Mar 3, 2024"
    text = piece.text
    for artefact in ("Subscribe", "Share", "Thanks for reading", "cdn.example", "going under", "Mar 3, 2024",
                     "Four days of high water"):
        assert artefact not in text
    assert piece.blocks[0].startswith("Everyone here has a flood mark. Mine is a pencil line")
    assert "cellar door, and it is a plain one — a date" in piece.blocks[0]  # hard wrap joined, dash kept
    assert piece.blocks[1] == "## The water"


def test_footnotes_are_extracted_not_inlined():
    piece = clean_markdown(essay_text(), "x.md")
    assert piece.footnotes == [
        ("1", "The gauge at the weir updates every fifteen minutes. I checked it two hundred times. "
              "It told me nothing the step did not.")
    ]
    assert "[^" not in piece.text
    assert "two hundred times" not in piece.text


def test_crlf_bom_and_smart_quotes():
    text = "\ufeff# Bread\r\n\r\nIt’s “plain” bread.\r\nStill warm.\r\n\r\nSecond  paragraph.\t\r\n"
    piece = clean_markdown(text, "bread.md")
    assert piece.title == "Bread"
    assert piece.blocks == ["It’s “plain” bread. Still warm.", "Second paragraph."]
    assert "\r" not in piece.text and "\ufeff" not in piece.text


@pytest.mark.parametrize("line", [
    "Share", "[Share](https://x/p?utm_source=share)", "[Share The Mending Hour](https://x)", "**Subscribe now**",
    "[Leave a comment](https://x/comments)", "Thanks for reading The Mending Hour! Subscribe for free to receive new posts.",
    "_Thanks for reading!_", "[Subscribe now](https://x/subscribe?utm_medium=web)",
])
def test_call_to_action_lines_are_artefacts(line):
    assert clean_markdown(f"# T\n\nFirst.\n\n{line}\n\nLast.", "t.md").blocks == ["First.", "Last."]


@pytest.mark.parametrize("line", ["Share the bread, she said.", "Subscribe to nothing you cannot cancel in person."])
def test_the_writers_own_lines_about_sharing_stay(line):
    assert line in clean_markdown(f"# T\n\nFirst.\n\n{line}\n", "t.md").blocks


def test_body_italics_are_kept_only_captions_go():
    text = "# T\n\nFirst paragraph here.\n\n*An italic line the writer meant.*\n\n![](x.jpg)\n*Caption.*\n\nLast."
    assert clean_markdown(text, "t.md").blocks == [
        "First paragraph here.", "*An italic line the writer meant.*", "Last.",
    ]


def test_a_huge_paragraph_is_split_at_sentences():
    sentences = [f"Sentence {i} says something plain about the river and the town." for i in range(60)]
    paragraph = " ".join(sentences)  # ~600 words, no breaks: an export that lost its paragraphs
    parts = split_long_paragraph(paragraph)
    assert 3 <= len(parts) <= 8
    assert " ".join(parts) == paragraph  # nothing lost or reordered
    assert all(part.endswith(".") for part in parts)  # cut only between sentences
    sizes = [len(part.split()) for part in parts]
    assert max(sizes) <= 220 and min(sizes) >= 60  # even, no stub paragraph
    assert split_long_paragraph("Short one. Two.") == ["Short one. Two."]
    piece = clean_markdown("# Long\n\n" + paragraph, "long.md")
    assert len(piece.blocks) == len(parts)


def test_note_or_essay_by_word_count():
    assert clean_markdown("# N\n\n" + "word " * 299, "n.md").kind == "note"
    assert clean_markdown("# E\n\n" + "word " * 300, "e.md").kind == "essay"


def test_clean_source_file_reads_cp1252(tmp_path):
    path = write(tmp_path / "fog.md", "# Fog\n\nThe fog’s back.\n".encode("cp1252"))
    piece = clean_source_file(path)
    assert (piece.title, piece.text, piece.source) == ("Fog", "The fog’s back.", "fog")


def test_title_falls_back_to_the_file_name():
    assert clean_markdown("Just a line of text.", "2024-05-01-the-swifts-are-back.md").title == "The swifts are back"


# Pairs ----------------------------------------------------------------------------------------

def test_tiers_of_an_essay_and_their_shapes():
    piece = clean_markdown(essay_text(12) + "\n" + "More words. " * 200, "2024-03-03-the-flood-step.md", "essays/flood")
    assert piece.kind == "essay"
    pairs = build_pairs(piece)
    by_tier: dict[str, list] = {}
    for pair in pairs:
        by_tier.setdefault(pair.tier, []).append(pair)
    assert set(by_tier) == {"thesis", "continuation", "paragraph"}
    thesis = by_tier["thesis"][0]
    assert thesis.id == "2024-03-03-the-flood-step-thesis"
    assert thesis.prompt == "Write an essay titled “The Flood Step” — four days of high water, and what it leaves behind."
    assert thesis.response.startswith("Everyone here has a flood mark.")
    continuation = by_tier["continuation"][0]
    assert "Everyone here has a flood mark." in continuation.prompt
    assert not continuation.response.startswith("Everyone")
    paragraphs = by_tier["paragraph"]
    assert [pair.id for pair in paragraphs][:2] == [
        "2024-03-03-the-flood-step-paragraph-01", "2024-03-03-the-flood-step-paragraph-02",
    ]
    assert len(paragraphs) >= 10  # the multiplier: about one pair per paragraph
    for pair in paragraphs:
        assert not pair.response.startswith("##")  # a heading is context, never a target
        assert pair.prompt.startswith("Write the next paragraph of the essay “The Flood Step”.")
    assert all(pair.source == "essays/flood" and pair.tags[0] == "essay" for pair in pairs)
    exact, near = find_duplicates(pairs)
    assert exact == [] and near == []


def test_a_pair_cut_at_the_budget_is_tagged_and_says_where():
    piece = clean_markdown(essay_text(12), "e.md", "e")
    pairs = {pair.tier: pair for pair in build_pairs(piece, budget=Budget(160, word_counter))}
    thesis = pairs["thesis"]
    assert thesis.tags == ["essay", "cut"]
    last_words = " ".join(thesis.response.split()[-6:])
    assert thesis.notes.startswith("cut at the token budget ") and f"after “…{last_words}”" in thesis.notes
    total = sum(len(block.split()) for block in piece.blocks if not block.startswith("#"))
    kept = sum(len(block.split()) for block in thesis.response.split("\n\n") if not block.startswith("#"))
    assert f"{total - kept} of {total} words left out" in thesis.notes
    whole = build_pairs(clean_markdown("# Short\n\nOne small paragraph of ten words or so, no more.\n", "s.md", "s"))
    assert whole[0].tags == ["note"] and whole[0].notes == ""  # nothing cut, nothing said


def test_ingest_from_outside_keeps_a_copy_in_data_sources(tmp_path, capsys):
    from engine.cli import main

    (tmp_path / "ws" / "data" / "sources").mkdir(parents=True)
    outside = tmp_path / "export" / "ferry.md"
    outside.parent.mkdir()
    outside.write_text("# The Ferry\n\n" + "The ferry runs when it runs, and you wait. " * 5 + "\n", encoding="utf-8")
    workspace = tmp_path / "ws"
    assert main(["-w", str(workspace), "ingest", str(outside), "--tokenizer", "none"]) == 0
    kept = workspace / "data" / "sources" / "ferry.md"
    assert kept.read_bytes() == outside.read_bytes()
    assert "copied 1 sources" in capsys.readouterr().out
    # A different file of the same name: refused without --force, nothing written; replaced with it.
    outside.write_text("# The Ferry\n\n" + "The ferry never came that winter at all. " * 5 + "\n", encoding="utf-8")
    pairs_before = (workspace / "data" / "pairs.jsonl").read_bytes()
    assert main(["-w", str(workspace), "ingest", str(outside), "--tokenizer", "none"]) == 2
    assert "already in the workspace with other text" in capsys.readouterr().err
    assert kept.read_text(encoding="utf-8").count("never came") == 0
    assert (workspace / "data" / "pairs.jsonl").read_bytes() == pairs_before
    assert main(["-w", str(workspace), "ingest", str(outside), "--tokenizer", "none", "--force"]) == 0
    assert kept.read_bytes() == outside.read_bytes()


def test_every_pair_fits_the_budget():
    piece = clean_markdown(essay_text(30), "e.md", "e")
    for budget_tokens in (120, 512):
        budget = Budget(budget_tokens, word_counter)
        pairs = build_pairs(piece, budget=budget)
        assert pairs
        for pair in pairs:
            assert word_counter(pair.prompt) + word_counter(pair.response) + 8 <= budget_tokens
            assert pair.response.rstrip().endswith((".", "!", "?", "…", "”"))  # cut at a sentence


def test_ingest_leaves_headroom_under_the_budget(sources):
    from engine.curate.ingest import BUDGET_HEADROOM

    result = run_ingest([sources], budget_tokens=200, counter=word_counter)
    longest = max(word_counter(pair.prompt) + word_counter(pair.response) + 8 for pair in result.pairs)
    assert longest <= int(200 * BUDGET_HEADROOM) < 200


def test_a_note_is_one_pair_titled():
    piece = clean_markdown("# Fog on the River\n\nThe fog sat on the river all morning.", "2024-11-01-fog.md", "notes/fog")
    [pair] = build_pairs(piece)
    assert pair.tier == "note" and pair.id == "2024-11-01-fog-note"
    assert pair.prompt == "Write a short note titled “Fog on the River”."
    assert pair.response == "The fog sat on the river all morning."
    assert build_pairs(piece, tiers=["thesis"]) == []


# The run --------------------------------------------------------------------------------------

@pytest.fixture
def sources(tmp_path) -> Path:
    root = tmp_path / "sources"
    for number in range(6):
        text = essay_text(12 + number, place=f"the {['mill', 'weir', 'ferry', 'church', 'school', 'bakery'][number]}")
        write(root / "essays" / f"2024-0{number + 1}-01-essay-{number}.md",
              text.replace("The Flood Step", f"Flood Step {number}").replace("Everyone", f"Essay {number}: everyone"))
    for number in range(10):
        write(root / "notes" / f"2024-02-{number + 10}-note-{number}.md",
              f"# Note {number}\n\nA short note, number {number}, about rain on the slipway and the ferry bell.\n")
    write(root / "notes" / "2024-03-01-crlf.md", "# Windows\r\n\r\nWritten on a laptop with CRLF endings, about frost and mending.\r\n")
    write(root / "notes" / "2024-03-02-cp1252.md",
          "# Fog\n\nThe fog’s back — “thick as porridge,” says Dell, about the river mist.\n".encode("cp1252"))
    write(root / "notes" / "2024-03-03-empty.md", "")
    write(root / "notes" / "2024-03-04-only-artefacts.md", "[Subscribe now](https://x)\n\nShare\n")
    write(root / "notes" / "ignored.png", b"\x89PNG")
    return root


def collect(generator):
    events = []
    while True:
        try:
            events.append(next(generator))
        except StopIteration as stop:
            return events, stop.value


def test_ingest_events_warnings_and_skips(sources):
    events, result = collect(ingest([sources], val_share=0.2, seed=0))
    assert isinstance(events[0], IngestStarted) and events[0].files == 20
    kinds = {Path(event.path).name: event.piece_kind for event in events if isinstance(event, FileIngested)}
    assert kinds["2024-01-01-essay-0.md"] == "essay" and kinds["2024-02-10-note-0.md"] == "note"
    assert isinstance(events[-1], IngestFinished)
    progress = [event for event in events if isinstance(event, FileIngested)]
    assert [event.index for event in progress] == sorted(event.index for event in progress)
    skipped = {Path(event.path).name: event.reason for event in events if isinstance(event, FileSkipped)}
    assert skipped == {
        "2024-03-03-empty.md": "empty file; skipped",
        "2024-03-04-only-artefacts.md": "no text left after removing export artefacts; skipped",
    }
    [encoding_warning] = [event for event in events if isinstance(event, IngestWarning) and "UTF-8" in event.message]
    assert encoding_warning.path.endswith("2024-03-02-cp1252.md")
    assert "Windows-1252" in str(encoding_warning)
    fog = next(pair for pair in result.pairs if pair.id == "2024-03-02-cp1252-note")
    assert fog.response == "The fog’s back — “thick as porridge,” says Dell, about the river mist."  # decoded right
    crlf = next(pair for pair in result.pairs if pair.id == "2024-03-01-crlf-note")
    assert "\r" not in crlf.response
    assert json.loads(json.dumps(events[-1].to_dict()))["event"] == "ingest-finished"
    assert events[-1].pairs == len(result.pairs)


def test_ingest_is_deterministic_and_never_leaks(sources):
    first = run_ingest([sources], val_share=0.2, seed=0)
    second = run_ingest([sources], val_share=0.2, seed=0)
    assert [pair.to_dict() for pair in first.pairs] == [pair.to_dict() for pair in second.pairs]
    assert len({pair.id for pair in first.pairs}) == len(first.pairs)
    splits: dict[str, set[str]] = {}
    for pair in first.pairs:
        splits.setdefault(pair.source, set()).add(pair.split)
    assert all(len(value) == 1 for value in splits.values())
    assert 0.1 < sum(pair.split == "val" for pair in first.pairs) / len(first.pairs) < 0.35
    # (The synthetic essays share template sentences, so near-duplicate warnings are fair here.)
    problems = validate(PairFile(path=Path("pairs.jsonl"), pairs=first.pairs))
    assert [problem for problem in problems if problem.severity == "error"] == []


def test_ingest_tier_choice_and_unknown_tier(sources):
    result = run_ingest([sources], tiers=["note"])
    assert {pair.tier for pair in result.pairs} == {"note"}
    with pytest.raises(ValueError, match="unknown tier"):
        run_ingest([sources], tiers=["sonnet"])


def test_short_piece_is_kept_with_a_warning(tmp_path):
    write(tmp_path / "tuesday.md", "# Tuesday\n\nRain. The gutter again.\n")
    events, result = collect(ingest([tmp_path]))
    assert [pair.response for pair in result.pairs] == ["Rain. The gutter again."]
    assert any(isinstance(event, IngestWarning) and "only 4 words" in event.message for event in events)


def test_piece_defaults():
    piece = Piece(path="p.md", source="p", title="T", blocks=["## Head", "one two three"])
    assert piece.words == 3 and piece.kind == "note"


def test_demo_corpus_ingests_cleanly(repo_root):
    essays = sorted((repo_root / "data" / "sources" / "essays").glob("*.md"))
    notes = sorted((repo_root / "data" / "sources" / "notes").glob("*.md"))
    tokenizer = repo_root / "data" / "models" / "demo-ar" / "tokenizer.json"
    if len(essays) < 12 or len(notes) < 60 or not tokenizer.exists():
        pytest.skip("the demo corpus or the demo tokenizer is not in this checkout")
    from engine.curate.tokens import token_counter

    counter = token_counter(tokenizer.parent)
    # What `voicebench ingest` does in the repo root: count with demo-ar's tokenizer, budget 512.
    result = run_ingest([repo_root / "data" / "sources"], val_share=0.15, seed=0, budget_tokens=512, counter=counter)
    kinds = [piece.kind for piece in result.pieces]
    assert kinds.count("essay") >= 12 and kinds.count("note") >= 59
    assert not [str(w) for w in result.warnings if "UTF-8" not in w.message and "words" not in w.message]
    for piece in result.pieces:
        for artefact in ("Subscribe now", "Thanks for reading", "](http", "[^"):
            assert artefact not in piece.text, (piece.path, artefact)
    assert len(result.pairs) >= 3 * len(result.pieces)
    budgets = {"demo-ar": 512, "demo-diffusion": 512}
    assert not validate(PairFile(path=Path("pairs.jsonl"), pairs=result.pairs), budgets=budgets, counter=counter)
    # The committed pairs fit the demo models as the tokenizer is now, and come from the same
    # sources and tiers. (Not compared line by line: rebuilding the demo models retrains the
    # tokenizer, which may move a sentence boundary; `voicebench ingest --force` refreshes them.)
    committed = load_pairs(repo_root / "data" / "pairs.jsonl")
    assert not committed.bad_lines
    assert not validate(committed, budgets=budgets, counter=counter)
    assert {(pair.source, pair.tier) for pair in committed.pairs} == {(pair.source, pair.tier) for pair in result.pairs}
