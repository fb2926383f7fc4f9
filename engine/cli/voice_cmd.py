"""`voicebench voice`: does it sound like me? The automatic voice score of each contestant.

    voicebench voice demo-ar demo-diffusion
    voicebench voice "demo-diffusion · T=0.8" run-x/checkpoint-20 --json

Each contestant (a workspace model, a stored label such as a checkpoint or a swept setting)
answers the validation prompts; a classifier cross-validated by source tries to tell the
replies from her own responses (engine.judge.voice). Scores land in judgments.db.
"""

from __future__ import annotations

import argparse
import sys

from engine.display import safe_text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "voice", help="score how hard it is to tell a model's writing from yours (AUC; 0.5 = indistinguishable)",
        description="Answer the validation prompts with each contestant and cross-validate a stylometric "
                    "classifier that tries to tell the replies from your own responses. Prints the AUC with a "
                    "bootstrap interval, Burrows' Delta, the longest passage copied from training, and the "
                    "calibration on your own text.",
    )
    parser.add_argument("contestants", nargs="+", metavar="CONTESTANT",
                        help="workspace model name or folder, or a label in judgments.db (checkpoint, sweep setting)")
    parser.add_argument("--seed", type=int, default=0, help="sampling, cross-validation and bootstrap seed (default 0)")
    parser.add_argument("--reply-tokens", type=int, default=128, metavar="N",
                        help="tokens per reply to each validation prompt (default 128)")
    parser.add_argument("--json", action="store_true", help="print one JSON event per line")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.judge.canary import CanaryFileError
    from engine.judge.voice import VoiceError, VoiceReply, VoiceScored, VoiceStarted, voice_score
    from engine.judge.workspace_store import open_workspace_store
    from engine.models.loading import ModelNotFoundError, RemoteCodeRefused
    from engine.workspace import Workspace, WorkspaceError

    if args.reply_tokens <= 0:
        print(f"voicebench voice: --reply-tokens must be positive, got {args.reply_tokens}", file=sys.stderr)
        return 2
    try:
        workspace = Workspace.open(args.workspace)
        if not workspace.db_path.exists():  # only models can be named then: refuse a wrong name before making the store
            from engine.judge.voice import resolve_contestant
            from engine.judge.workspace_store import reading_store

            empty = reading_store(workspace)
            for name in args.contestants:
                resolve_contestant(empty, workspace, name)
        db = open_workspace_store(workspace)
        unscored = 0
        for name in args.contestants:  # her text's calibration is computed once (engine.judge.voice.calibrate)
            for event in voice_score(db, workspace, name, seed=args.seed, reply_tokens=args.reply_tokens):
                if args.json:
                    print(event.to_json(), flush=True)
                elif isinstance(event, VoiceStarted):
                    print(safe_text(f"{event.label}: {event.prompts} validation prompts, {event.to_generate} to "
                                    f"answer; {event.writer_words:,} words of yours held out"), flush=True)
                elif isinstance(event, VoiceReply) and event.skipped:
                    print(safe_text(f"  skipped {event.skipped}"), flush=True)
                elif isinstance(event, VoiceReply) and (event.done == event.total or event.done % 10 == 0):
                    print(f"  {event.done}/{event.total} replies", flush=True)
                if isinstance(event, VoiceScored):
                    unscored += event.status != "scored"
                    if not args.json:
                        print(safe_text(describe(event)), flush=True)
    except (WorkspaceError, VoiceError, CanaryFileError, ModelNotFoundError, RemoteCodeRefused,
            FileNotFoundError) as error:
        print(f"voicebench voice: {safe_text(str(error))}", file=sys.stderr)
        return 2
    return 2 if unscored else 0


def describe(result) -> str:  # noqa: ANN001 - a VoiceScored
    """The score as the writer reads it, with its calibration and limits beside it."""
    if result.status != "scored":
        return f"{result.label}: no score — {result.message}"
    same, shuffled = result.same_writer, result.shuffled
    lines = [
        f"{result.label}: voice AUC {result.auc:.2f} [{result.auc_low:.2f}, {result.auc_high:.2f}] "
        f"(0.5 = cannot be told from you, 1.0 = always can)",
        f"  Burrows' Delta {result.delta:.2f} (your own two halves: {result.delta_own:.2f})",
        f"  longest passage copied from training: {result.copied_words} words"
        + (f" — “{_clip(result.copied_passage)}”" if result.copied_words >= 8 else ""),
        f"  calibration on your text: you vs you {same[0]:.2f} [{same[1]:.2f}, {same[2]:.2f}]; "
        f"you vs your sentences shuffled {shuffled[0]:.2f} [{shuffled[1]:.2f}, {shuffled[2]:.2f}]",
        f"  {result.writer_words:,} words of yours ({result.writer_chunks} chunks) against {result.model_words:,} "
        f"of the model's ({result.model_chunks}); {result.seconds:.0f} s",
    ]
    if result.message:
        lines.append(f"  note: {result.message}")
    return "\n".join(lines)


def _clip(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
