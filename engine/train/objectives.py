"""Training objectives shared by the demo-model builder and `engine.train`.

- Causal LMs learn only the response: `response_only_labels` puts -100 (ignored by
  transformers' cross-entropy) on prompt and padding positions. Labels are *not* shifted;
  transformers' causal LM heads shift them internally.
- Masked diffusion (LLaDA, Nie et al. 2025, SFT objective, Eq. 5): per sequence draw
  t ~ U(0, 1), set p = (1 - eps) t + eps, mask every response token independently with
  probability p (the prompt is never masked), then
      loss = mean over the batch of  (1 / L_response) * sum over masked tokens of CE / p
  where L_response counts every position after the prompt, EOS padding included — that is
  how the model learns to end its answer with EOS.

Tensors are batch-first: `input_ids` is (batch, seq_len) and each row's prompt starts at
position 0 (right padding), so `prompt_lengths[i]` is where row i's response begins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

IGNORE_INDEX = -100  # transformers' CrossEntropyLoss ignore_index
DEFAULT_EPS = 1e-3  # LLaDA's minimum masking probability, keeps 1/p bounded


def _as_lengths(prompt_lengths: Any, batch: int, device: Any) -> Any:
    """`prompt_lengths` (list, tuple or tensor) as a (batch,) long tensor on `device`."""
    import torch

    lengths = torch.as_tensor(prompt_lengths, dtype=torch.long, device=device).reshape(-1)
    if lengths.numel() != batch:
        raise ValueError(f"prompt_lengths has {lengths.numel()} entries but the batch has {batch} rows")
    return lengths


def _response_region(input_ids: Any, prompt_lengths: Any) -> Any:
    """(batch, seq_len) bool: True at positions after each row's prompt."""
    import torch

    batch, seq_len = input_ids.shape
    lengths = _as_lengths(prompt_lengths, batch, input_ids.device)
    positions = torch.arange(seq_len, device=input_ids.device).unsqueeze(0)  # (1, seq_len)
    return positions >= lengths.unsqueeze(1)


def response_lengths(input_ids: Any, prompt_lengths: Sequence[int] | Any) -> Any:
    """(batch,) number of positions after the prompt (EOS padding included)."""
    return _response_region(input_ids, prompt_lengths).sum(dim=1)


def response_only_labels(
    input_ids: Any,
    prompt_lengths: Sequence[int] | Any,
    pad_token_id: int | None,
    *,
    attention_mask: Any = None,
) -> Any:
    """Causal-LM labels: a copy of `input_ids` with IGNORE_INDEX on prompt and padding.

    Padding is where `attention_mask == 0` when one is given; otherwise every position
    holding `pad_token_id`. Pass `attention_mask` when the pad token doubles as EOS
    (GPT-2 style), so the real EOS that ends a response still gets a label.
    """
    labels = input_ids.clone()
    labels[~_response_region(input_ids, prompt_lengths)] = IGNORE_INDEX
    if attention_mask is not None:
        labels[attention_mask == 0] = IGNORE_INDEX
    elif pad_token_id is not None:
        labels[input_ids == pad_token_id] = IGNORE_INDEX
    return labels


def diffusion_mask(
    input_ids: Any,
    prompt_lengths: Sequence[int] | Any,
    mask_token_id: int,
    eps: float = DEFAULT_EPS,
    generator: Any = None,
) -> tuple[Any, Any, Any]:
    """Forward process of masked diffusion: returns `(noisy_ids, masked, p_mask)`.

    - `noisy_ids`: `input_ids` with the chosen response positions set to `mask_token_id`;
    - `masked`: (batch, seq_len) bool, True where a token was masked (never in the prompt);
    - `p_mask`: (batch, seq_len) float, each row's masking probability p repeated along the
      sequence (as LLaDA's reference code does), so `p_mask[masked]` lines up with tokens.

    Random numbers come from `generator` (a `torch.Generator` on the tensors' device) when
    given, so a seeded generator reproduces the same masks.
    """
    import torch

    if not 0.0 <= eps < 1.0:
        raise ValueError(f"eps must be in [0, 1), got {eps}")
    batch, seq_len = input_ids.shape
    t = torch.rand(batch, generator=generator, device=input_ids.device)
    p = (1.0 - eps) * t + eps  # (batch,)
    p_mask = p.unsqueeze(1).expand(batch, seq_len)
    draws = torch.rand(batch, seq_len, generator=generator, device=input_ids.device)
    masked = (draws < p_mask) & _response_region(input_ids, prompt_lengths)
    noisy_ids = torch.where(masked, torch.full_like(input_ids, mask_token_id), input_ids)
    return noisy_ids, masked, p_mask


def diffusion_loss(logits: Any, input_ids: Any, masked: Any, p_mask: Any, response_lengths: Any) -> Any:
    """LLaDA's SFT loss: Σ over masked tokens of CE / p, ÷ response length, mean over the batch.

    `logits` is (batch, seq_len, vocab) predicted from the noisy ids; `input_ids` holds the
    clean targets; `p_mask` is (batch, seq_len) or (batch,); `response_lengths` is (batch,)
    (rows with no response count as length 1 so they add 0 rather than NaN).
    CE is computed in float32 even for bf16 logits, and only on masked positions.
    """
    import torch
    import torch.nn.functional as F

    batch = input_ids.shape[0]
    if p_mask.dim() == 1:
        p_mask = p_mask.unsqueeze(1).expand_as(input_ids)
    rows = masked.nonzero(as_tuple=True)[0]  # batch index of each masked token
    token_ce = F.cross_entropy(logits[masked].float(), input_ids[masked], reduction="none")
    weighted = token_ce / p_mask[masked].float()
    per_sequence = torch.zeros(batch, dtype=weighted.dtype, device=weighted.device).index_add(0, rows, weighted)
    lengths = torch.as_tensor(response_lengths, device=weighted.device).to(weighted.dtype).clamp(min=1.0)
    return (per_sequence / lengths).mean()


def diffusion_training_loss(
    model: Any,
    input_ids: Any,
    prompt_lengths: Sequence[int] | Any,
    mask_token_id: int,
    *,
    attention_mask: Any = None,
    eps: float = DEFAULT_EPS,
    generator: Any = None,
) -> Any:
    """One masked-diffusion loss evaluation: mask, forward the noisy ids, score.

    Works for any model whose forward returns `.logits` aligned with its input (ModernBERT,
    LLaDA). Dream-style shifted logits need the shift applied before `diffusion_loss`.
    """
    noisy_ids, masked, p_mask = diffusion_mask(input_ids, prompt_lengths, mask_token_id, eps=eps, generator=generator)
    logits = model(input_ids=noisy_ids, attention_mask=attention_mask).logits
    return diffusion_loss(logits, input_ids, masked, p_mask, response_lengths(input_ids, prompt_lengths))
