"""`voicebench generate`: sample one reply from a diffusion or causal model.

    voicebench generate --prompt "Write about the river in March."          # demo-diffusion
    voicebench generate --model demo-diffusion --prompt "…" --watch         # live canvas
    voicebench generate --model demo-diffusion --prompt "…" --json          # JSON lines
    voicebench generate --model demo-ar --prompt "…" --max-new-tokens 80    # causal typewriter

Diffusion families (masked, llada, dream) go through the one sampler in
`engine.sample.diffusion`; causal models through `engine.sample.causal.stream_causal`. Sampler options
not given on the command line come from the workspace's [sampler] table, then from the
defaults. Bad settings or a missing model print a clear message and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from engine.display import safe_text, terminal_json

EXIT_USAGE = 2
DEFAULT_MODEL = "demo-diffusion"
DEMO_MODELS = ("demo-ar", "demo-diffusion")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `generate` to the parser."""
    parser = subparsers.add_parser(
        "generate", help="sample a reply from a model (diffusion canvas or causal typewriter)",
        description="Sample one reply. Masked-diffusion models (the demo diffusion model, LLaDA, "
        "ModernBERT-style masked LMs) use the LLaDA sampler; causal models generate token by token. "
        "Sampler options not given here come from the workspace's [sampler] settings.",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME_OR_PATH",
                        help=f"a model named in the workspace, or a model folder (default: {DEFAULT_MODEL})")
    parser.add_argument("--prompt", required=True, help="the instruction or opening to reply to")
    sampler = parser.add_argument_group("diffusion sampler")
    sampler.add_argument("--steps", type=int, help="model calls in exact mode; a multiple of the block count (default: 64)")
    sampler.add_argument("--gen-length", type=int, help="tokens to generate, a multiple of --block-length (default: 64)")
    sampler.add_argument("--block-length", type=int, help="semi-autoregressive block size (default: 32)")
    sampler.add_argument("--temperature", type=float,
                         help="0 = argmax (deterministic); above 0 = Gumbel sampling; causal models too (default: 0)")
    sampler.add_argument("--cfg-scale", type=float, help="classifier-free guidance weight; 0 = off (default: 0)")
    sampler.add_argument("--remasking", choices=("low_confidence", "random"),
                         help="which proposals to commit first: most confident, or at random (default: low_confidence)")
    sampler.add_argument("--seed", type=int, help="random seed; same seed, same tokens (default: 0)")
    sampler.add_argument("--threshold", type=float, metavar="P",
                         help="fast mode: commit every proposal above confidence P, at least one per step; "
                         "--steps is then unused (default: off)")
    sampler.add_argument("--suppress-eos", action="store_true", default=None, help="never propose the end-of-text token")
    sampler.add_argument("--deprioritise-eos", action="store_true", default=None,
                         help="commit end-of-text/end-of-turn tokens only after all others")
    parser.add_argument("--no-template", action="store_true", help="feed the prompt as plain text, without the chat template")
    parser.add_argument("--max-new-tokens", type=int, metavar="N",
                        help="causal models: tokens to generate at most (default: --gen-length, else 64)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--watch", action="store_true", help="draw the canvas live as it fills (causal: type it out)")
    output.add_argument("--json", action="store_true",
                        help='print one JSON object a line: {"event": "step", …} per step, then {"event": "final", …}')
    parser.set_defaults(func=run_generate_command)


def sampler_settings(args: argparse.Namespace, defaults: dict[str, Any]) -> Any:
    """SamplerSettings from flags, then the workspace's [sampler] table, then the defaults."""
    from engine.sample.diffusion import SamplerSettings, SamplerSettingsError

    known = {field.name for field in dataclasses.fields(SamplerSettings)}
    unknown = sorted(set(defaults) - known)
    if unknown:
        raise SamplerSettingsError(
            f"voicebench.toml [sampler]: unknown keys {unknown}; allowed: {sorted(known)}."
        )
    values = dict(defaults)
    for name in known - {"use_template"}:
        flag = getattr(args, name, None)
        if flag is not None:
            values[name] = flag
    if args.no_template:
        values["use_template"] = False
    return SamplerSettings(**values)


def run_generate_command(args: argparse.Namespace) -> int:
    from engine.sample.diffusion import SamplerSettingsError
    from engine.models.loading import DIFFUSION_FAMILIES, ModelNotFoundError, RemoteCodeRefused, read_family
    from engine.workspace import Workspace, WorkspaceError

    try:
        workspace = Workspace.open(args.workspace)
        entry = workspace.model(args.model)
        settings = sampler_settings(args, workspace.section("sampler")).validate_numbers()
        family = read_family(entry.path, entry.family)
        # Checked before paying for the model load.
        settings.validate() if family in DIFFUSION_FAMILIES else settings.validate_numbers()
        if args.max_new_tokens is not None and args.max_new_tokens < 1:
            return _fail(f"--max-new-tokens {args.max_new_tokens}: must be at least 1.")
        return _generate(args, entry, settings, family)
    except ModelNotFoundError as error:
        hint = ""
        if args.model in DEMO_MODELS:
            hint = " The demo models are built by `python -m engine.models.demo` (see data/models/)."
        return _fail(f"{error}{hint}")
    except (WorkspaceError, RemoteCodeRefused, SamplerSettingsError, ValueError) as error:
        return _fail(str(error))


def _fail(message: str) -> int:
    print(f"voicebench generate: error: {safe_text(message)}", file=sys.stderr)
    return EXIT_USAGE


def _generate(args: argparse.Namespace, entry: Any, settings: Any, family: str | None) -> int:
    from engine.sample.diffusion import sample, special_ids
    from engine.sample.causal import stream_causal
    from engine.models.loading import DIFFUSION_FAMILIES, load_entry

    loaded = load_entry(dataclasses.replace(entry, family=family))
    if loaded.family in DIFFUSION_FAMILIES:
        frames = sample(loaded, args.prompt, settings)
        if args.watch:
            from engine.cli.canvas_view import CanvasView

            special_ids(loaded)  # fail on a missing mask token before the screen is drawn
            steps = None if settings.threshold is not None else settings.steps
            view = CanvasView(loaded.tokenizer, settings.gen_length, settings.block_length, steps)
            final = _watch(frames, view)
        else:
            final = _drain(frames, args.json)
    else:
        max_new_tokens = args.max_new_tokens or settings.gen_length
        frames = stream_causal(
            loaded, args.prompt, max_new_tokens=max_new_tokens, temperature=settings.temperature,
            seed=settings.seed, use_template=settings.use_template,
        )
        final = _type_out(frames) if not args.json else _drain(frames, True)
    if args.json:
        print(_json_line(final), flush=True)
    elif loaded.family in DIFFUSION_FAMILIES:  # causal replies were typed out as they came
        print(safe_text(final.text))
    return 0


def _json_line(event: Any) -> str:
    """An event as one JSON line, with nothing in it a terminal would act on."""
    return terminal_json(event.to_dict(), separators=(",", ":"))


def _drain(frames: Any, as_json: bool) -> Any:
    """Run a frame generator to the end, printing frames as JSON lines when asked."""
    while True:
        try:
            frame = next(frames)
        except StopIteration as stop:
            return stop.value
        if as_json:
            print(_json_line(frame), flush=True)


def _type_out(frames: Any) -> Any:
    """Print a causal model's reply as it is generated."""
    while True:
        try:
            frame = next(frames)
        except StopIteration as stop:
            print(flush=True)
            return stop.value
        sys.stdout.write(safe_text(frame.text))
        sys.stdout.flush()


def _watch(frames: Any, view: Any) -> Any:
    from rich.console import Console
    from rich.live import Live

    console = Console()
    with Live(view, console=console, refresh_per_second=12) as live:
        while True:
            try:
                view.update(next(frames))
            except StopIteration as stop:
                live.refresh()
                final = stop.value
                break
    if not console.is_terminal:
        console.line()  # a non-terminal Live leaves its last line open
    console.print(f"[dim]{final.forward_passes} forward passes in {final.seconds:.2f} s[/dim]")
    return final
