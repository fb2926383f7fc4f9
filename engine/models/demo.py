"""Build the two tiny demo models in `data/models/` from the demo corpus, reproducibly.

    python -m engine.models.demo [--out data/models] [--minutes-diffusion 13 --minutes-ar 6]
                                 [--steps-diffusion N --steps-ar N] [--seed 0]

What it does, in order:
1. reads every piece under `data/sources/` through ingest's text cleaning, and the train
   split of `data/pairs.jsonl` (plus one "write the piece titled …" pair per source piece);
2. trains one byte-level BPE tokenizer on that text (`engine.models.demo_tokenizer`);
3. trains `demo-diffusion`, a ModernBERT masked LM from scratch with LLaDA's masked-diffusion
   objective (`engine.train.objectives`), and `demo-ar`, a small Llama causal LM — both on packed
   plain-text chunks of the corpus alternating with chat-formatted pairs (prompt never trained);
4. samples a 64-token answer from each at default settings, measures it, and saves each model
   (safetensors + tokenizer + `README.md` model card + `build.json`) atomically.

A budget in minutes is turned into a fixed step count by timing a few steps on a throwaway
copy first; the step count is written into the model card together with a command that
repeats the build exactly (same seed, same steps, same data order).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from engine.models.demo_tokenizer import EOT_TOKEN
from engine.events import Event, run_to_end

DIFFUSION_NAME = "demo-diffusion"
AR_NAME = "demo-ar"
EVAL_PROMPT = "Write a short note about the river."  # the canaries' shape, not a training prompt
EVAL_TOKENS = 64
MAX_TOTAL_MB = 30.0


# --- plans ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelPlan:
    """Shape and training budget of one demo model."""

    name: str  # folder name under the output directory
    family: str  # "masked" (diffusion) or "causal"
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    lr: float  # peak AdamW learning rate (after warmup, before cosine decay)
    minutes: float  # wall-clock budget, used only when `steps` is None
    steps: int | None = None  # fixed step count; overrides `minutes`
    decay_from: int | None = None  # with `steps`: first step of the cosine decay (None: steps // 2)
    warmup_steps: int = 50  # linear lr warmup over this many steps
    decay_share: float = 0.5  # the last half of the budget (time or steps) decays the lr
    min_lr_share: float = 0.1  # the cosine ends at this share of the peak lr
    # Masked LM only: layers whose index is not a multiple of `global_every` attend within a
    # window of `local_window` tokens. At initialisation attention is near-uniform, so a small
    # window hands each masked position the average of its neighbours — a bigram-like signal
    # the model learns from at once. With global attention everywhere a masked position sees the
    # average of the whole row, and training sat on the unigram plateau (loss ~6, "the the the")
    # for over a thousand steps; with an 8-token window it left it within ~150 steps.
    local_window: int | None = None
    global_every: int = 1


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """Everything a build depends on; recorded in each model's build.json."""

    out_dir: Path
    sources_dir: Path
    pairs_path: Path | None
    diffusion: ModelPlan
    ar: ModelPlan
    seed: int = 0
    vocab_size: int = 2048
    chunk_len: int = 128  # plain-text chunk length (tokens) during training
    pair_len: int = 192  # chat-formatted pair length (tokens) during training; prompts get half at most
    tokens_per_batch: int = 1024  # chunk batches hold tokens_per_batch // chunk_len rows, pair batches // pair_len
    context_length: int = 512  # max_position_embeddings of the saved models
    threads: int = 2
    log_every: int = 25
    eval_prompt: str = EVAL_PROMPT
    eval_tokens: int = EVAL_TOKENS


def default_config(out_dir: str | Path = "data/models", root: str | Path = ".", **overrides: Any) -> BuildConfig:
    """The configuration the committed demo models were built with (sizes fit ~30 MB)."""
    root = Path(root)
    pairs = root / "data" / "pairs.jsonl"
    config = BuildConfig(
        out_dir=Path(out_dir),
        sources_dir=root / "data" / "sources",
        pairs_path=pairs if pairs.exists() else None,
        # Sizes and rates chosen by short timed trials on the busy 2-core build machine: at a fixed
        # wall-clock budget a narrower diffusion model with smaller batches (more steps) won.
        diffusion=ModelPlan(DIFFUSION_NAME, "masked", 192, 4, 3, 384, lr=1e-3, minutes=19.0,
                            local_window=8, global_every=4),
        ar=ModelPlan(AR_NAME, "causal", 256, 4, 4, 512, lr=2e-3, minutes=6.0),
    )
    return dataclasses.replace(config, **overrides)


# --- events --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BuildStage(Event):
    kind: ClassVar[str] = "build_stage"
    stage: str
    message: str


@dataclasses.dataclass(frozen=True)
class BuildStep(Event):
    kind: ClassVar[str] = "build_step"
    model: str
    step: int
    steps: int
    loss: float
    lr: float
    seconds: float


@dataclasses.dataclass(frozen=True)
class BuildDone(Event):
    kind: ClassVar[str] = "build_done"
    model: str
    path: str
    parameters: int
    steps: int
    final_loss: float
    seconds: float
    sample: str
    distinct_1: float
    longest_run: int


# --- data ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Corpus:
    texts: list[str]  # cleaned pieces, sorted by file name
    titles: list[str]
    pairs: list[tuple[str, str]]  # (prompt, response), fixed order
    pairs_origin: str  # where the pairs came from, for the model card
    fingerprint: str  # sha256 over what went in, for the model card


def read_corpus(sources_dir: Path, pairs_path: Path | None) -> Corpus:
    """Clean every source piece with ingest's cleaning and collect the training pairs."""
    from engine.curate.ingest import clean_source_file

    files = sorted(path for path in Path(sources_dir).rglob("*.md") if path.is_file())
    if not files:
        raise FileNotFoundError(f"{sources_dir}: no .md files. The demo corpus lives in data/sources/.")
    digest = hashlib.sha256()
    texts, titles = [], []
    for path in files:
        piece = clean_source_file(path)
        texts.append(piece.text)
        titles.append(piece.title)
        digest.update(path.name.encode() + b"\0" + piece.text.encode())
    pairs: list[tuple[str, str]] = []
    if pairs_path is not None and Path(pairs_path).exists():
        from engine.curate.pairs import load_pairs

        pair_file = load_pairs(pairs_path)
        # Only the train split: val pairs stay out of the instruction data, so fine-tuning runs'
        # validation loss is not measured on prompts the base model was drilled on.
        pairs = [(pair.prompt, pair.response) for pair in pair_file.pairs if pair.split == "train"]
        digest.update(Path(pairs_path).read_bytes())
    else:
        # No pairs file (a bare corpus): one "write a note about <title>" pair per piece, so the
        # model still learns the chat format.
        pairs = [(f"Write a short note about “{title}”.", text) for title, text in zip(titles, texts) if title]
    origin = (f"the train split of {Path(pairs_path).name}" if pairs_path is not None and Path(pairs_path).exists()
              else "one “write a short note about <title>” pair per piece")
    return Corpus(texts=texts, titles=titles, pairs=pairs, pairs_origin=origin, fingerprint=digest.hexdigest()[:16])


@dataclasses.dataclass
class TokenData:
    stream: Any  # 1-D long tensor: every piece's ids followed by EOS, concatenated
    pair_rows: list[tuple[list[int], list[int]]]  # (prompt ids, response ids incl. end markers)
    shortened_prompts: int  # prompts whose context was cut from the front to fit


def tokenize_corpus(tokenizer: Any, corpus: Corpus, pair_len: int) -> TokenData:
    """Token ids for plain chunks and for chat-formatted pairs (prompt ids, response ids)."""
    import torch

    eos = tokenizer.eos_token_id
    stream: list[int] = []
    for text in corpus.texts:
        stream += tokenizer(text, add_special_tokens=False)["input_ids"] + [eos]
    pair_rows: list[tuple[list[int], list[int]]] = []
    shortened = 0
    max_prompt = pair_len // 2  # at least half of every pair row is response
    for prompt, response in corpus.pairs:
        fitted = fit_prompt(tokenizer, prompt, max_prompt)
        shortened += fitted != prompt
        user = [{"role": "user", "content": fitted}]
        prompt_ids = tokenizer.apply_chat_template(user, add_generation_prompt=True, return_dict=False)
        full_ids = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": response}], return_dict=False)
        if full_ids[: len(prompt_ids)] != prompt_ids:  # BPE merged across the boundary; keep the prompt exact
            full_ids = prompt_ids + tokenizer(response + EOT_TOKEN + "\n", add_special_tokens=False)["input_ids"]
        pair_rows.append((list(prompt_ids), list(full_ids[len(prompt_ids):]) + [eos]))
    return TokenData(stream=torch.tensor(stream, dtype=torch.long), pair_rows=pair_rows, shortened_prompts=shortened)


def fit_prompt(tokenizer: Any, prompt: str, max_tokens: int) -> str:
    """`prompt` shortened until its chat-templated ids fit `max_tokens`.

    Pair prompts are an instruction line, a blank line, then context (the essay so far); the
    instruction is kept and the context loses words from its front, since what comes right
    before the response matters most for continuing it.
    """
    def length(text: str) -> int:
        user = [{"role": "user", "content": text}]
        return len(tokenizer.apply_chat_template(user, add_generation_prompt=True, return_dict=False))

    if length(prompt) <= max_tokens:
        return prompt
    instruction, _, context = prompt.partition("\n\n")
    words = context.split(" ")
    low, high = 0, len(words)  # binary search: the most context words that still fit
    while low < high:
        keep = (low + high + 1) // 2
        if length(f"{instruction}\n\n…" + " ".join(words[len(words) - keep:])) <= max_tokens:
            low = keep
        else:
            high = keep - 1
    return f"{instruction}\n\n…" + " ".join(words[len(words) - low:]) if low else instruction


@dataclasses.dataclass
class Batch:
    input_ids: Any  # (rows, length)
    attention_mask: Any  # (rows, length); zeros only on causal pair padding
    prompt_lengths: Any  # (rows,)


class BatchSource:
    """Deterministic batches: even steps take random chunks of the corpus stream, odd steps
    take the next pairs of a seeded shuffle. Both families see the same order for a seed."""

    def __init__(self, data: TokenData, config: BuildConfig, family: str, eos_id: int, pad_id: int):
        import torch

        self.data, self.family, self.eos_id, self.pad_id = data, family, eos_id, pad_id
        self.chunk_len = min(config.chunk_len, len(data.stream) - 1)
        self.chunk_rows = max(1, config.tokens_per_batch // config.chunk_len)
        self.pair_len = config.pair_len
        self.pair_rows = max(1, config.tokens_per_batch // config.pair_len)
        self.generator = torch.Generator().manual_seed(config.seed)
        self._order: list[int] = []

    def batch(self, step: int) -> Batch:
        if step % 2 == 1 and self.data.pair_rows:
            return self._pair_batch()
        return self._chunk_batch()

    def _chunk_batch(self) -> Batch:
        import torch

        starts = torch.randint(0, len(self.data.stream) - self.chunk_len + 1, (self.chunk_rows,), generator=self.generator)
        ids = torch.stack([self.data.stream[start : start + self.chunk_len] for start in starts.tolist()])
        return Batch(ids, torch.ones_like(ids), torch.zeros(len(ids), dtype=torch.long))

    def _pair_batch(self) -> Batch:
        import torch

        rows, masks, prompt_lengths = [], [], []
        for _ in range(self.pair_rows):
            if not self._order:
                self._order = torch.randperm(len(self.data.pair_rows), generator=self.generator).tolist()
            prompt, response = self.data.pair_rows[self._order.pop()]
            ids = (prompt + response)[: self.pair_len]
            padding = self.pair_len - len(ids)
            if self.family == "masked":
                # LLaDA SFT: pad with EOS, which counts as response, so the model learns to stop.
                rows.append(ids + [self.eos_id] * padding)
                masks.append([1] * self.pair_len)
            else:
                rows.append(ids + [self.pad_id] * padding)
                masks.append([1] * len(ids) + [0] * padding)
            prompt_lengths.append(len(prompt))
        return Batch(torch.tensor(rows), torch.tensor(masks), torch.tensor(prompt_lengths))


# --- models --------------------------------------------------------------------------------


def make_model(plan: ModelPlan, tokenizer: Any, context_length: int, seed: int) -> Any:
    """A freshly initialised model for `plan` (same seed → same weights)."""
    import torch

    torch.manual_seed(seed)
    special = {
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.eos_token_id,
    }
    if plan.family == "masked":
        from transformers import ModernBertConfig, ModernBertForMaskedLM

        config = ModernBertConfig(
            vocab_size=len(tokenizer), hidden_size=plan.hidden_size, intermediate_size=plan.intermediate_size,
            num_hidden_layers=plan.num_layers, num_attention_heads=plan.num_heads,
            max_position_embeddings=context_length,
            global_attn_every_n_layers=plan.global_every, local_attention=plan.local_window or context_length,
            cls_token_id=tokenizer.eos_token_id, sep_token_id=tokenizer.eos_token_id,
            mask_token_id=tokenizer.mask_token_id, tie_word_embeddings=True, **special,
        )
        return ModernBertForMaskedLM(config)
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=plan.hidden_size, intermediate_size=plan.intermediate_size,
        num_hidden_layers=plan.num_layers, num_attention_heads=plan.num_heads, num_key_value_heads=plan.num_heads,
        max_position_embeddings=context_length, tie_word_embeddings=True, **special,
    )
    return LlamaForCausalLM(config)


def batch_loss(model: Any, batch: Batch, family: str, mask_id: int, mask_generator: Any) -> Any:
    """The training loss of one batch: masked diffusion or response-only causal CE."""
    from engine.train import objectives

    if family == "masked":
        return objectives.diffusion_training_loss(
            model, batch.input_ids, batch.prompt_lengths, mask_id,
            attention_mask=batch.attention_mask, generator=mask_generator,
        )
    labels = objectives.response_only_labels(
        batch.input_ids, batch.prompt_lengths, None, attention_mask=batch.attention_mask
    )
    return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=labels).loss


def lr_at(step: int, steps: int, decay_from: int, plan: ModelPlan) -> float:
    """Linear warmup, constant, then a cosine to `min_lr_share` of the peak from `decay_from` to `steps`.

    A warmup-stable-decay shape rather than one cosine over the whole run: a time budget on a
    shared machine cannot know its step count in advance, but it can decide when to start the
    decay. Either way the schedule is a function of (steps, decay_from), which the card records.
    """
    warm = min(1.0, (step + 1) / max(1, plan.warmup_steps))
    if step < decay_from:
        return plan.lr * warm
    progress = min(1.0, (step - decay_from) / max(1, steps - decay_from))
    decay = plan.min_lr_share + (1.0 - plan.min_lr_share) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return plan.lr * warm * decay


def _optimizer(model: Any, lr: float) -> Any:
    import torch

    # No weight decay on norms and biases (1-D tensors), the usual AdamW split.
    decay = [param for param in model.parameters() if param.dim() >= 2]
    no_decay = [param for param in model.parameters() if param.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-8)


@dataclasses.dataclass
class TrainResult:
    model: Any
    steps: int
    decay_from: int
    losses: list[float]
    seconds: float


def train(plan: ModelPlan, config: BuildConfig, tokenizer: Any, data: TokenData) -> Generator[Event, None, TrainResult]:
    """Train one model; yields progress, returns the model and the schedule it followed.

    With `plan.steps` the run is exactly that many steps. Otherwise it runs at peak lr until
    (1 - decay_share) of `plan.minutes` has passed, then fixes the step count from the pace so
    far so the cosine decay fills the rest of the budget.
    """
    import torch

    model = make_model(plan, tokenizer, config.context_length, config.seed).train()
    optimizer = _optimizer(model, plan.lr)
    source = BatchSource(data, config, plan.family, tokenizer.eos_token_id, tokenizer.pad_token_id)
    mask_generator = torch.Generator().manual_seed(config.seed + 1)
    budget = plan.minutes * 60.0
    if plan.steps is not None:
        steps = plan.steps
        decay_from = plan.decay_from if plan.decay_from is not None else steps // 2
    else:
        steps, decay_from = sys.maxsize, sys.maxsize  # fixed once the decay starts
    losses: list[float] = []
    started = time.perf_counter()
    step = 0
    while step < steps:
        elapsed = time.perf_counter() - started
        if step > 0 and plan.steps is None and decay_from == sys.maxsize and elapsed >= (1 - plan.decay_share) * budget:
            decay_from = step
            steps = step + max(1, round((budget - elapsed) / (elapsed / step)))
            yield BuildStage("schedule", f"{plan.name}: cosine decay from step {decay_from} to {steps}")
        lr = lr_at(step, steps, decay_from, plan)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = batch_loss(model, source.batch(step), plan.family, tokenizer.mask_token_id, mask_generator)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.item()))
        step += 1
        if step % config.log_every == 0 or step == steps:
            recent = losses[-config.log_every:]
            total = steps if steps != sys.maxsize else 0
            yield BuildStep(plan.name, step, total, sum(recent) / len(recent), lr, time.perf_counter() - started)
    return TrainResult(model.eval(), steps, decay_from, losses, time.perf_counter() - started)


# --- evaluation ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SampleReport:
    text: str
    token_ids: tuple[int, ...]
    content_tokens: int  # tokens before the first EOS / end-of-turn marker; metrics cover these
    distinct_1: float
    longest_run: int  # longest run of one token repeated back to back
    longest_repeated_span: int  # longest token span that occurs twice
    settings: str  # how it was sampled, for the card


def sample_report(folder: Path, family: str, prompt: str, tokens: int) -> SampleReport:
    """Generate `tokens` tokens at default settings through the engine's samplers and measure them."""
    from engine.judge import metrics
    from engine.models.loading import load_model

    loaded = load_model(str(folder), family=family, device="cpu")
    if family == "masked":
        from engine.sample.diffusion import SamplerSettings, sample

        settings = SamplerSettings(gen_length=tokens, steps=tokens, block_length=min(32, tokens))
        frames = sample(loaded, prompt, settings)
        final = _drain(frames)
        described = (f"engine.sample.diffusion.sample, defaults (steps={settings.steps}, gen_length={settings.gen_length}, "
                     f"block_length={settings.block_length}, temperature={settings.temperature}, "
                     f"remasking={settings.remasking})")
    else:
        from engine.sample.causal import stream_causal

        final = _drain(stream_causal(loaded, prompt, max_new_tokens=tokens, temperature=0.0, seed=0))
        described = f"engine.sample.causal.stream_causal, greedy (temperature 0), max_new_tokens={tokens}"
    ids = tuple(int(token) for token in final.token_ids)
    # Measure the answer itself: the EOS padding after an end marker would count as a "run".
    stops = {loaded.tokenizer.eos_token_id, loaded.tokenizer.convert_tokens_to_ids(EOT_TOKEN)}
    content = ids[: next((index for index, token in enumerate(ids) if token in stops), len(ids))]
    return SampleReport(
        text=final.text, token_ids=ids, content_tokens=len(content),
        distinct_1=float(metrics.distinct_n(content, 1)), longest_run=int(metrics.longest_run(content)),
        longest_repeated_span=int(metrics.longest_repeated_span(content)), settings=described,
    )


def _drain(frames: Generator[Any, None, Any]) -> Any:
    """Run a frame generator to the end and return its final value."""
    return run_to_end(frames)[1]


# --- saving --------------------------------------------------------------------------------


def parameter_count(model: Any) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(param.numel() for param in {id(p): p for p in model.parameters()}.values())


def folder_megabytes(folder: Path) -> float:
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file()) / 1e6


def save_atomically(folder: Path, write: Callable[[Path], None]) -> None:
    """Write a whole model folder next to its target, then swap it in with renames."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        write(staging)
        old = folder.parent / f".{folder.name}-old"
        if old.exists():
            shutil.rmtree(old)
        if folder.exists():
            os.replace(folder, old)
        os.replace(staging, folder)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def model_card(info: dict[str, Any]) -> str:
    """The README.md that sits beside the weights: how built, size, loss, honest quality."""
    plan = info["plan"]
    objective = (
        "LLaDA's masked-diffusion objective (`engine/train/objectives.py`): per sequence t ~ U(0,1), "
        "p = (1-ε)t + ε with ε = 1e-3, response tokens masked with probability p (prompts never "
        "masked; plain chunks are all response), loss = Σ CE/p over masked tokens ÷ response length, "
        "batch mean. Pairs are padded with EOS, which counts as response."
        if plan["family"] == "masked"
        else "next-token cross-entropy; on chat-formatted pairs only the response (and its end markers) "
        "is trained (`engine.train.objectives.response_only_labels`)."
    )
    architecture = "ModernBertForMaskedLM (bidirectional)" if plan["family"] == "masked" else "LlamaForCausalLM"
    use = (
        "`voicebench generate --model data/models/demo-diffusion --prompt \"…\" --watch`"
        if plan["family"] == "masked"
        else "`voicebench generate --model data/models/demo-ar --prompt \"…\"`"
    )
    from engine.judge import metrics

    content = info["sample_ids"][: info["content_tokens"]]
    if metrics.is_repetition_cascade(content):
        verdict = ("At default settings it **degenerates into a repetition cascade** (below): the budget was too "
                   "small for it to get past the plateau where its predictions ignore context, so treat it as a "
                   "model that shows the sampler working and the cascade signals firing, not as a writer.")
    else:
        verdict = "It is **not** a useful writer: expect word salad that uses the corpus's words, not sense."
    return f"""# {info['name']}

A tiny {"masked-diffusion" if plan["family"] == "masked" else "causal"} language model trained from scratch
on the voicebench demo corpus (the fictional newsletter *The Mending Hour*). It exists so every
voicebench feature runs offline on a laptop CPU. {verdict}

| | |
| --- | --- |
| architecture | {architecture}, hidden {plan['hidden_size']}, {plan['num_layers']} layers, {plan['num_heads']} heads, MLP {plan['intermediate_size']}, context {info['context_length']}{_window_note(plan)} |
| parameters | {info['parameters']:,} (tied input/output embeddings) |
| size on disk | {info['megabytes']:.1f} MB (float32 safetensors + tokenizer) |
| tokenizer | byte-level BPE, {info['vocab_size']} tokens, trained on the corpus; `<|pad|>`, `<|endoftext|>` (EOS), `<|mask|>`, `<|end|>` (end of turn), role markers; chat template |
| data | {info['pieces']} cleaned source pieces ({info['stream_tokens']:,} tokens) + {info['pair_rows']} chat-formatted pairs ({info['pairs_origin']}; {info['shortened_prompts']} long prompts lost context words from the front to fit {info['pair_len'] // 2} tokens); fingerprint of sources + pairs `{info['fingerprint']}` |
| objective | {objective} |
| training | {info['steps']} steps of AdamW (β 0.9/0.98, weight decay 0.01, clip 1.0), peak lr {plan['lr']}, {plan['warmup_steps']}-step linear warmup, constant until step {info['decay_from']}, then cosine to {plan['min_lr_share']}× at the end; steps alternate {info['chunk_rows']}×{info['chunk_len']}-token plain chunks and {info['pair_batch_rows']}×{info['pair_len']}-token pairs; seed {info['seed']}; {info['threads']} CPU threads; {info['train_seconds'] / 60:.1f} minutes |
| final loss | {info['final_loss']:.3f} (mean of the last {info['final_loss_window']} steps; first {info['log_every']} steps: {info['first_loss']:.3f}) |

## Honest quality

One {info['eval_tokens']}-token answer to *"{info['eval_prompt']}"*, sampled with {info['sample_settings']}:

> {info['sample_text'].strip().replace(chr(10), ' ') or '(empty)'}

- tokens before the first end marker: **{info['content_tokens']}** of {info['eval_tokens']} (the metrics below cover these)
- distinct-1 (unique tokens ÷ tokens): **{info['distinct_1']:.2f}**
- longest run of one repeated token: **{info['longest_run']}**
- longest token span that occurs twice: **{info['longest_repeated_span']}**

## Use

{use}, or from the Canvas screen (F3).

## Rebuild

Built with:

    {info['command']}

The exact same weights come back from (same seed, same fixed step counts, same thread count):

    {info['repeat_command']}

`engine/models/demo.py` holds the whole recipe; `build.json` beside this file records every number above.
"""


def _window_note(plan: dict[str, Any]) -> str:
    window = plan.get("local_window")
    if not window:
        return ""
    return f"; layers not divisible by {plan.get('global_every', 1)} attend within an {window}-token window (the rest globally)"


def rewrite_card(folder: Path) -> None:
    """Re-render a model folder's README.md from its build.json (after a card template change)."""
    info = json.loads((Path(folder) / "build.json").read_text(encoding="utf-8"))
    _write_text(Path(folder) / "README.md", model_card(info))


# --- the build -----------------------------------------------------------------------------


def build_demo_models(config: BuildConfig, command: str = "") -> Generator[Event, None, dict[str, Any]]:
    """Build both models into `config.out_dir`; yields progress events, returns {name: info}."""
    import torch
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.set_num_threads(config.threads)
    yield BuildStage("corpus", f"reading {config.sources_dir}")
    corpus = read_corpus(config.sources_dir, config.pairs_path)
    yield BuildStage("tokenizer", f"training a {config.vocab_size}-token BPE on {len(corpus.texts)} pieces")
    with tempfile.TemporaryDirectory() as scratch:
        from engine.models.demo_tokenizer import train_bpe_tokenizer

        tokenizer_texts = corpus.texts + [prompt for prompt, _ in corpus.pairs]
        train_bpe_tokenizer(tokenizer_texts, scratch, vocab_size=config.vocab_size)
        tokenizer = AutoTokenizer.from_pretrained(scratch)
    data = tokenize_corpus(tokenizer, corpus, config.pair_len)
    yield BuildStage("data", f"{len(data.stream)} stream tokens, {len(data.pair_rows)} pairs "
                             f"({data.shortened_prompts} prompts cut to {config.pair_len // 2} tokens)")

    plans = [config.diffusion, config.ar]
    trained: dict[str, TrainResult] = {}
    for plan in plans:
        budget = f"{plan.steps} steps" if plan.steps is not None else f"{plan.minutes} minutes"
        yield BuildStage("train", f"{plan.name}: {budget}")
        trained[plan.name] = yield from train(plan, config, tokenizer, data)
    schedule = {name: (result.steps, result.decay_from) for name, result in trained.items()}
    repeat_command = (
        f"python -m engine.models.demo --out {config.out_dir} --seed {config.seed} --threads {config.threads} "
        f"--steps-diffusion {schedule[config.diffusion.name][0]} --decay-from-diffusion {schedule[config.diffusion.name][1]} "
        f"--steps-ar {schedule[config.ar.name][0]} --decay-from-ar {schedule[config.ar.name][1]}"
    )
    results: dict[str, Any] = {}
    for plan in plans:
        result = trained.pop(plan.name)
        model, steps, losses, train_seconds = result.model, result.steps, result.losses, result.seconds
        window = max(1, min(100, steps // 20))
        info: dict[str, Any] = {
            "name": plan.name, "plan": dataclasses.asdict(plan), "steps": steps, "decay_from": result.decay_from,
            "parameters": parameter_count(model), "context_length": config.context_length,
            "vocab_size": len(tokenizer), "pieces": len(corpus.texts), "stream_tokens": len(data.stream),
            "pair_rows": len(data.pair_rows), "shortened_prompts": data.shortened_prompts,
            "pairs_origin": corpus.pairs_origin, "fingerprint": corpus.fingerprint,
            "chunk_len": config.chunk_len, "pair_len": config.pair_len,
            "chunk_rows": max(1, config.tokens_per_batch // config.chunk_len),
            "pair_batch_rows": max(1, config.tokens_per_batch // config.pair_len),
            "seed": config.seed, "threads": config.threads, "train_seconds": round(train_seconds, 1),
            "final_loss": sum(losses[-window:]) / window, "final_loss_window": window,
            "first_loss": sum(losses[: config.log_every]) / len(losses[: config.log_every]),
            "log_every": config.log_every, "eval_prompt": config.eval_prompt, "eval_tokens": config.eval_tokens,
            "command": command or repeat_command, "repeat_command": repeat_command,
            "torch": torch.__version__,
        }
        target = Path(config.out_dir) / plan.name

        def write(staging: Path, model: Any = model) -> None:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            report = sample_report(staging, plan.family, config.eval_prompt, config.eval_tokens)
            info.update(sample_text=report.text, sample_ids=list(report.token_ids), distinct_1=report.distinct_1,
                        longest_run=report.longest_run, longest_repeated_span=report.longest_repeated_span,
                        content_tokens=report.content_tokens, sample_settings=report.settings)
            info["megabytes"] = folder_megabytes(staging) + 0.01  # + the card itself, roughly
            _write_text(staging / "build.json", json.dumps(info, indent=2, ensure_ascii=False) + "\n")
            _write_text(staging / "README.md", model_card(info))

        yield BuildStage("save", f"{plan.name}: sampling {config.eval_tokens} tokens and saving to {target}")
        save_atomically(target, write)
        yield BuildDone(plan.name, str(target), info["parameters"], steps, round(info["final_loss"], 4),
                        info["train_seconds"], info["sample_text"], round(info["distinct_1"], 4), info["longest_run"])
        results[plan.name] = info
    total = sum(folder_megabytes(Path(config.out_dir) / plan.name) for plan in plans)
    yield BuildStage("done", f"{total:.1f} MB in {config.out_dir}")
    return results


# --- command line --------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m engine.models.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/models", help="folder that receives demo-diffusion/ and demo-ar/")
    parser.add_argument("--root", default=".", help="workspace whose data/sources and data/pairs.jsonl are read")
    parser.add_argument("--minutes-diffusion", type=float, default=19.0, help="training budget of the diffusion model")
    parser.add_argument("--minutes-ar", type=float, default=6.0, help="training budget of the causal model")
    parser.add_argument("--steps-diffusion", type=int, help="fixed step count (overrides --minutes-diffusion)")
    parser.add_argument("--steps-ar", type=int, help="fixed step count (overrides --minutes-ar)")
    parser.add_argument("--decay-from-diffusion", type=int, help="with --steps-diffusion: step where the lr decay starts")
    parser.add_argument("--decay-from-ar", type=int, help="with --steps-ar: step where the lr decay starts")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights, data order and masks")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (results can differ by thread count)")
    parser.add_argument("--json", action="store_true", help="print one JSON event a line")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    # Before torch loads: on a busy shared CPU, OpenMP threads that spin while waiting made
    # training steps ~4x slower than threads that sleep (measured on the 2-core build machine).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = parse_args(argv)
    base = default_config(args.out, args.root)
    config = dataclasses.replace(
        base,
        seed=args.seed,
        threads=args.threads,
        diffusion=dataclasses.replace(base.diffusion, minutes=args.minutes_diffusion, steps=args.steps_diffusion,
                                      decay_from=args.decay_from_diffusion),
        ar=dataclasses.replace(base.ar, minutes=args.minutes_ar, steps=args.steps_ar, decay_from=args.decay_from_ar),
    )
    command = "python -m engine.models.demo " + " ".join(sys.argv[1:] if argv is None else argv)
    for event in build_demo_models(config, command=command.strip()):
        if args.json:
            print(event.to_json(), flush=True)
        elif isinstance(event, BuildStep):
            print(f"{event.model} step {event.step}/{event.steps} loss {event.loss:.3f} "
                  f"lr {event.lr:.2e} {event.seconds:.0f}s", flush=True)
        elif isinstance(event, BuildDone):
            print(f"{event.model}: {event.parameters:,} params, final loss {event.final_loss:.3f}, "
                  f"distinct-1 {event.distinct_1:.2f}, longest run {event.longest_run}\n  {event.sample!r}", flush=True)
        else:
            print(f"[{event.stage}] {event.message}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
