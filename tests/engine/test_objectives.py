"""Tests for engine/train/objectives.py: causal label masking and the masked-diffusion objective."""

from __future__ import annotations

import math

import pytest
import torch

from engine.train.objectives import (
    IGNORE_INDEX, diffusion_loss, diffusion_mask, diffusion_training_loss, response_lengths, response_only_labels,
)

PAD = 0
MASK = 99  # outside every input below, so `noisy == MASK` marks exactly the masked cells


def test_response_only_labels_ignore_prompt_and_padding_exactly():
    input_ids = torch.tensor([
        [5, 6, 7, 1, 2, 3, PAD, PAD],
        [5, 6, 1, 2, 3, 4, 8, 3],
    ])
    labels = response_only_labels(input_ids, [3, 2], PAD)
    assert labels.tolist() == [
        [IGNORE_INDEX] * 3 + [1, 2, 3] + [IGNORE_INDEX] * 2,
        [IGNORE_INDEX] * 2 + [1, 2, 3, 4, 8, 3],
    ]
    assert input_ids[0, 0].item() == 5, "input_ids must not be modified in place"


def test_response_only_labels_with_attention_mask_keeps_eos_that_equals_pad():
    eos = 3  # GPT-2 style: pad token is the EOS token
    input_ids = torch.tensor([[5, 6, 1, eos, eos, eos]])
    attention_mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    labels = response_only_labels(input_ids, torch.tensor([2]), eos, attention_mask=attention_mask)
    assert labels.tolist() == [[IGNORE_INDEX, IGNORE_INDEX, 1, eos, IGNORE_INDEX, IGNORE_INDEX]]


def test_prompt_lengths_must_match_batch():
    with pytest.raises(ValueError, match="2 entries but the batch has 1 rows"):
        response_only_labels(torch.zeros(1, 4, dtype=torch.long), [1, 2], PAD)


def test_response_lengths_count_everything_after_the_prompt():
    input_ids = torch.ones(3, 10, dtype=torch.long)
    assert response_lengths(input_ids, [0, 4, 10]).tolist() == [10, 6, 0]


def test_diffusion_loss_matches_hand_computation_on_fixed_mask():
    # Two sequences of 4 tokens over a vocabulary of 3; the logits are chosen by hand.
    input_ids = torch.tensor([[0, 1, 2, 1], [2, 2, 0, 1]])
    logits = torch.tensor([
        [[1.0, 0.0, 0.0], [0.5, 2.0, -1.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]],
        [[0.0, 1.0, 2.0], [2.0, 0.0, 0.0], [0.3, 0.2, 0.1], [-1.0, 0.0, 1.0]],
    ])
    masked = torch.tensor([[False, True, False, True], [False, False, True, True]])
    p = torch.tensor([0.5, 0.25])
    lengths = torch.tensor([3, 2])  # prompts of 1 and 2 tokens

    def ce(logit_row, target):
        exps = [math.exp(value) for value in logit_row]
        return -math.log(exps[target] / sum(exps))

    seq0 = (ce([0.5, 2.0, -1.0], 1) + ce([1.0, 1.0, 1.0], 1)) / 0.5 / 3
    seq1 = (ce([0.3, 0.2, 0.1], 0) + ce([-1.0, 0.0, 1.0], 1)) / 0.25 / 2
    expected = (seq0 + seq1) / 2

    per_token_p = p.unsqueeze(1).expand(2, 4)
    assert diffusion_loss(logits, input_ids, masked, per_token_p, lengths).item() == pytest.approx(expected, rel=1e-6)
    # p given per sequence gives the same result.
    assert diffusion_loss(logits, input_ids, masked, p, lengths).item() == pytest.approx(expected, rel=1e-6)
    # Halving p doubles the loss (the 1/p weighting); doubling the length halves it.
    assert diffusion_loss(logits, input_ids, masked, p / 2, lengths).item() == pytest.approx(2 * expected, rel=1e-6)
    doubled_lengths = diffusion_loss(logits, input_ids, masked, p, lengths * 2).item()
    assert doubled_lengths == pytest.approx(expected / 2, rel=1e-6)


def test_diffusion_loss_is_zero_without_masked_tokens_and_never_nan():
    input_ids = torch.tensor([[1, 2], [2, 1]])
    logits = torch.randn(2, 2, 3)
    masked = torch.zeros(2, 2, dtype=torch.bool)
    loss = diffusion_loss(logits, input_ids, masked, torch.tensor([0.5, 0.5]), torch.tensor([0, 2]))
    assert loss.item() == 0.0


def test_prompt_is_never_masked_over_many_draws():
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.arange(1, 33).repeat(64, 1)  # 64 rows of 32 tokens
    prompt_lengths = torch.arange(64) % 20
    ever_masked = torch.zeros(64, 32, dtype=torch.bool)
    for _ in range(200):
        noisy, masked, _ = diffusion_mask(input_ids, prompt_lengths, MASK, generator=generator)
        ever_masked |= masked
        prompt_region = torch.arange(32).unsqueeze(0) < prompt_lengths.unsqueeze(1)
        assert not masked[prompt_region].any()
        assert torch.equal(noisy[prompt_region], input_ids[prompt_region])
        assert torch.equal(noisy == MASK, masked)
    # ... and every response position does get masked at some point.
    response_region = torch.arange(32).unsqueeze(0) >= prompt_lengths.unsqueeze(1)
    assert ever_masked[response_region].all()


def test_masking_rate_tracks_p():
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.full((4000, 200), 7)
    _, masked, p_mask = diffusion_mask(input_ids, [0] * 4000, MASK, eps=0.1, generator=generator)
    p = p_mask[:, 0]
    assert torch.equal(p_mask, p.unsqueeze(1).expand_as(p_mask)), "p is constant along each sequence"
    assert p.min().item() >= 0.1 and p.max().item() <= 1.0
    rate = masked.float().mean(dim=1)
    # Each row's rate is a binomial(200, p) share: within 5 standard deviations of p.
    tolerance = 5 * torch.sqrt(p * (1 - p) / 200) + 1e-6
    assert ((rate - p).abs() <= tolerance).all()
    # t is uniform, so p spreads over [eps, 1]: mean close to (1 + eps) / 2.
    assert p.mean().item() == pytest.approx(0.55, abs=0.02)
    # Rows with small p are masked much less than rows with large p.
    assert rate[p < 0.3].mean() < 0.3 < 0.7 < rate[p > 0.7].mean()


def test_seeded_generator_reproduces_the_mask():
    input_ids = torch.randint(0, 8, (8, 40))
    first = diffusion_mask(input_ids, [5] * 8, MASK, generator=torch.Generator().manual_seed(123))
    second = diffusion_mask(input_ids, [5] * 8, MASK, generator=torch.Generator().manual_seed(123))
    other = diffusion_mask(input_ids, [5] * 8, MASK, generator=torch.Generator().manual_seed(124))
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    assert not torch.equal(first[1], other[1])


def test_diffusion_training_loss_runs_through_a_model_and_backpropagates(tiny_masked_dir):
    from engine.models.loading import load_model

    loaded = load_model(str(tiny_masked_dir))
    model = loaded.model.train()
    mask_id = loaded.tokenizer.mask_token_id
    input_ids = torch.randint(10, 50, (2, 16))
    loss = diffusion_training_loss(model, input_ids, [4, 6], mask_id, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert model.get_input_embeddings().weight.grad is not None
