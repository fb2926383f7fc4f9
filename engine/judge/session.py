"""Blind rating sessions: the engine behind the Judge screen.

The screen never sees who wrote what. It works through this API only:

    from engine.judge import session as judging
    picks = judging.contestants(db)                    # labels + counts, for the picker
    session_id = judging.build_session(db, labels=["demo-ar", "demo-ar+run-1/checkpoint-20"],
                                       mode="rubric", rater="wren")   # or mode="pairwise"
    blind = judging.BlindSession(db, session_id)       # reopen the same way after a crash
    item = blind.current()                              # BlindItem or None at the end
    blind.rate("voice", 4); blind.toggle_flag("degenerate"); blind.set_note("…")
    blind.choose("left")                                # pairwise; choose("tie", "voice")
    blind.next(); blind.prev(); blind.skip(); blind.goto(7)
    reveal = blind.end()                                # -> list[RevealedItem]
    judging.identifying_strings(db, session_id)         # what tests scan the screen for

- `BlindItem` carries only what a rater may see: an opaque item id, position/total, the
  prompt, the output text (or left/right texts) and the rater's own answers so far. No
  model name, run id, path, seed, timing or token count — a test checks its fields.
- Order is shuffled with `sessions.shuffle_seed` (stored), so a session can be rebuilt
  and audited. About `repeat_share` (10%) of items come back later in the session,
  unannounced and indistinguishable from new ones; the pairs feed test–retest agreement.
  In pairwise mode a repeat re-draws left/right, so side preference cannot carry it.
- Every call that changes something is one committed write (driver autocommit or one
  `db.atomic()`); killing the process loses at most the call in flight. The cursor is
  stored too, so reopening resumes where the rater was.
- `end()` stamps `ended_at` and returns the reveal; `reveal()` refuses before that.
- Keep one `BlindSession` object per session at a time (it caches the cursor); make it
  in the thread that owns the connection.

Pairwise items show two outputs for the same canary version; `choose(winner,
criterion=None)` records "left" | "right" | "tie" overall (criterion None) or for one
criterion, replacing an earlier choice for the same item and criterion.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
import secrets
from typing import Any

from sqlite_utils import Database

from engine.judge.store import now

MODES = ("rubric", "pairwise")
WINNERS = ("left", "right", "tie")
DEFAULT_REPEAT_SHARE = 0.10


class SessionError(ValueError):
    """A session cannot be built or an action is invalid; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class ContestantSummary:
    """One model/run/checkpoint the picker can offer (identities are fine before a session)."""

    label: str
    generations: int
    canaries: int
    run_id: str | None
    checkpoint: str | None
    checkpoint_step: int | None = None
    name: str = ""  # how it reads: `demo-ar lora #3 @ step 20` (engine.judge.names)


@dataclasses.dataclass(frozen=True)
class BlindItem:
    """What the Judge screen may show. Nothing here identifies the source."""

    item_id: int  # opaque handle for this session's item
    position: int  # 0-based place in the session
    total: int
    mode: str  # "rubric" | "pairwise"
    prompt: str
    text: str | None  # rubric mode: the output
    left_text: str | None  # pairwise mode
    right_text: str | None
    scores: dict[str, int]  # criterion name -> score given so far (rubric mode)
    flags: tuple[str, ...]  # flag names set so far
    note: str
    choices: dict[str, str]  # pairwise: "overall" or criterion name -> "left"|"right"|"tie"
    status: str  # "pending" | "done" | "skipped"


@dataclasses.dataclass(frozen=True)
class RevealedItem:
    """One item after the session ended: who wrote it and what the rater said."""

    position: int
    canary_id: str | None
    label: str | None  # rubric mode
    left_label: str | None  # pairwise mode
    right_label: str | None
    repeat_of_position: int | None
    scores: dict[str, int]
    flags: tuple[str, ...]
    note: str
    choices: dict[str, str]
    status: str


# Building ----------------------------------------------------------------------------------
def contestants(db: Database, names: dict[str, str] | None = None) -> list[ContestantSummary]:
    """Everything that has canary outputs, for the session picker (`names`: run names, see
    engine.judge.names.run_names; read from the store when not given)."""
    from engine.judge.names import display_name, run_names

    names = run_names(db) if names is None else names
    rows = db.query(
        "select label, count(*) as generations, count(distinct canary_id) as canaries, "
        "max(run_id) as run_id, max(checkpoint) as checkpoint, max(checkpoint_step) as checkpoint_step "
        "from generations where canary_id is not null group by label order by min(id)"
    )
    return [ContestantSummary(**row, name=display_name(row["label"], row["run_id"], row["checkpoint_step"], names))
            for row in rows]


def _latest_generations(db: Database, labels: list[str] | None, canary_ids: list[str] | None) -> list[dict[str, Any]]:
    """The newest generation per (label, canary version) among the chosen ones."""
    sql = ("select g.id, g.label, g.canary_id as canary_row, c.canary_id from generations g "
           "join canaries c on c.id = g.canary_id where g.id in ("
           "select max(id) from generations where canary_id is not null group by label, canary_id)")
    params: list[Any] = []
    if labels:
        sql += f" and g.label in ({','.join('?' * len(labels))})"
        params += labels
    if canary_ids:
        sql += f" and c.canary_id in ({','.join('?' * len(canary_ids))})"
        params += canary_ids
    return list(db.query(sql + " order by g.id", params))


def _with_repeats(order: list[Any], share: float, rng: random.Random) -> list[tuple[Any, int | None]]:
    """Insert ~share·n repeats, each at least a few items after its original.

    Returns (entry, index of the original in the returned list or None).
    """
    count = round(len(order) * share)
    if share > 0 and count == 0 and len(order) >= 5:
        count = 1  # a short session still gets one repeat to measure anything
    gap = max(2, len(order) // 4)  # far enough that the rater does not just remember it
    eligible = range(max(0, len(order) - gap))  # originals late in the list have no room after
    items: list[list[Any]] = [[entry, None] for entry in order]  # [entry, original's slot or None]
    chosen = [items[index] for index in rng.sample(eligible, min(count, len(eligible)))]

    def index_of(slot: list[Any]) -> int:
        return next(i for i, candidate in enumerate(items) if candidate is slot)

    for original in chosen:
        earliest = min(index_of(original) + gap + 1, len(items))
        items.insert(rng.randint(earliest, len(items)), [original[0], original])
    return [(entry, None if original is None else index_of(original)) for entry, original in items]


def build_session(
    db: Database,
    *,
    labels: list[str] | None = None,
    canary_ids: list[str] | None = None,
    mode: str = "rubric",
    rater: str = "",
    seed: int | None = None,
    repeat_share: float = DEFAULT_REPEAT_SHARE,
    max_items: int | None = None,
) -> int:
    """Create a shuffled blind session over the chosen contestants and canaries."""
    if mode not in MODES:
        raise SessionError(f"mode must be one of {MODES}, got {mode!r}")
    if not 0 <= repeat_share < 1:
        raise SessionError(f"repeat_share must be in [0, 1), got {repeat_share}")
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    rng = random.Random(seed)
    generations = _latest_generations(db, labels, canary_ids)
    if mode == "rubric":
        order: list[Any] = [(row["id"], None, row["canary_row"]) for row in generations]
    else:
        by_canary: dict[int, list[dict[str, Any]]] = {}
        for row in generations:
            by_canary.setdefault(row["canary_row"], []).append(row)
        order = [(a["id"], b["id"], canary_row) for canary_row, rows in by_canary.items()
                 for a, b in itertools.combinations(rows, 2)]
    if not order:
        what = "two contestants that answered the same canary" if mode == "pairwise" else "canary outputs"
        raise SessionError(f"nothing to rate: no {what} for this choice. Run `voicebench canary --model …` first.")
    rng.shuffle(order)
    if max_items:
        order = order[:max_items]
    planned = _with_repeats(order, repeat_share, rng)
    with db.atomic():
        session_id = db["sessions"].insert({
            "rater": rater, "mode": mode, "shuffle_seed": seed, "repeat_share": repeat_share,
            "cursor": 0, "started_at": now(),
        }).last_pk
        item_ids: list[int] = []
        for position, ((first, second, canary_row), original) in enumerate(planned):
            left, right = first, second
            if second is not None and rng.random() < 0.5:
                left, right = second, first  # left/right drawn per item, repeats included
            item_ids.append(db["session_items"].insert({
                "session_id": session_id, "position": position, "generation_id": left,
                "right_generation_id": right, "canary_id": canary_row,
                "repeat_of_item_id": item_ids[original] if original is not None else None,
                "status": "pending",
            }).last_pk)
    return session_id


def identifying_strings(db: Database, session_id: int) -> set[str]:
    """Everything that would give a source away if it reached the screen during this
    session: labels, model names and paths, run ids, checkpoints and adapter paths of the
    generations it shows. The Judge screen's tests scan rendered screens for these."""
    found: set[str] = set()
    for row in db.query(
            "select g.label, g.run_id, g.checkpoint, g.adapter_path, m.name, m.path from generations g "
            "join models m on m.id = g.model_id join session_items i "
            "on g.id in (i.generation_id, i.right_generation_id) where i.session_id = ?", [session_id]):
        found.update(value for value in row.values() if value)
    return found


def open_sessions(db: Database) -> list[dict[str, Any]]:
    """Sessions not yet ended, newest first: id, rater, mode, started_at, done, total."""
    return list(db.query(
        "select s.id, s.rater, s.mode, s.started_at, "
        "sum(i.status != 'pending') as done, count(i.id) as total from sessions s "
        "join session_items i on i.session_id = s.id where s.ended_at is null "
        "group by s.id order by s.id desc"))


# Rating ------------------------------------------------------------------------------------
class BlindSession:
    """One rater working through one session; see the module docstring for the API."""

    def __init__(self, db: Database, session_id: int):
        row = next(db.query("select * from sessions where id = ?", [session_id]), None)
        if row is None:
            raise SessionError(f"no session {session_id} in the store")
        self.db = db
        self.session_id = session_id
        self.mode: str = row["mode"]
        self.rater: str = row["rater"] or ""
        self.total: int = db["session_items"].count_where("session_id = ?", [session_id])
        # This object is the session's only writer while open, so cursor and ended state
        # are kept here as well as in the store (saving two queries per key press).
        self._cursor: int = row["cursor"]
        self._ended: bool = row["ended_at"] is not None
        self._load_rubric()

    def _load_rubric(self) -> None:
        self._criterion_ids = {r["name"]: r["id"] for r in self.db.query("select id, name from criteria")}
        self._criterion_names = {v: k for k, v in self._criterion_ids.items()}
        self._flag_names = {r["name"] for r in self.db.query("select name from flags")}

    # State ---------------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def cursor(self) -> int:
        return self._cursor

    def progress(self) -> dict[str, int]:
        """Counts of done, skipped and pending items (safe to show: no identities)."""
        counts = {"done": 0, "skipped": 0, "pending": 0}
        for row in self.db.query("select status, count(*) as n from session_items where session_id = ? group by status",
                                 [self.session_id]):
            counts[row["status"]] = row["n"]
        return {**counts, "total": self.total, "position": self.cursor}

    def _item_row(self, position: int) -> dict[str, Any] | None:
        return next(self.db.query("select * from session_items where session_id = ? and position = ?",
                                  [self.session_id, position]), None)

    def current(self) -> BlindItem | None:
        """The item under the cursor, or None when the cursor is past the last one."""
        row = self._item_row(self.cursor)
        return None if row is None else self._blind(row)

    def _blind(self, row: dict[str, Any]) -> BlindItem:
        texts = {r["id"]: r for r in self.db.query(
            "select id, prompt, text from generations where id in (?, ?)",
            [row["generation_id"], row["right_generation_id"]])}
        first = texts[row["generation_id"]]
        rating = next(self.db.query("select id, flags_json, note from ratings where item_id = ?", [row["id"]]), None)
        scores: dict[str, int] = {}
        if rating:
            for score in self.db.query("select criterion_id, score from rating_scores where rating_id = ?", [rating["id"]]):
                if score["criterion_id"] not in self._criterion_names:
                    self._load_rubric()  # a criterion was added in the rubric editor mid-session
                scores[self._criterion_names.get(score["criterion_id"], str(score["criterion_id"]))] = score["score"]
        choices = {self._criterion_names.get(c["criterion_id"], "overall") if c["criterion_id"] else "overall": c["winner"]
                   for c in self.db.query("select criterion_id, winner from comparisons where item_id = ?", [row["id"]])}
        pairwise = row["right_generation_id"] is not None
        return BlindItem(
            item_id=row["id"], position=row["position"], total=self.total, mode=self.mode,
            prompt=first["prompt"], text=None if pairwise else first["text"],
            left_text=first["text"] if pairwise else None,
            right_text=texts[row["right_generation_id"]]["text"] if pairwise else None,
            scores=scores, flags=tuple(json.loads(rating["flags_json"] or "[]")) if rating else (),
            note=(rating["note"] or "") if rating else "", choices=choices, status=row["status"],
        )

    # Navigation (each move is committed, so a reopened session resumes here) -------------
    def goto(self, position: int) -> BlindItem | None:
        position = max(0, min(position, self.total))  # total = "past the end"
        self._check_open()
        self.db.execute("update sessions set cursor = ? where id = ?", [position, self.session_id])
        self._cursor = position
        return self.current()

    def next(self) -> BlindItem | None:
        return self.goto(self.cursor + 1)

    def prev(self) -> BlindItem | None:
        return self.goto(self.cursor - 1)

    def skip(self) -> BlindItem | None:
        """Mark the current item skipped (unless already answered) and move on."""
        row = self._current_row()
        self.db.execute("update session_items set status = 'skipped' where id = ? and status = 'pending'", [row["id"]])
        return self.next()

    def next_pending(self) -> BlindItem | None:
        """Jump to the first pending item after the cursor, wrapping round; None when none."""
        row = next(self.db.query(
            "select position from session_items where session_id = ? and status = 'pending' "
            "order by position <= ?, position limit 1", [self.session_id, self.cursor]), None)
        return None if row is None else self.goto(row["position"])

    # Answers -------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.ended:
            raise SessionError(f"session {self.session_id} has ended; start a new session to rate more")

    def _current_row(self) -> dict[str, Any]:
        self._check_open()
        row = self._item_row(self.cursor)
        if row is None:
            raise SessionError("no item under the cursor (past the last item); go back or end the session")
        return row

    def _ensure_rating(self, row: dict[str, Any]) -> int:
        self.db.execute(
            "insert into ratings (session_id, item_id, generation_id, rater, flags_json, note, "
            "repeat_of_item_id, rated_at) values (?, ?, ?, ?, '[]', '', ?, ?) "
            "on conflict(item_id) do update set rated_at = excluded.rated_at",
            [self.session_id, row["id"], row["generation_id"], self.rater, row["repeat_of_item_id"], now()])
        return next(self.db.query("select id from ratings where item_id = ?", [row["id"]]))["id"]

    def rate(self, criterion: str, score: int) -> BlindItem:
        """Score one criterion of the current (rubric) item; replaces an earlier score."""
        row = self._current_row()
        if self.mode != "rubric":
            raise SessionError("this is a pairwise session; use choose('left'|'right'|'tie')")
        criterion_row = next(self.db.query("select * from criteria where name = ?", [criterion]), None)
        if criterion_row is None:
            raise SessionError(f"no criterion named {criterion!r}; add it in the rubric editor first")
        if criterion_row["retired"]:
            raise SessionError(f"criterion {criterion!r} is retired; restore it in the rubric editor to rate it")
        if not criterion_row["scale_min"] <= score <= criterion_row["scale_max"]:
            raise SessionError(f"{criterion} takes scores {criterion_row['scale_min']}–{criterion_row['scale_max']}, got {score}")
        with self.db.atomic():
            rating_id = self._ensure_rating(row)
            self.db.execute(
                "insert into rating_scores (rating_id, criterion_id, score) values (?, ?, ?) "
                "on conflict(rating_id, criterion_id) do update set score = excluded.score",
                [rating_id, criterion_row["id"], score])
            self._update_status(row["id"], rating_id)
        return self.current()

    def _update_status(self, item_id: int, rating_id: int) -> None:
        """An item is done once every active criterion has a score."""
        missing = next(self.db.query(
            "select count(*) as n from criteria where retired = 0 and id not in "
            "(select criterion_id from rating_scores where rating_id = ?)", [rating_id]))["n"]
        if missing == 0:
            self.db.execute("update session_items set status = 'done' where id = ?", [item_id])

    def toggle_flag(self, name: str) -> BlindItem:
        """Set or clear a flag (degenerate, refusal, …) on the current item."""
        if name not in self._flag_names:
            self._load_rubric()  # added in the rubric editor since the session opened?
        if name not in self._flag_names:
            raise SessionError(f"no flag named {name!r}; known: {', '.join(sorted(self._flag_names))}")
        row = self._current_row()
        with self.db.atomic():
            rating_id = self._ensure_rating(row)
            current = set(json.loads(next(self.db.query("select flags_json from ratings where id = ?", [rating_id]))["flags_json"]))
            current ^= {name}
            self.db.execute("update ratings set flags_json = ? where id = ?", [json.dumps(sorted(current)), rating_id])
        return self.current()

    def set_note(self, note: str) -> BlindItem:
        row = self._current_row()
        with self.db.atomic():
            rating_id = self._ensure_rating(row)
            self.db.execute("update ratings set note = ? where id = ?", [note, rating_id])
        return self.current()

    def choose(self, winner: str, criterion: str | None = None) -> BlindItem:
        """Pairwise: record left/right/tie overall (criterion None) or for one criterion."""
        if winner not in WINNERS:
            raise SessionError(f"winner must be one of {WINNERS}, got {winner!r}")
        row = self._current_row()
        if row["right_generation_id"] is None:
            raise SessionError("this is a rubric session; use rate(criterion, score)")
        criterion_id = None
        if criterion is not None:
            if criterion not in self._criterion_ids:
                self._load_rubric()
            if criterion not in self._criterion_ids:
                raise SessionError(f"no criterion named {criterion!r}")
            criterion_id = self._criterion_ids[criterion]
        with self.db.atomic():
            self.db.execute("delete from comparisons where item_id = ? and coalesce(criterion_id, 0) = ?",
                            [row["id"], criterion_id or 0])
            self.db["comparisons"].insert({
                "session_id": self.session_id, "item_id": row["id"], "canary_id": row["canary_id"],
                "left_generation_id": row["generation_id"], "right_generation_id": row["right_generation_id"],
                "winner": winner, "criterion_id": criterion_id, "rater": self.rater, "decided_at": now(),
            })
            if criterion_id is None:
                self.db.execute("update session_items set status = 'done' where id = ?", [row["id"]])
        return self.current()

    # Ending --------------------------------------------------------------------------------
    def end(self) -> list[RevealedItem]:
        """Close the session (no more changes) and reveal who wrote what."""
        self.db.execute("update sessions set ended_at = ? where id = ? and ended_at is null", [now(), self.session_id])
        self._ended = True
        return self.reveal()

    def reveal(self) -> list[RevealedItem]:
        if not self.ended:
            raise SessionError("identities are revealed only after the session ends; call end() first")
        labels = {r["id"]: r["label"] for r in self.db.query(
            "select g.id, g.label from generations g join session_items i "
            "on g.id in (i.generation_id, i.right_generation_id) where i.session_id = ?", [self.session_id])}
        canaries = {r["id"]: r["canary_id"] for r in self.db.query("select id, canary_id from canaries")}
        positions = {r["id"]: r["position"] for r in self.db.query(
            "select id, position from session_items where session_id = ?", [self.session_id])}
        revealed = []
        for row in self.db.query("select * from session_items where session_id = ? order by position", [self.session_id]):
            blind = self._blind(row)
            pairwise = row["right_generation_id"] is not None
            revealed.append(RevealedItem(
                position=row["position"], canary_id=canaries.get(row["canary_id"]),
                label=None if pairwise else labels[row["generation_id"]],
                left_label=labels[row["generation_id"]] if pairwise else None,
                right_label=labels[row["right_generation_id"]] if pairwise else None,
                repeat_of_position=positions.get(row["repeat_of_item_id"]),
                scores=blind.scores, flags=blind.flags, note=blind.note, choices=blind.choices,
                status=row["status"],
            ))
        return revealed


# Reading after the reveal ------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ReadingCanary:
    """One canary of an ended session with every contestant's full output, for the reading view."""

    canary_id: str
    version: int
    prompt: str
    outputs: tuple[tuple[str, str], ...]  # (contestant label, text): base models first, then checkpoints by step


def revealed_texts(db: Database, session_id: int) -> list[ReadingCanary]:
    """The full texts a session showed, canary by canary — only once it has ended (identities
    sit beside each text, so an open session refuses)."""
    row = next(db.query("select ended_at from sessions where id = ?", [session_id]), None)
    if row is None:
        raise SessionError(f"there is no session #{session_id}")
    if row["ended_at"] is None:
        raise SessionError(f"session #{session_id} is still open: its texts stay hidden until ctrl+e ends it")
    rows = db.query(
        "select distinct g.id, g.label, g.text, g.run_id, g.checkpoint_step, c.canary_id, c.version, c.prompt "
        "from session_items i join generations g on g.id in (i.generation_id, i.right_generation_id) "
        "join canaries c on c.id = g.canary_id where i.session_id = ? "
        "order by c.canary_id, c.version, g.run_id is not null, g.run_id, coalesce(g.checkpoint_step, 1e18), g.label",
        [session_id])
    grouped: dict[tuple[str, int], dict[str, Any]] = {}
    for found in rows:
        entry = grouped.setdefault((found["canary_id"], found["version"]),
                                   {"prompt": found["prompt"], "outputs": {}})
        entry["outputs"].setdefault(found["label"], found["text"])  # a repeat shows the same output once
    return [ReadingCanary(canary_id=canary_id, version=version, prompt=entry["prompt"],
                          outputs=tuple(entry["outputs"].items()))
            for (canary_id, version), entry in grouped.items()]
