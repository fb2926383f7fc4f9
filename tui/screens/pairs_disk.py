"""The Pairs screen's side that talks to the disk: autosave, save now, saving on leave and
quit, the save-conflict dialog (save as / reload / overwrite — every choice keeps the
edits somewhere), and reloading a file another program changed while nothing was unsaved.

`PairsDiskMixin` is mixed into `PairsScreen`; it uses the screen's `session`, status line
and background work, and keeps no widgets of its own.
"""

from __future__ import annotations

import copy
from functools import wraps
from pathlib import Path

from engine.curate.pairs import Fingerprint, SaveConflict, save_pairs
from tui.pairs_session import unique_path
from tui.screens.dialogs import ConflictChoice, SaveConflictDialog
from tui.widgets.pair_problems import display_path


def when_loaded(method):
    """Skip a handler or action until the pairs file has been read (it loads in a worker)."""

    @wraps(method)
    def guarded(self, *args, **kwargs):
        if self.session is None:
            return None
        return method(self, *args, **kwargs)

    return guarded


class PairsDiskMixin:
    """Saving and reloading for PairsScreen (see the module docstring)."""

    def _autosave(self) -> None:
        self._autosave_timer = None
        self.save_now()

    @when_loaded
    def action_save(self) -> None:
        if not self.session.dirty and self._save_state == "saved":
            self.notify("No unsaved edits.", timeout=3)
            return
        if self.save_now() and self._save_state == "saved":
            self.notify(f"Saved {display_path(self.session.path, self.app.workspace.root)}.", markup=False)

    def save_now(self, ask: bool = True) -> bool:
        """Write unsaved edits; on a conflict, ask (or remember to ask). True when saved."""
        if self.session is None or not self.session.dirty:
            return True
        if self._conflict_open:
            return False
        try:
            self.session.save()
        except SaveConflict:
            self._save_state = "conflict"
            self._update_status()
            if ask:
                self._ask_about_conflict()
            else:
                self._conflict_pending = True
            return False
        except OSError as error:
            self._save_state = "error"
            self._update_status()
            self.notify(f"Could not save {self.session.path}: {error}. Your edits are still here; ctrl+s retries.",
                        severity="error", timeout=10, markup=False)
            return False
        self._save_state = "saved"
        self._disk_stat = self._stat()  # our own write is not an outside change
        self._update_status()
        return True

    def prepare_to_quit(self) -> bool:
        if self._conflict_open:
            self.notify("Your edits are not saved yet: choose Save as, Reload or Overwrite first.",
                        severity="warning", timeout=6)
            return False
        return self.save_now()

    def on_screen_suspend(self) -> None:
        # Leaving for another screen: save now; a conflict is asked about on return.
        if self._conflict_open:
            return  # the conflict dialog itself is what covers this screen
        if self._autosave_timer is not None:
            self._autosave_timer.stop()
            self._autosave_timer = None
        if not self.save_now(ask=False) and self._save_state == "conflict":
            self.app.notify("Pairs were not saved: the file changed on disk. Go back to Pairs (F1) to choose.",
                            severity="warning", timeout=8)

    def on_screen_resume(self) -> None:
        if self._conflict_pending:
            self._conflict_pending = False
            self._ask_about_conflict()
        else:
            self.check_disk()

    def _stat(self) -> tuple[int, int] | None:
        try:
            info = self.session.path.stat()
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size

    @when_loaded
    def check_disk(self) -> None:
        """Reload the file when another program changed it and nothing here is unsaved
        (e.g. `voicebench ingest` in another terminal). With unsaved edits the next save
        raises the conflict dialog instead, so nothing is lost either way."""
        stat = self._stat()
        if stat == self._disk_stat or self.session.dirty or self._conflict_open:
            return
        self._disk_stat = stat
        try:
            on_disk = Fingerprint.of_bytes(self.session.path.read_bytes())
        except OSError:
            return
        if on_disk == self.session.pair_file.fingerprint:
            return  # touched, not changed
        self.session.reload()
        self._selected = None
        self._refresh_rows()
        self._start_background_work()
        self.notify(f"Reloaded {display_path(self.session.path, self.app.workspace.root)}: it changed on disk.",
                    timeout=5, markup=False)

    def _ask_about_conflict(self, error: str = "") -> None:
        if self._conflict_open:
            return
        root = self.app.workspace.root
        path = self.session.path
        mine = unique_path(path.with_name(f"{path.stem}.mine{path.suffix}"))
        count = self.session.version - self.session.saved_version
        self._conflict_open = True
        self.app.push_screen(
            SaveConflictDialog(
                display_path(path, root), f"unsaved edits ({count} change{'s' if count != 1 else ''})",
                display_path(mine, root), display_path(mine, root), error,
            ),
            self._resolve_conflict,
        )

    def _resolve_conflict(self, choice: ConflictChoice | None) -> None:
        self._conflict_open = False
        if choice is None:
            self.notify("Not saved. Autosave is paused until you choose; ctrl+s asks again.", severity="warning")
            return
        root = self.app.workspace.root
        path = self.session.path
        try:
            if choice.action == "overwrite":
                self.session.save(force=True)
                message = f"Overwrote {display_path(path, root)} with your version (the other one is in .bak)."
            elif choice.action == "save_as":
                target = self._resolve_path(choice.path)
                self.session.save(target)
                message = f"Saved your version as {display_path(target, root)}; editing that file now."
            else:
                mine = unique_path(path.with_name(f"{path.stem}.mine{path.suffix}"))
                self._write_copy(mine)
                self.session.reload()
                self._selected = None
                self._refresh_rows()
                self._start_background_work()
                message = f"Reloaded {display_path(path, root)}; your version is in {display_path(mine, root)}."
        except (SaveConflict, OSError) as error:
            self._ask_about_conflict(error=str(error))
            return
        self._save_state = "saved"
        self._disk_stat = self._stat()
        self._update_status()
        self.notify(message, timeout=8, markup=False)

    def _resolve_path(self, text: str) -> Path:
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.app.workspace.root / path

    def _write_copy(self, target: Path) -> None:
        """Write the in-memory pairs to another file without switching to it."""
        rescue = copy.copy(self.session.pair_file)
        rescue.pairs = list(self.session.pairs)
        save_pairs(rescue, target)
