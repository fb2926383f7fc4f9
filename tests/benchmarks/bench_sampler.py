"""Benchmark the diffusion sampler; prints ratios against baselines measured in the same run.

    python tests/benchmarks/bench_sampler.py [--repeats 3] [--fast-repeats 1] [--thresholds 0.9 0.5] [--threads 1]
        [--only exact step propose fast]

1. Exact mode, engine sampler vs the naive reference (tests/reference_sampler.py): same
   model, settings and seed; checks the tokens agree and prints reference time / ours.
   Run on the demo diffusion model (data/models/demo-diffusion, or a small stand-in when it
   is not built yet) and on a tiny native LLaDA, whose 126k-token vocabulary is where
   per-step work outside the model shows.
2. A step against the model call alone at gen_length 256 (256 steps, block 32), on both
   models: the sampler's CPU time per step against replaying just its model calls (the same
   canvases, the same block rows, recorded from a run). What is left is printed as a share of
   the call, split into choosing tokens (`_propose`, the algorithm's own arithmetic over the
   vocabulary), the live signals (timed inside the run) and the rest (frames, bookkeeping);
   once as the sampler is, once with the proposal as it was before it was made cheap
   (`propose_before` below: a float64 copy of the rows, full softmax + gather, argmax, the
   Gumbel arithmetic in fresh tensors), once with the signals recomputed from the whole canvas
   every step (`live_signals`, as before), interleaved; the three must give the same tokens.
3. The proposal alone (`_propose` now and before) on one block of random logits, 32 rows by
   126,464 (LLaDA's vocabulary) and by 2,048 (the demo model's), all rows masked, at T = 0,
   0.9 and 1: CPU ms and the ratio.
4. Fast mode (confidence threshold) vs exact mode at gen_length 256: forward passes and CPU
   time ratios, with distinct-2 and seq-rep-4 of both outputs beside them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

import engine.sample.diffusion as diffusion  # noqa: E402
from engine.sample.diffusion import SamplerSettings, encode_prompt, sample, sample_ids, special_ids  # noqa: E402
from engine.judge.metrics import LiveSignals, distinct_n, live_signals, seq_rep_n, text_metrics  # noqa: E402
from engine.models.loading import load_model  # noqa: E402
from tests.reference_sampler import reference_sample  # noqa: E402

PROMPT = "Write a short note about mending a coat by the river."


def small_masked_model(folder: Path) -> Path:
    """A ModernBERT masked LM a little larger than the test fixture, long enough for 256 tokens."""
    import torch
    from transformers import AutoTokenizer, ModernBertConfig, ModernBertForMaskedLM

    from tests.tiny_models import build_tokenizer

    build_tokenizer(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = ModernBertConfig(
        vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=4,
        num_attention_heads=4, max_position_embeddings=1024, global_attn_every_n_layers=1,
        local_attention=1024, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id, cls_token_id=tokenizer.eos_token_id,
        sep_token_id=tokenizer.eos_token_id, mask_token_id=tokenizer.mask_token_id,
    )
    ModernBertForMaskedLM(config).save_pretrained(folder)
    return folder


def longer_limit(folder: Path, positions: int) -> Path:
    """Raise a saved LLaDA config's `max_sequence_length` (the sampler checks it; RoPE needs no table)."""
    import json

    config_path = folder / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["max_sequence_length"] = positions
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder


def drain(generator):
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value


def best_times(functions, repeats: int):
    """Fastest CPU time (this process) of each function and its last result.

    CPU time rather than wall time: on a shared 2-core machine other processes stretch wall
    time by 2-3x at random; runs are also interleaved so drift hits every contender alike.
    """
    best = [float("inf")] * len(functions)
    results = [None] * len(functions)
    for _ in range(repeats):
        for index, function in enumerate(functions):
            started = time.process_time()
            results[index] = function()
            best[index] = min(best[index], time.process_time() - started)
    return best, results


def exact_vs_reference(label: str, loaded, settings: SamplerSettings, repeats: int) -> None:
    ids = special_ids(loaded)
    prompt_ids = encode_prompt(loaded.tokenizer, PROMPT)
    (ours_seconds, reference_seconds), (ours, reference) = best_times([
        lambda: drain(sample_ids(loaded.model, prompt_ids, ids.mask, settings, family=loaded.family,
                                 eos_id=ids.eos, eot_id=ids.eot)),
        lambda: reference_sample(loaded.model, prompt_ids, ids.mask, steps=settings.steps,
                                 gen_length=settings.gen_length, block_length=settings.block_length,
                                 temperature=settings.temperature, seed=settings.seed,
                                 eos_id=ids.eos, eot_id=ids.eot),
    ], repeats)
    same = list(ours.token_ids) == reference[0]
    print(f"[exact] {label}: steps={settings.steps} gen_length={settings.gen_length} "
          f"block_length={settings.block_length} T={settings.temperature}")
    print(f"    CPU time: ours {ours_seconds:.3f} s, reference {reference_seconds:.3f} s -> "
          f"reference/ours = {reference_seconds / ours_seconds:.2f}x; same tokens: {same}")


def recorded_calls(loaded, settings: SamplerSettings) -> tuple[list[tuple], int]:
    """The arguments of every model call of one run (canvas copied as it was), and its step count."""
    calls: list[tuple] = []
    block_logits = diffusion._block_logits

    def record(model, canvas, *rest):
        calls.append((model, canvas.clone(), *rest))
        return block_logits(model, canvas, *rest)

    diffusion._block_logits = record
    try:
        frames = sum(1 for _ in sample(loaded, PROMPT, settings))
    finally:
        diffusion._block_logits = block_logits
    return calls, frames


def propose_before(block_logits, rows, settings, generator, banned_ids, deprioritised):
    """`_propose` as it was before it was made cheap (kept here only, as the contender): the
    same arithmetic, in fresh float64 tensors with a full softmax."""
    import torch

    block_length, vocab_size = block_logits.shape
    device = block_logits.device
    logits = block_logits[rows].to(torch.float64)
    logits[:, banned_ids] = float("-inf")
    if settings.temperature > 0:
        uniforms = torch.rand((block_length, vocab_size), dtype=torch.float64, generator=generator, device=device)[rows]
        weights = (logits - logits.max(dim=-1, keepdim=True).values).exp() / (-uniforms.log()) ** settings.temperature
        tokens = weights.argmax(dim=-1)
    else:
        tokens = logits.argmax(dim=-1)
    probabilities = torch.softmax(logits, dim=-1).gather(1, tokens[:, None]).squeeze(1)
    if settings.remasking == "random":
        scores = torch.rand((block_length,), dtype=torch.float64, generator=generator, device=device)[rows]
    else:
        scores = probabilities.clone()
    if deprioritised.numel():
        scores = torch.where(torch.isin(tokens, deprioritised), scores - diffusion.DEPRIORITISE_PENALTY, scores)
    return tokens, probabilities, scores


class RecomputedSignals(LiveSignals):
    """The live signals as the sampler computed them before they were incremental: the whole
    canvas from scratch (`live_signals`) at every frame — the contender they are measured against."""

    def commit(self, position: int, token_id: int) -> None:
        self.canvas[position] = token_id

    def signals(self) -> dict:
        return live_signals(self.canvas, self._end_ids, self._token_script, self._reference)


def run_with(signals_class, propose, loaded, settings: SamplerSettings):
    """One sampler run with `signals_class` keeping the live signals and `propose` choosing tokens."""
    kept = diffusion.LiveSignals, diffusion._propose
    diffusion.LiveSignals, diffusion._propose = signals_class, propose
    try:
        return drain(sample(loaded, PROMPT, settings))
    finally:
        diffusion.LiveSignals, diffusion._propose = kept


def inside_seconds(signals_class, propose, loaded, settings: SamplerSettings) -> tuple[float, float]:
    """CPU time one run spends choosing tokens (`_propose`) and keeping its live signals,
    each timed from inside the run."""
    spent = {"propose": 0.0, "signals": 0.0}

    def timed(function, key):
        def wrapper(*args):
            started = time.process_time()
            result = function(*args)
            spent[key] += time.process_time() - started
            return result
        return wrapper

    timed_class = type("Timed" + signals_class.__name__, (signals_class,), {
        "commit": timed(signals_class.commit, "signals"), "signals": timed(signals_class.signals, "signals"),
    })
    run_with(timed_class, timed(propose, "propose"), loaded, settings)
    return spent["propose"], spent["signals"]


def step_vs_model_call(label: str, loaded, settings: SamplerSettings, repeats: int) -> None:
    """A sampler step's CPU time against its model call alone, and what the rest is made of:
    the sampler as it is, with the proposal as before, and with the signals recomputed per step."""
    import torch

    calls, steps = recorded_calls(loaded, settings)

    def replay():
        with torch.inference_mode():
            for arguments in calls:
                diffusion._block_logits(*arguments)

    contenders = (("sampler", LiveSignals, diffusion._propose),
                  ("proposal as before", LiveSignals, propose_before),
                  ("signals recomputed", RecomputedSignals, diffusion._propose))
    seconds, finals = best_times(
        [lambda signals=signals, propose=propose: run_with(signals, propose, loaded, settings)
         for _, signals, propose in contenders] + [replay], repeats)
    call = seconds[-1] / steps
    same = all(final.token_ids == finals[0].token_ids for final in finals[:-1])
    print(f"[step] {label}: gen_length={settings.gen_length} steps={settings.steps} "
          f"block_length={settings.block_length} T={settings.temperature}; CPU ms per step, best of {repeats} interleaved")
    print(f"    model call alone {call * 1e3:.2f} ms (same canvases and rows, replayed); same tokens in all three: {same}")
    proposals = []
    for (name, signals_class, propose), run_seconds in zip(contenders, seconds):
        step = run_seconds / steps
        propose_seconds, signals = (value / steps for value in inside_seconds(signals_class, propose, loaded, settings))
        proposals.append(propose_seconds)
        outside = step - call
        rest = outside - propose_seconds - signals
        print(f"    {name:18s}: step {step * 1e3:.2f} ms = {step / call:.2f}x the call; outside it {outside * 1e3:.2f} ms "
              f"({outside / call:.1%}): choosing tokens {propose_seconds * 1e3:.2f} ms ({propose_seconds / call:.1%}), "
              f"live signals {signals * 1e3:.3f} ms ({signals / call:.1%}), frames and the rest {rest * 1e3:.2f} ms "
              f"({rest / call:.1%}; a difference of noisy times)")
    print(f"    choosing tokens, before/now: {proposals[1] / proposals[0]:.2f}x; without it, outside the call "
          f"{(seconds[0] / steps - call - proposals[0]) / call:.1%} of the call")


def proposal_alone(repeats: int, vocab_size: int) -> None:
    """`_propose` now and before on one block of random logits, all rows masked."""
    import torch

    block_length = 32
    logits = torch.randn((block_length, vocab_size), generator=torch.Generator().manual_seed(0)) * 3
    rows = torch.arange(block_length)
    nothing = torch.tensor([], dtype=torch.long)
    print(f"[propose] one block {block_length} x {vocab_size:,} float32 logits, every row masked; "
          f"CPU ms, best of {repeats} interleaved")
    for temperature in (0.0, 0.9, 1.0):
        settings = SamplerSettings(temperature=temperature)
        (now, before, draw), (ours, theirs, _) = best_times([
            lambda propose=propose: propose(logits, rows, settings, torch.Generator().manual_seed(1),
                                            [vocab_size - 1], nothing)
            for propose in (diffusion._propose, propose_before)
        ] + [lambda: torch.rand((block_length, vocab_size), dtype=torch.float64, generator=torch.Generator())], repeats)
        floor = f"; of it drawing the block's uniforms (kept as they were) {draw * 1e3:.1f} ms" if temperature > 0 else ""
        same = torch.equal(ours[0], theirs[0])
        largest = float(((ours[1] - theirs[1]).abs() / theirs[1]).max())
        print(f"    T={temperature}: now {now * 1e3:.1f} ms, before {before * 1e3:.1f} ms -> before/now {before / now:.2f}x; "
              f"same tokens: {same}; probabilities differ by at most {largest:.1e} (relative){floor}")


def fast_vs_exact(loaded, repeats: int, thresholds: list[float]) -> None:
    exact_settings = SamplerSettings(steps=256, gen_length=256, block_length=32, temperature=0.0)
    runs = [("exact", lambda: drain(sample(loaded, PROMPT, exact_settings)))]
    for threshold in thresholds:
        fast_settings = SamplerSettings(gen_length=256, block_length=32, temperature=0.0, threshold=threshold)
        runs.append((f"fast {threshold}", lambda settings=fast_settings: drain(sample(loaded, PROMPT, settings))))
    seconds, finals = best_times([function for _, function in runs], repeats)
    exact_seconds, exact = seconds[0], finals[0]
    print("[fast] confidence-threshold decoding vs exact (256 steps), gen_length 256, block 32, T=0")
    for (name, _), run_seconds, final in zip(runs, seconds, finals):
        words = text_metrics(final.text)
        print(f"    {name:9s}: {final.forward_passes:3d} forward passes (exact/this {exact.forward_passes / final.forward_passes:.2f}x), "
              f"CPU {run_seconds:.2f} s (exact/this {exact_seconds / run_seconds:.2f}x); "
              f"words distinct-2 {words['distinct_2']:.3f}, seq-rep-4 {words['seq_rep_4']:.3f}; "
              f"tokens distinct-2 {distinct_n(final.token_ids, 2):.3f}, seq-rep-4 {seq_rep_n(final.token_ids, 4):.3f}")


SECTIONS = ("exact", "step", "propose", "fast")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the fastest counts")
    parser.add_argument("--fast-repeats", type=int, default=1, help="runs per measurement at gen_length 256")
    parser.add_argument("--step-repeats", type=int, default=3,
                        help="interleaved runs for a step against its model call at gen_length 256")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.9, 0.5],
                        help="fast-mode confidence thresholds to compare with exact mode")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: steadier timings on a shared machine)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=SECTIONS,
                        help="run only these sections (default: all)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)

    if "propose" in args.only:
        for vocab_size in (126_464, 2_048):
            proposal_alone(args.repeats, vocab_size)
    if not {"exact", "step", "fast"} & set(args.only):
        return
    with tempfile.TemporaryDirectory() as scratch:
        demo = REPO_ROOT / "data" / "models" / "demo-diffusion"
        if (demo / "config.json").exists():
            model_dir, label = demo, "demo-diffusion"
        else:
            model_dir, label = small_masked_model(Path(scratch) / "masked"), "small ModernBERT (demo model not built)"
        masked = load_model(str(model_dir))
        from tests.tiny_models import build_tiny_llada

        if "exact" in args.only:
            exact_vs_reference(label, masked, SamplerSettings(steps=64, gen_length=64, block_length=32,
                                                              temperature=1.0, seed=0), args.repeats)
            llada = load_model(str(build_tiny_llada(Path(scratch) / "llada")))
            exact_vs_reference("tiny native LLaDA (vocab 126,464)", llada,
                               SamplerSettings(steps=32, gen_length=64, block_length=32, temperature=1.0, seed=0),
                               args.repeats)

        if "step" in args.only:
            # The tiny LLaDA takes 256 positions; gen_length 256 needs a longer limit (RoPE has no table).
            long_llada = load_model(str(longer_limit(build_tiny_llada(Path(scratch) / "llada-long"), 1024)))
            for temperature in (0.0, 1.0):
                settings = SamplerSettings(steps=256, gen_length=256, block_length=32, temperature=temperature, seed=0)
                step_vs_model_call(label, masked, settings, args.step_repeats)
                step_vs_model_call("tiny native LLaDA (vocab 126,464)", long_llada, settings, args.step_repeats)

        if "fast" in args.only:
            fast_vs_exact(masked, args.fast_repeats, args.thresholds)

if __name__ == "__main__":
    main()
