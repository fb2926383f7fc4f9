"""Does the Canvas screen keep up with the sampler at gen_length 1,024?

Measures, in one run on this machine:
- the sampler alone: the sampler process (`engine.sample.service`) streaming a run to a
  reader that does nothing with it (the baseline);
- the same run watched by the app (headless, 120×40): the sampler process's own sampling
  time, the frames it produced, the paints the canvas made and which frames' commits
  reached the screen (a paint draws every frame since the previous one);
- for reference, `engine.sample.diffusion.sample` consumed in a plain in-process loop;
and prints the ratio watched / alone (target: within 5%) and frames drawn / produced.

    python tests/benchmarks/bench_canvas.py [--model DIR] [--repeats 2] [--gen-length 1024]

Without --model it builds a small ModernBERT masked LM with a 1,280-token context in a temp
folder (the fixtures' tiny models stop at 256 tokens).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def build_model(folder: Path, context: int) -> Path:
    import torch
    from transformers import AutoTokenizer, ModernBertConfig, ModernBertForMaskedLM

    from transformers.utils import logging as hf_logging

    from tests.tiny_models import build_tokenizer

    hf_logging.disable_progress_bar()
    build_tokenizer(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = ModernBertConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=context, global_attn_every_n_layers=1,
        local_attention=context, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id, cls_token_id=tokenizer.eos_token_id,
        sep_token_id=tokenizer.eos_token_id, mask_token_id=tokenizer.mask_token_id,
    )
    ModernBertForMaskedLM(config).save_pretrained(folder)
    return folder


def sample_in_process(model_dir: Path, prompt: str, settings) -> tuple[float, int]:
    """`engine.sample.diffusion.sample` in a plain loop on a thread of this process."""
    from engine.sample.diffusion import sample
    from engine.models.loading import load_model

    loaded = load_model(str(model_dir))
    result: dict[str, float] = {}

    def consume() -> None:
        stream = sample(loaded, prompt, settings)
        started = time.perf_counter()
        result["frames"] = sum(1 for _frame in stream)
        result["seconds"] = time.perf_counter() - started

    thread = threading.Thread(target=consume)
    thread.start()
    thread.join()
    return result["seconds"], int(result["frames"])


def sample_alone(model_dir: Path, prompt: str, settings) -> tuple[float, int]:
    """The baseline: the sampler process the app uses, its events read and dropped."""
    import dataclasses

    from tui.sampler_client import SamplerProcess

    done = threading.Event()
    result: dict[str, float] = {"frames": 0}

    def on_event(payload: dict) -> None:
        if payload.get("event") == "step":
            result["frames"] += 1
        elif payload.get("event") in ("final", "error", "exited"):
            result.setdefault("seconds", payload.get("sampling_seconds", float("nan")))
            done.set()

    process = SamplerProcess(on_event)
    process.send({"op": "sample", "run": 1, "model": {"path": str(model_dir)}, "prompt": prompt,
                  "settings": dataclasses.asdict(settings)})
    done.wait()
    process.close()
    return result["seconds"], int(result["frames"])


async def sample_watched(workspace_root: Path, prompt: str) -> tuple[float, int, int, int]:
    from textual.widgets import Input, Select

    from engine.workspace import Workspace
    from tui.app import make_app
    from tui.widgets.canvas_view import CanvasHeader, CanvasView

    app = make_app(Workspace.open(workspace_root))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        await pilot.pause()
        screen = app.screen
        screen.query_one("#canvas-model", Select).value = "bench"
        screen.query_one("#canvas-typist", Select).value = "__off__"
        screen.query_one("#canvas-prompt", Input).value = prompt
        header = screen.query_one(CanvasHeader)
        view = screen.query_one(CanvasView)
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        await pilot.press("enter")
        while screen.busy:
            await pilot.pause(0.05)
        ui_share = (time.process_time() - cpu_started) / (time.perf_counter() - wall_started)
        print(f"  the app used {ui_share:.0%} of a core while watching", flush=True)
        run = screen.last_run
        while screen.step < run.timeline.steps:  # let the display finish what it was drawing
            await pilot.pause(0.02)
        await pilot.pause(0.1)
        painted = header.drawn_steps - {0}
        # A paint of step b after step a shows (highlighted) the commits of frames a+1..b.
        covered = set()
        for new_after, step in view.shown:
            if step in painted:
                covered.update(range(new_after + 1, step + 1))
        return run.sampling_seconds, run.timeline.steps, len(covered & set(range(1, run.timeline.steps + 1))), len(painted)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a masked-diffusion model folder (default: build one)")
    parser.add_argument("--gen-length", type=int, default=1024, help="tokens to generate (= steps)")
    parser.add_argument("--block-length", type=int, default=32, help="block length")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads of the in-process reference loop (on this 2-core box, 2 threads ran 7-15x "
                             "slower than 1 and made every timing noise)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)

    from engine.sample.diffusion import SamplerSettings

    prompt = "The river in winter"
    settings = SamplerSettings(steps=args.gen_length, gen_length=args.gen_length, block_length=args.block_length)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = Path(args.model) if args.model else build_model(Path(scratch) / "model", args.gen_length + 256)
        root = Path(scratch) / "workspace"
        root.mkdir()
        (root / "voicebench.toml").write_text(
            f'[models.bench]\npath = "{model_dir.resolve()}"\nfamily = "masked"\n'
            f"[sampler]\nsteps = {settings.steps}\ngen_length = {settings.gen_length}\n"
            f"block_length = {settings.block_length}\n",
            encoding="utf-8",
        )
        # Warm up once (the first forward passes in a process are far slower: kernels and any
        # compiled modules are set up then), with the same canvas shape but few steps.
        warm_up = SamplerSettings(steps=settings.blocks, gen_length=settings.gen_length,
                                  block_length=settings.block_length)
        print(f"  warm-up: {sample_in_process(model_dir, prompt, warm_up)[0]:.2f}s", flush=True)
        in_process = sample_in_process(model_dir, prompt, settings)[0]
        print(f"  in-process sample() loop: {in_process:.2f}s", flush=True)
        alone, watched, produced, drawn, paints = [], [], [], [], []
        for _ in range(args.repeats):
            seconds, frames = sample_alone(model_dir, prompt, settings)
            alone.append(seconds)
            seconds, frames_made, frames_drawn, paint_count = asyncio.run(sample_watched(root, prompt))
            watched.append(seconds)
            produced.append(frames_made)
            drawn.append(frames_drawn)
            paints.append(paint_count)
            print(f"  alone {alone[-1]:.2f}s ({frames} frames, {frames / alone[-1]:.0f} fps)   "
                  f"watched {seconds:.2f}s ({frames_made} frames, {frames_made / seconds:.0f} fps), "
                  f"{paint_count} paints drew {frames_drawn}/{frames_made} frames", flush=True)
    # Each pair ran back to back, so its ratio is less exposed to the shared machine's drift.
    pair_ratios = [watched_seconds / alone_seconds for watched_seconds, alone_seconds in zip(watched, alone)]
    ratio = statistics.median(watched) / statistics.median(alone)
    print(f"gen_length {args.gen_length}, {settings.steps} steps, model {model_dir.name}, "
          f"torch threads in the sampler process: its default (cores - 1)")
    print(f"sampling watched by the app / alone: {ratio:.3f} (median of {args.repeats}; target ≤ 1.05)")
    print(f"per pair (watched / alone): {', '.join(f'{value:.2f}' for value in pair_ratios)}; "
          f"median {statistics.median(pair_ratios):.3f}")
    print(f"sampler process alone / in-process loop: {statistics.median(alone) / in_process:.3f}")
    print(f"frames drawn / produced: {sum(drawn)}/{sum(produced)} = {sum(drawn) / max(1, sum(produced)):.3f} "
          f"in {sum(paints)} paints ({sum(produced) / max(1, sum(paints)):.1f} frames a paint)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
