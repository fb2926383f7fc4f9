"""The masked-diffusion sampler: LLaDA's semi-autoregressive low-confidence remasking.

One implementation, used by the Canvas screen, `voicebench generate` and the tests. It is a
generator: `sample(loaded, prompt, settings)` yields one `StepFrame` per step (what was
committed, with what confidence, masks left, live degeneration signals) and returns a
`FinalFrame` (`result = yield from sample(...)`, or read `StopIteration.value`).

The algorithm (Nie et al. 2025, "Large Language Diffusion Models", Alg. 5 with its
semi-autoregressive blocks):
- canvas = prompt + `gen_length` masks, cut into blocks of `block_length`; each block gets
  `steps / blocks` steps and its masks are spread over them: k_i = m // S, plus one for the
  first m % S steps;
- each step runs the model once over the whole canvas; with `cfg_scale` w > 0 a second row
  has every prompt token masked and logits = u + (w + 1)(c − u);
- a token is proposed at every masked position of the current block: argmax at temperature
  0, else Gumbel-max in float64, argmax exp(l) / (−log U)^T;
- the k proposals with the highest score are committed for good: the score is the softmax
  probability of the proposed token (`low_confidence`) or a uniform draw (`random`);
  positions after the current block and committed positions are never chosen.
- fast mode (`threshold`, Fast-dLLM's confidence-aware parallel decoding): each step
  commits every masked position of the block whose score beats the threshold, at least one,
  until the block is full; `steps` is then unused and forward passes are reported.

Choices beyond the paper, all deterministic given the seed:
- randomness comes from one `torch.Generator` seeded with `settings.seed`; each step draws
  Gumbel uniforms of shape (block_length, vocab) (temperature > 0), then random-remasking
  scores of shape (block_length,), both in float64 — only the current block can be
  committed, so noise elsewhere would be wasted (LLaDA's code draws it for the whole canvas);
- exp(l) is computed as exp(l − max l): the argmax is the same and it cannot overflow;
- the mask token itself is never proposed (a committed mask would be a hole that never fills);
- ties in score go to the leftmost position.
- `suppress_eos` forbids EOS; `deprioritise_eos` ranks EOS/EOT proposals after all others.

Work that cannot change the result is skipped: the LM head runs on the current block only
(`model_logits(rows=…)`); the float64 arithmetic touches only its masked rows, in cache-sized
chunks of rows, and yields only the chosen token's probability (e_tok / Σ e, no whole softmax); the live
signals follow each step's commits (`LiveSignals`) instead of re-reading the whole canvas.

There is no prefix KV cache: with bidirectional attention the prompt's keys depend on the
masks, so a cache would only approximate this algorithm (see Fast-dLLM) — a later option.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any, ClassVar

from engine.events import Event
from engine.judge.metrics import LiveSignals, text_script
from engine.models.loading import DIFFUSION_FAMILIES, FAMILY_DREAM, FAMILY_LLADA, LoadedModel

# LLaDA-8B's special token ids (its tokenizer: <|mdm_mask|>, <|endoftext|>, <|eot_id|>).
LLADA_MASK_ID = 126336
LLADA_EOS_ID = 126081
LLADA_EOT_ID = 126348

REMASKING_CHOICES = ("low_confidence", "random")
# Token spellings that end a chat turn in the tokenizers we meet (demo, Llama-3/LLaDA, ChatML).
END_OF_TURN_TOKENS = ("<|end|>", "<|eot_id|>", "<|im_end|>")
# Deprioritised proposals lose this much score: below every probability or uniform draw.
DEPRIORITISE_PENALTY = 2.0
# The proposal works through a block's masked rows in chunks of about this many logits (1 MB of
# float64: one row of LLaDA's 126,464-token vocabulary), small enough to stay in cache.
PROPOSAL_CHUNK = 1 << 17


class SamplerSettingsError(ValueError):
    """Sampler settings that cannot work together; the message says which and what to do."""


@dataclasses.dataclass(frozen=True)
class SamplerSettings:
    steps: int = 64  # model calls in exact mode, spread evenly over the blocks
    gen_length: int = 64  # tokens to generate (the masked canvas after the prompt)
    block_length: int = 32  # semi-autoregressive block size; divides gen_length
    temperature: float = 0.0  # 0 = argmax; > 0 = Gumbel-max sampling in float64
    cfg_scale: float = 0.0  # classifier-free guidance weight w; 0 = off
    remasking: str = "low_confidence"  # "low_confidence" | "random": which proposals to keep
    seed: int = 0  # seeds the sampler's own torch.Generator
    threshold: float | None = None  # fast mode: commit every proposal scoring above this
    suppress_eos: bool = False  # never propose EOS
    deprioritise_eos: bool = False  # commit EOS/EOT proposals only after all others
    use_template: bool = True  # wrap the prompt in the tokenizer's chat template

    @property
    def blocks(self) -> int:
        return self.gen_length // self.block_length

    def validate_numbers(self) -> SamplerSettings:
        """The checks every sampler needs (causal ones too): numbers that are numbers.
        NaN slips through every comparison (nan < 0 is False), so finiteness comes first."""
        for name in ("temperature", "cfg_scale", "threshold"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                      or not math.isfinite(value)):
                raise SamplerSettingsError(f"{name} {value!r} must be a finite number: give an ordinary number.")
        for name in ("steps", "gen_length", "block_length", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise SamplerSettingsError(f"{name} {value!r} must be a whole number.")
        if self.temperature < 0:
            raise SamplerSettingsError(f"temperature {self.temperature} must be 0 or more.")
        if self.cfg_scale < 0:
            raise SamplerSettingsError(f"cfg_scale {self.cfg_scale} must be 0 or more.")
        if self.seed < 0:  # as [sampler] seed in voicebench.toml: torch seeds are not negative
            raise SamplerSettingsError(f"seed {self.seed} must be 0 or more.")
        return self

    def validate(self) -> SamplerSettings:
        """Raise SamplerSettingsError for impossible settings; return self."""
        self.validate_numbers()
        if self.gen_length <= 0 or self.block_length <= 0:
            raise SamplerSettingsError(
                f"gen_length ({self.gen_length}) and block_length ({self.block_length}) must be positive."
            )
        if self.gen_length % self.block_length:
            raise SamplerSettingsError(
                f"gen_length {self.gen_length} is not divisible by block_length {self.block_length}: "
                f"pick a block length that divides it (e.g. {_divisor_hint(self.gen_length, self.block_length)})."
            )
        if self.threshold is None:
            if self.steps <= 0 or self.steps % self.blocks:
                raise SamplerSettingsError(
                    f"steps {self.steps} is not a positive multiple of the number of blocks "
                    f"{self.blocks} (gen_length {self.gen_length} / block_length {self.block_length}): "
                    f"use steps = {self.blocks * max(1, -(-self.steps // self.blocks))}."
                )
        elif not 0.0 < self.threshold <= 1.0:
            raise SamplerSettingsError(f"threshold {self.threshold} must be in (0, 1].")
        if self.remasking not in REMASKING_CHOICES:
            raise SamplerSettingsError(
                f"remasking {self.remasking!r} is not one of {', '.join(REMASKING_CHOICES)}."
            )
        return self


def _divisor_hint(gen_length: int, block_length: int) -> int:
    divisors = [size for size in range(1, gen_length + 1) if gen_length % size == 0]
    return min(divisors, key=lambda size: abs(size - block_length))


@dataclasses.dataclass(frozen=True)
class StepFrame(Event):
    """One sampler step. `committed` holds (pos, token_id, confidence), pos counted from the
    start of the generated region; confidence is the model's probability of the token."""

    kind: ClassVar[str] = "step"
    step: int  # 1-based
    block: int  # 0-based
    committed: tuple[tuple[int, int, float], ...]
    masked: int  # masks left on the canvas
    forward_passes: int  # model calls so far
    signals: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class FinalFrame(Event):
    """The result: the generated ids (EOS padding included) and their text up to EOS/EOT."""

    kind: ClassVar[str] = "final"
    prompt_ids: tuple[int, ...]
    token_ids: tuple[int, ...]
    text: str
    forward_passes: int
    seconds: float


FRAME_TYPES: dict[str, type[Event]] = {"step": StepFrame, "final": FinalFrame}


@dataclasses.dataclass(frozen=True)
class SpecialIds:
    mask: int
    eos: int | None
    eot: int | None

    @property
    def end_ids(self) -> tuple[int, ...]:
        return tuple(token_id for token_id in (self.eos, self.eot) if token_id is not None)


def special_ids(loaded: LoadedModel) -> SpecialIds:
    """Mask/EOS/EOT ids: LLaDA's fixed constants, else the tokenizer's own tokens."""
    if loaded.family == FAMILY_LLADA:
        return SpecialIds(mask=LLADA_MASK_ID, eos=LLADA_EOS_ID, eot=LLADA_EOT_ID)
    tokenizer = loaded.tokenizer
    if tokenizer.mask_token_id is None:
        raise SamplerSettingsError(
            f"{loaded.path}: the tokenizer has no mask token, so this model cannot be sampled as a "
            "masked-diffusion model. Set `mask_token` in its tokenizer_config.json, or use a causal family."
        )
    vocab = tokenizer.get_vocab()
    eot = next((vocab[token] for token in END_OF_TURN_TOKENS if token in vocab), None)
    return SpecialIds(mask=tokenizer.mask_token_id, eos=tokenizer.eos_token_id, eot=eot)


def encode_prompt(tokenizer: Any, prompt: str, use_template: bool = True) -> list[int]:
    """Prompt ids: one user turn in the chat template (when the tokenizer has one), else plain."""
    if use_template and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(tokenizer(prompt)["input_ids"])


def transfer_schedule(masked_count: int, steps: int) -> list[int]:
    """How many masks to commit at each of `steps` steps: m // S, plus one for the first m % S."""
    base, extra = divmod(masked_count, steps)
    return [base + (1 if step < extra else 0) for step in range(steps)]


def shift_logits(logits: Any) -> Any:
    """Dream-style models predict token i from position i−1: move each row one to the right
    (the first position keeps its own logits, it is never masked: it is the prompt)."""
    import torch

    return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)


def model_logits(model: Any, canvas: Any, family: str, rows: slice | None = None) -> Any:
    """Per-position logits (batch, positions, vocab) for a canvas, whatever the family's convention.

    With `rows`, only those canvas positions are returned — and when the model exposes its
    LM head (`get_output_embeddings`), the head runs on those positions alone: the network
    still reads the whole canvas, but the vocabulary projection, the costliest layer of a
    small model and a large share of LLaDA's, skips positions that cannot be committed.
    """
    handle = None
    if rows is not None and family != FAMILY_DREAM:  # Dream needs the position before each row
        head = _output_head(model)
        if head is not None:
            length = canvas.shape[1]

            def keep_rows(_module: Any, args: tuple) -> tuple | None:
                hidden = args[0] if args else None
                if getattr(hidden, "dim", lambda: 0)() == 3 and hidden.shape[1] == length:
                    return (hidden[:, rows], *args[1:])
                return None  # an unexpected layout: leave it, slice the logits below instead

            handle = head.register_forward_pre_hook(keep_rows)
    try:
        logits = model(input_ids=canvas).logits
    finally:
        if handle is not None:
            handle.remove()
    if family == FAMILY_DREAM:
        logits = shift_logits(logits)
    if rows is not None and logits.shape[1] == canvas.shape[1]:
        logits = logits[:, rows]
    return logits


def _output_head(model: Any) -> Any:
    try:
        return model.get_output_embeddings()
    except (AttributeError, NotImplementedError, ValueError):
        return None


def sample(loaded: LoadedModel, prompt: str, settings: SamplerSettings) -> Generator[StepFrame, None, FinalFrame]:
    """Sample a reply to `prompt`; yields StepFrames, returns the FinalFrame with its text."""
    if loaded.family not in DIFFUSION_FAMILIES:
        raise SamplerSettingsError(
            f"{loaded.path}: a {loaded.family!r} model is not a masked-diffusion model; "
            "generate with engine.sample.causal.stream_causal (the CLI does this for you)."
        )
    settings.validate()
    tokenizer = loaded.tokenizer
    ids = special_ids(loaded)
    prompt_ids = encode_prompt(tokenizer, prompt, settings.use_template)
    _check_length(loaded, len(prompt_ids) + settings.gen_length)

    script_cache: dict[int, str | None] = {}

    def token_script(token_id: int) -> str | None:
        if token_id not in script_cache:
            script_cache[token_id] = text_script(tokenizer.decode([token_id], skip_special_tokens=True))
        return script_cache[token_id]

    final = yield from sample_ids(
        loaded.model, prompt_ids, ids.mask, settings, family=loaded.family, eos_id=ids.eos, eot_id=ids.eot,
        token_script=token_script, prompt_script=text_script(prompt),
    )
    return dataclasses.replace(final, text=decode_reply(tokenizer, final.token_ids, ids.end_ids))


def decode_reply(tokenizer: Any, token_ids: Sequence[int], end_ids: Sequence[int]) -> str:
    """The text of the generated ids up to the first EOS/EOT, special tokens dropped."""
    ends = set(end_ids)
    cut = next((index for index, token_id in enumerate(token_ids) if token_id in ends), len(token_ids))
    return tokenizer.decode(list(token_ids[:cut]), skip_special_tokens=True)


def _check_length(loaded: LoadedModel, length: int) -> None:
    config = loaded.model.config
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "max_sequence_length", None)
    if limit and length > limit:
        raise SamplerSettingsError(
            f"{loaded.path}: prompt + gen_length is {length} tokens but the model takes at most {limit}; "
            "shorten the prompt or lower gen_length."
        )


def sample_ids(
    model: Any,
    prompt_ids: Sequence[int],
    mask_id: int,
    settings: SamplerSettings,
    *,
    family: str = "masked",
    eos_id: int | None = None,
    eot_id: int | None = None,
    token_script: Callable[[int], str | None] | None = None,
    prompt_script: str | None = None,
) -> Generator[StepFrame, None, FinalFrame]:
    """The sampler on ids: yields a StepFrame per step, returns a FinalFrame (text left empty)."""
    import torch

    settings.validate()
    started = time.perf_counter()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    prompt_length, gen_length, block_length = len(prompt_ids), settings.gen_length, settings.block_length
    canvas = torch.full((1, prompt_length + gen_length), mask_id, dtype=torch.long, device=device)
    canvas[0, :prompt_length] = torch.tensor(list(prompt_ids), dtype=torch.long, device=device)
    still_masked = torch.ones(gen_length, dtype=torch.bool, device=device)  # over the generated region
    banned_ids = [mask_id] + ([eos_id] if settings.suppress_eos and eos_id is not None else [])
    end_ids = [token_id for token_id in (eos_id, eot_id) if token_id is not None]
    deprioritised = torch.tensor(end_ids if settings.deprioritise_eos else [], dtype=torch.long, device=device)
    live = LiveSignals(gen_length, end_ids, token_script or (lambda _token_id: None), prompt_script)
    masks_left = gen_length
    steps_per_block = settings.steps // settings.blocks
    forward_passes = step = 0

    with torch.inference_mode():
        for block in range(settings.blocks):
            offset = block * block_length  # block start within the generated region
            start = prompt_length + offset  # ... and within the canvas
            schedule = transfer_schedule(block_length, steps_per_block) if settings.threshold is None else None
            block_step = 0
            while (block_step < steps_per_block) if schedule is not None else bool(still_masked[offset:offset + block_length].any()):
                block_logits = _block_logits(model, canvas, family, start, block_length, prompt_length, mask_id, settings.cfg_scale)
                forward_passes += 1
                rows = still_masked[offset:offset + block_length].nonzero().squeeze(1)  # (r,) masked rows of the block
                tokens, probabilities, scores = _propose(
                    block_logits, rows, settings, generator, banned_ids, deprioritised
                )
                order = torch.sort(scores, descending=True, stable=True).indices  # ties: leftmost first
                if schedule is not None:
                    chosen = order[: schedule[block_step]]
                else:
                    above = (scores > settings.threshold).nonzero().squeeze(1)
                    chosen = above if above.numel() else order[:1]
                chosen = chosen.sort().values  # report in canvas order
                positions = rows[chosen] + offset
                canvas[0, prompt_length + positions] = tokens[chosen]
                still_masked[positions] = False
                committed = tuple(
                    (position, token_id, round(probability, 6))
                    for position, token_id, probability in zip(
                        positions.tolist(), tokens[chosen].tolist(), probabilities[chosen].tolist()
                    )
                )
                for position, token_id, _ in committed:  # signals follow this step's commits only
                    live.commit(position, token_id)
                masks_left -= len(committed)
                step += 1
                block_step += 1
                yield StepFrame(
                    step=step, block=block, committed=committed, masked=masks_left,
                    forward_passes=forward_passes, signals=live.signals(),
                )

    return FinalFrame(
        prompt_ids=tuple(int(token_id) for token_id in prompt_ids),
        token_ids=tuple(canvas[0, prompt_length:].tolist()),
        text="",
        forward_passes=forward_passes,
        seconds=round(time.perf_counter() - started, 4),
    )


def _block_logits(
    model: Any, canvas: Any, family: str, start: int, block_length: int,
    prompt_length: int, mask_id: int, cfg_scale: float,
) -> Any:
    """(block_length, vocab) logits of the current block after classifier-free guidance."""
    import torch

    rows = slice(start, start + block_length)
    if cfg_scale <= 0:
        return model_logits(model, canvas, family, rows)[0]
    unconditional = canvas.clone()
    unconditional[0, :prompt_length] = mask_id
    logits = model_logits(model, torch.cat([canvas, unconditional]), family, rows)
    conditional, unconditional_logits = logits[0], logits[1]
    return unconditional_logits + (cfg_scale + 1.0) * (conditional - unconditional_logits)


def _propose(
    block_logits: Any, rows: Any, settings: SamplerSettings, generator: Any,
    banned_ids: list[int], deprioritised: Any,
) -> tuple[Any, Any, Any]:
    """Proposed token, its probability and its ranking score for each masked row of the block.

    Random draws always cover the whole block (see the module docstring), so the stream of
    random numbers does not depend on how many masks are left.

    Per masked row, in float64 (which holds every float32/bfloat16 logit exactly):
    e = exp(l − max l) once, in place in one reused buffer; the token is the first index of
    the largest logit (T = 0) or of the Gumbel weight e / (−log U)^T (T > 0, computed in place
    on the block's uniforms); its probability is e_tok / Σ e — the softmax's value at the token
    without a softmax over the whole vocabulary. Rows go through in chunks of about
    `PROPOSAL_CHUNK` numbers, so a chunk stays in cache across these passes: over the whole
    (rows × 126k) block at once each pass went out to memory, and at LLaDA's vocabulary the
    proposal cost several times a small model's forward pass; a small vocabulary still takes
    the block in one chunk.
    """
    import torch

    block_length, vocab_size = block_logits.shape
    device = block_logits.device
    noise = None
    if settings.temperature > 0:
        noise = torch.rand((block_length, vocab_size), dtype=torch.float64, generator=generator, device=device)
    banned = torch.tensor(banned_ids, dtype=torch.long, device=device)
    chunk_rows = max(1, PROPOSAL_CHUNK // vocab_size)
    buffer = torch.empty((min(chunk_rows, len(rows)), vocab_size), dtype=torch.float64, device=device)
    tokens, probabilities = [], []
    for first in range(0, len(rows), chunk_rows):
        chunk = rows[first:first + chunk_rows]
        exponentials = buffer[: len(chunk)]
        exponentials.copy_(_rows_of(block_logits, chunk))
        exponentials[:, banned] = float("-inf")
        if noise is None:
            row_max, chunk_tokens = exponentials.max(dim=1)  # first maximal index, as argmax
        else:
            row_max = exponentials.amax(dim=1)  # the token comes from the noise: no index needed
        exponentials.sub_(row_max[:, None]).exp_()  # e = exp(l − max)
        if noise is not None:
            # Gumbel-max in the form exp(l − max) / (−log U)^T (the max shift keeps the argmax);
            # the uniforms are ours: the arithmetic runs in place on them.
            weights = _rows_of(noise, chunk).log_().neg_()
            if settings.temperature != 1.0:
                weights.pow_(settings.temperature)
            chunk_tokens = torch.div(exponentials, weights, out=weights).max(dim=1).indices
        tokens.append(chunk_tokens)
        probabilities.append(exponentials.gather(1, chunk_tokens[:, None]).squeeze(1) / exponentials.sum(dim=1))
    tokens = torch.cat(tokens) if tokens else torch.empty(0, dtype=torch.long, device=device)
    probabilities = torch.cat(probabilities) if probabilities else torch.empty(0, dtype=torch.float64, device=device)
    if settings.remasking == "random":
        scores = torch.rand((block_length,), dtype=torch.float64, generator=generator, device=device)[rows]
    else:
        scores = probabilities.clone()
    if deprioritised.numel():
        scores = torch.where(torch.isin(tokens, deprioritised), scores - DEPRIORITISE_PENALTY, scores)
    return tokens, probabilities, scores


def _rows_of(matrix: Any, rows: Any) -> Any:
    """matrix[rows] for ascending row indices: a view when they are consecutive (the usual case),
    else an `index_select` copy (fancy indexing is several times slower on large rows)."""
    first, last = int(rows[0]), int(rows[-1])
    if last - first + 1 == len(rows):
        return matrix[first:last + 1]
    return matrix.index_select(0, rows)
