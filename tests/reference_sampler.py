"""A naive reference of the LLaDA sampler, for equivalence tests and the speed benchmark.

Written for obviousness, not speed: the whole canvas's logits go to float64, guidance is
applied to every position, and choosing which masks to commit is a plain Python sort over
positions. It follows the same conventions as `engine.sample.diffusion` (documented there): per
step, Gumbel uniforms of shape (block_length, vocab) and then random-remasking scores of
shape (block_length,) from one seeded generator; the mask token is never proposed; ties go
to the leftmost position. Same seed → the same tokens as the engine, token for token.
"""

from __future__ import annotations

import math

import torch


def reference_sample(
    model,
    prompt_ids: list[int],
    mask_id: int,
    *,
    steps: int,
    gen_length: int,
    block_length: int,
    temperature: float = 0.0,
    cfg_scale: float = 0.0,
    remasking: str = "low_confidence",
    seed: int = 0,
    threshold: float | None = None,
    eos_id: int | None = None,
    eot_id: int | None = None,
    suppress_eos: bool = False,
    deprioritise_eos: bool = False,
) -> tuple[list[int], int, list[int]]:
    """Return (generated ids, forward passes, tokens committed at each step)."""
    generator = torch.Generator().manual_seed(seed)
    prompt_length = len(prompt_ids)
    canvas = [*prompt_ids] + [mask_id] * gen_length
    is_committed = [True] * prompt_length + [False] * gen_length
    blocks = gen_length // block_length
    steps_per_block = steps // blocks
    forward_passes = 0
    commits_per_step = []

    with torch.no_grad():
        for block in range(blocks):
            start = prompt_length + block * block_length
            end = start + block_length
            # Masks in the block at its start, spread over its steps.
            masked_at_start = sum(1 for pos in range(start, end) if not is_committed[pos])
            schedule = [masked_at_start // steps_per_block] * steps_per_block
            for step in range(masked_at_start % steps_per_block):
                schedule[step] += 1
            block_step = 0
            while True:
                masked_positions = [pos for pos in range(start, end) if not is_committed[pos]]
                if threshold is None and block_step == steps_per_block:
                    break
                if threshold is not None and not masked_positions:
                    break
                # One forward pass over the whole canvas (two rows with guidance).
                conditional = torch.tensor([canvas])
                if cfg_scale > 0:
                    unconditional = torch.tensor([[mask_id] * prompt_length + canvas[prompt_length:]])
                    both = model(input_ids=torch.cat([conditional, unconditional])).logits
                    cond_logits, uncond_logits = both[0], both[1]
                    logits = uncond_logits + (cfg_scale + 1.0) * (cond_logits - uncond_logits)
                else:
                    logits = model(input_ids=conditional).logits[0]
                forward_passes += 1
                logits = logits.double()  # (canvas length, vocab)
                logits[:, mask_id] = -math.inf
                if suppress_eos and eos_id is not None:
                    logits[:, eos_id] = -math.inf
                vocab_size = logits.shape[1]
                uniforms = None
                if temperature > 0:
                    uniforms = torch.rand((block_length, vocab_size), dtype=torch.float64, generator=generator)
                random_scores = None
                if remasking == "random":
                    random_scores = torch.rand((block_length,), dtype=torch.float64, generator=generator)

                proposals = {}  # pos -> (token, score)
                for pos in masked_positions:
                    row = logits[pos]
                    if uniforms is None:
                        token = int(torch.argmax(row))
                    else:
                        gumbel = (-torch.log(uniforms[pos - start])) ** temperature
                        token = int(torch.argmax(torch.exp(row - row.max()) / gumbel))
                    probability = float(torch.softmax(row, dim=0)[token])
                    score = probability if random_scores is None else float(random_scores[pos - start])
                    if deprioritise_eos and token in (eos_id, eot_id):
                        score -= 2.0
                    proposals[pos] = (token, score)

                ranked = sorted(masked_positions, key=lambda pos: (-proposals[pos][1], pos))
                if threshold is None:
                    chosen = ranked[: schedule[block_step]]
                else:
                    chosen = [pos for pos in masked_positions if proposals[pos][1] > threshold] or ranked[:1]
                for pos in chosen:
                    canvas[pos] = proposals[pos][0]
                    is_committed[pos] = True
                commits_per_step.append(len(chosen))
                block_step += 1
    return canvas[prompt_length:], forward_passes, commits_per_step
