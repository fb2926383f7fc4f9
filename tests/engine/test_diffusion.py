"""The masked-diffusion sampler: schedule, determinism, every branch, and the naive reference."""

from __future__ import annotations

import itertools
import json
import types

import pytest
import torch

from engine.sample.diffusion import (
    FRAME_TYPES, LLADA_EOS_ID, LLADA_EOT_ID, LLADA_MASK_ID, FinalFrame, SamplerSettings,
    SamplerSettingsError, StepFrame, encode_prompt, model_logits, sample, sample_ids, shift_logits, special_ids,
    transfer_schedule,
)
from engine.events import event_from_dict, run_to_end
from engine.models.loading import FAMILY_LLADA, load_model
from tests.reference_sampler import reference_sample

PROMPT = "The river keeps"


run = run_to_end  # all frames of a sampler run, and its final frame


@pytest.fixture(scope="module")
def masked(tiny_masked_dir):
    return load_model(str(tiny_masked_dir))


@pytest.fixture(scope="module")
def llada(tiny_llada_dir):
    return load_model(str(tiny_llada_dir))  # native: no trust_remote_code needed


class PositionTableModel(torch.nn.Module):
    """A fake masked LM whose logits depend only on position: table (canvas length, vocab).

    It records every input so tests can look at what the sampler fed the model.
    """

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the sampler a device
        self.inputs: list[torch.Tensor] = []

    def forward(self, input_ids):
        self.inputs.append(input_ids.clone())
        return types.SimpleNamespace(logits=self.table[: input_ids.shape[1]].expand(input_ids.shape[0], -1, -1))


FAKE_VOCAB, FAKE_MASK, FAKE_EOS, FAKE_EOT = 10, 9, 8, 7


def eos_on_even_positions(prompt_length: int, gen_length: int) -> PositionTableModel:
    """Even generated positions prefer EOS (prob ≈ 0.9), odd ones token 1 (prob ≈ 0.5)."""
    table = torch.zeros(prompt_length + gen_length, FAKE_VOCAB)
    for position in range(gen_length):
        row = table[prompt_length + position]
        if position % 2 == 0:
            row[FAKE_EOS] = 5.0
        else:
            row[1] = 2.5
            row[FAKE_EOS] = 1.0
    return PositionTableModel(table)


# Schedule, frames, masks ---------------------------------------------------------------
def test_transfer_schedule_spreads_masks_over_steps():
    assert transfer_schedule(5, 3) == [2, 2, 1]
    assert transfer_schedule(8, 4) == [2, 2, 2, 2]
    assert transfer_schedule(2, 4) == [1, 1, 0, 0]
    assert sum(transfer_schedule(37, 6)) == 37


def test_one_frame_per_step_masks_reach_zero_and_counts_follow_schedule(masked):
    settings = SamplerSettings(steps=6, gen_length=10, block_length=5, temperature=0.8, seed=4)
    frames, final = run(sample(masked, PROMPT, settings))
    assert [frame.step for frame in frames] == [1, 2, 3, 4, 5, 6]
    assert [frame.block for frame in frames] == [0, 0, 0, 1, 1, 1]
    assert [len(frame.committed) for frame in frames] == [2, 2, 1, 2, 2, 1]
    assert [frame.masked for frame in frames] == [8, 6, 5, 3, 1, 0]
    assert [frame.forward_passes for frame in frames] == [1, 2, 3, 4, 5, 6]
    positions = [pos for frame in frames for pos, _, _ in frame.committed]
    assert sorted(positions) == list(range(10))  # each position committed exactly once
    assert all(pos < 5 for frame in frames[:3] for pos, _, _ in frame.committed)  # block 0 first
    committed = {pos: token for frame in frames for pos, token, _ in frame.committed}
    assert list(final.token_ids) == [committed[pos] for pos in range(10)]  # never remasked
    assert final.forward_passes == 6 and final.seconds >= 0
    assert all(0.0 <= confidence <= 1.0 for frame in frames for _, _, confidence in frame.committed)
    mask_id = masked.tokenizer.mask_token_id
    assert mask_id not in final.token_ids
    assert set(frames[-1].signals) >= {"repeated_ngram_share", "longest_run", "other_script_share", "eos_share"}


def test_prompt_is_never_changed(masked):
    prompt_ids = encode_prompt(masked.tokenizer, PROMPT)
    recorder = PositionTableModel(torch.randn(len(prompt_ids) + 8, FAKE_VOCAB))
    settings = SamplerSettings(steps=4, gen_length=8, block_length=4, temperature=1.0, cfg_scale=1.0)
    _, final = run(sample_ids(recorder, prompt_ids, FAKE_MASK, settings))
    assert list(final.prompt_ids) == prompt_ids
    assert all(batch[0, : len(prompt_ids)].tolist() == prompt_ids for batch in recorder.inputs)


# Determinism ---------------------------------------------------------------------------
def test_temperature_zero_is_deterministic_whatever_the_seed(masked):
    tokens = {
        run(sample(masked, PROMPT, SamplerSettings(steps=4, gen_length=8, block_length=4, seed=seed)))[1].token_ids
        for seed in (0, 1, 2)
    }
    assert len(tokens) == 1


def test_same_seed_same_tokens_different_seed_different_tokens(masked):
    def tokens(seed):
        settings = SamplerSettings(steps=8, gen_length=16, block_length=8, temperature=1.0, seed=seed)
        return run(sample(masked, PROMPT, settings))[1].token_ids

    assert tokens(7) == tokens(7)
    assert tokens(7) != tokens(8)


def test_sampler_does_not_touch_global_rng(masked):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run(sample(masked, PROMPT, SamplerSettings(steps=4, gen_length=8, block_length=4, temperature=1.0,
                                               remasking="random")))
    assert torch.equal(torch.rand(3), expected)


# Branches ------------------------------------------------------------------------------
def test_cfg_adds_a_row_with_the_prompt_masked(masked):
    prompt_ids = encode_prompt(masked.tokenizer, PROMPT)
    recorder = PositionTableModel(torch.randn(len(prompt_ids) + 8, FAKE_VOCAB))
    run(sample_ids(recorder, prompt_ids, FAKE_MASK, SamplerSettings(steps=4, gen_length=8, block_length=4,
                                                                    cfg_scale=2.0)))
    assert len(recorder.inputs) == 4  # still one forward pass per step
    for batch in recorder.inputs:
        assert batch.shape[0] == 2
        assert (batch[1, : len(prompt_ids)] == FAKE_MASK).all()
        assert torch.equal(batch[0, len(prompt_ids):], batch[1, len(prompt_ids):])


def test_cfg_combines_logits_as_u_plus_w_plus_one_times_c_minus_u():
    # Conditional row c = [1.0, 0.9], unconditional u = [2.0, 0.0] for tokens 0 and 1.
    # Guided: token 0 → 1 − w, token 1 → 0.9 (w + 1); they cross at w = 0.1 / 1.9 ≈ 0.053.
    # (The mistaken u + w(c − u) would cross at w ≈ 1.05 and still pick token 0 at w = 1.)
    class TwoRowModel(PositionTableModel):
        def forward(self, input_ids):
            logits = torch.full((input_ids.shape[0], input_ids.shape[1], FAKE_VOCAB), -10.0)
            logits[0, :, 0], logits[0, :, 1] = 1.0, 0.9
            if input_ids.shape[0] == 2:
                logits[1, :, 0], logits[1, :, 1] = 2.0, 0.0
            return types.SimpleNamespace(logits=logits)

    model = TwoRowModel(torch.zeros(1, FAKE_VOCAB))

    def tokens(cfg_scale):
        settings = SamplerSettings(steps=2, gen_length=2, block_length=2, cfg_scale=cfg_scale)
        return run(sample_ids(model, [1, 2], FAKE_MASK, settings))[1].token_ids

    assert tokens(0.0) == (0, 0)
    assert tokens(0.04) == (0, 0)
    assert tokens(0.07) == (1, 1)
    assert tokens(1.0) == (1, 1)


def test_random_remasking_ignores_confidence():
    model = eos_on_even_positions(2, 8)
    confident_first = run(sample_ids(model, [1, 2], FAKE_MASK, SamplerSettings(steps=8, gen_length=8, block_length=8)))[0]
    assert [frame.committed[0][0] for frame in confident_first[:4]] == [0, 2, 4, 6]  # p≈0.9 first, left to right
    orders = set()
    for seed in range(4):
        frames, _ = run(sample_ids(model, [1, 2], FAKE_MASK, SamplerSettings(
            steps=8, gen_length=8, block_length=8, remasking="random", seed=seed)))
        orders.add(tuple(frame.committed[0][0] for frame in frames))
    assert len(orders) > 1 and (0, 2, 4, 6, 1, 3, 5, 7) not in orders


def test_suppress_eos_never_proposes_eos():
    model = eos_on_even_positions(2, 8)
    _, final = run(sample_ids(model, [1, 2], FAKE_MASK, SamplerSettings(steps=8, gen_length=8, block_length=8,
                                                                        suppress_eos=True), eos_id=FAKE_EOS))
    assert FAKE_EOS not in final.token_ids
    _, unsuppressed = run(sample_ids(model, [1, 2], FAKE_MASK, SamplerSettings(steps=8, gen_length=8, block_length=8),
                                     eos_id=FAKE_EOS))
    assert unsuppressed.token_ids.count(FAKE_EOS) == 4


def test_deprioritise_eos_commits_end_tokens_last():
    model = eos_on_even_positions(2, 8)
    settings = SamplerSettings(steps=8, gen_length=8, block_length=8, deprioritise_eos=True)
    frames, final = run(sample_ids(model, [1, 2], FAKE_MASK, settings, eos_id=FAKE_EOS, eot_id=FAKE_EOT))
    order = [frame.committed[0][0] for frame in frames]
    assert order == [1, 3, 5, 7, 0, 2, 4, 6]  # the p≈0.5 tokens before the p≈0.9 EOS
    assert final.token_ids.count(FAKE_EOS) == 4  # still committed, just last
    assert frames[-1].signals["eos_share"] == 0.5


def test_threshold_mode_commits_at_least_one_and_saves_passes_on_a_confident_model(masked):
    confident = torch.zeros(4 + 16, FAKE_VOCAB)
    confident[:, 3] = 20.0  # every position: token 3 with p ≈ 1
    model = PositionTableModel(confident)
    settings = SamplerSettings(steps=16, gen_length=16, block_length=8, threshold=0.9)
    frames, final = run(sample_ids(model, [1, 2, 1, 2], FAKE_MASK, settings))
    assert final.forward_passes == 2 == len(frames)  # one pass per block instead of 16
    assert [len(frame.committed) for frame in frames] == [8, 8]
    # The tiny random model is never that sure: exactly one commit per step, every step.
    frames, final = run(sample(masked, PROMPT, SamplerSettings(gen_length=8, block_length=4, threshold=0.9)))
    assert [len(frame.committed) for frame in frames] == [1] * 8
    assert frames[-1].masked == 0 and final.forward_passes == 8


# Equivalence with the naive reference --------------------------------------------------
CASES = [
    dict(temperature=0.0, cfg_scale=0.0, remasking="low_confidence"),
    dict(temperature=0.9, cfg_scale=0.0, remasking="low_confidence"),
    dict(temperature=0.9, cfg_scale=1.5, remasking="random", deprioritise_eos=True),
    dict(temperature=0.5, cfg_scale=0.0, remasking="low_confidence", threshold=0.003, suppress_eos=True),
]


# The tiny LLaDA's 126k-entry vocabulary makes the naive reference slow: two cases there suffice.
@pytest.mark.parametrize(
    "case, family_fixture",
    [(case, "masked") for case in CASES] + [(CASES[0], "llada"), (CASES[2], "llada")],
    ids=lambda value: value if isinstance(value, str) else "-".join(f"{k}={v}" for k, v in value.items()),
)
def test_sampler_matches_the_naive_reference(case, family_fixture, request):
    loaded = request.getfixturevalue(family_fixture)
    ids = special_ids(loaded)
    prompt_ids = encode_prompt(loaded.tokenizer, PROMPT)
    settings = SamplerSettings(steps=6, gen_length=12, block_length=4, seed=11, **case)
    frames, final = run(sample_ids(loaded.model, prompt_ids, ids.mask, settings, family=loaded.family,
                                   eos_id=ids.eos, eot_id=ids.eot))
    reference_ids, reference_passes, reference_counts = reference_sample(
        loaded.model, prompt_ids, ids.mask, steps=6, gen_length=12, block_length=4, seed=11,
        eos_id=ids.eos, eot_id=ids.eot, **case,
    )
    assert list(final.token_ids) == reference_ids
    assert final.forward_passes == reference_passes
    assert [len(frame.committed) for frame in frames] == reference_counts


@pytest.mark.parametrize("chunk", [1 << 17, 150, 50], ids=["one-chunk", "three-rows", "one-row"])
@pytest.mark.parametrize("temperature", [0.0, 0.9, 1.0])
def test_proposal_is_softmax_argmax_or_gumbel_max_of_the_masked_rows_by_definition(temperature, chunk, monkeypatch):
    """`_propose` works through the masked rows in chunks in a reused buffer: check it against
    the definition on the whole block in float64 — tokens equal, probabilities to float64
    rounding, the random stream advanced by exactly one (block, vocab) draw, the model's logits
    left untouched — whether the rows go in one chunk, by three (rows 1, 2, 4 are not
    consecutive) or one by one."""
    import engine.sample.diffusion as diffusion
    from engine.sample.diffusion import _propose

    monkeypatch.setattr(diffusion, "PROPOSAL_CHUNK", chunk)

    block_length, vocab_size, banned = 6, 50, [FAKE_MASK, 0]
    logits = torch.randn((block_length, vocab_size), generator=torch.Generator().manual_seed(5)) * 3
    logits[4] = logits[1]  # two identical rows: at T = 0 the same token and the very same probability
    logits[2, 0] = 50.0  # a banned id with the largest logit is never proposed
    rows = torch.tensor([1, 2, 4, 5])
    kept = logits.clone()
    settings = SamplerSettings(temperature=temperature)
    generator = torch.Generator().manual_seed(7)
    tokens, probabilities, scores = _propose(logits, rows, settings, generator, banned, torch.tensor([], dtype=torch.long))

    expected_generator = torch.Generator().manual_seed(7)
    definition = logits.double()
    definition[:, banned] = float("-inf")
    if temperature > 0:
        uniforms = torch.rand((block_length, vocab_size), dtype=torch.float64, generator=expected_generator)
        expected = (definition.softmax(-1) / (-uniforms.log()) ** temperature)[rows].argmax(-1)
    else:
        expected = definition[rows].argmax(-1)
    assert torch.equal(tokens, expected) and 0 not in tokens.tolist()
    softmax = definition[rows].softmax(-1).gather(1, expected[:, None]).squeeze(1)
    assert torch.allclose(probabilities, softmax, rtol=1e-13, atol=0)
    assert torch.equal(scores, probabilities)
    if temperature == 0:
        assert tokens[0] == tokens[2] and probabilities[0] == probabilities[2]
    assert torch.equal(torch.rand(3, generator=generator), torch.rand(3, generator=expected_generator))
    assert torch.equal(logits, kept)


# LLaDA family --------------------------------------------------------------------------
def test_llada_loads_natively_and_uses_llada_ids(llada, tiny_llada_dir):
    assert llada.family == FAMILY_LLADA
    assert type(llada.model).__module__ == "engine.models.llada.modeling"  # never the folder's auto_map
    assert llada.model.model.transformer["blocks"][0].ff_proj is not None
    assert special_ids(llada).mask == LLADA_MASK_ID == 126336
    assert special_ids(llada).end_ids == (LLADA_EOS_ID, LLADA_EOT_ID) == (126081, 126348)
    prompt_ids = encode_prompt(llada.tokenizer, PROMPT)
    assert prompt_ids[0] == 126080 and LLADA_EOT_ID in prompt_ids  # LLaDA's chat template
    settings = SamplerSettings(steps=4, gen_length=8, block_length=4, temperature=1.0, seed=2)
    frames, final = run(sample(llada, PROMPT, settings))
    assert len(frames) == 4 and frames[-1].masked == 0
    assert LLADA_MASK_ID not in final.token_ids
    assert list(final.prompt_ids) == prompt_ids


def test_llada_suppress_eos_with_an_eos_loving_head(llada):
    head = llada.model.model.transformer["ff_out"]
    saved = head.bias.detach().clone()
    try:
        with torch.no_grad():
            head.bias[LLADA_EOS_ID] = 50.0
        eager = run(sample(llada, PROMPT, SamplerSettings(steps=4, gen_length=8, block_length=4)))[1]
        suppressed = run(sample(llada, PROMPT, SamplerSettings(steps=4, gen_length=8, block_length=4,
                                                               suppress_eos=True)))[1]
    finally:
        with torch.no_grad():
            head.bias.copy_(saved)
    assert set(eager.token_ids) == {LLADA_EOS_ID} and eager.text == ""
    assert LLADA_EOS_ID not in suppressed.token_ids


@pytest.mark.parametrize("family_fixture", ["masked", "llada"])
def test_block_logits_from_the_head_alone_equal_the_full_logits(family_fixture, request):
    loaded = request.getfixturevalue(family_fixture)
    canvas = torch.randint(0, 300, (2, 20))
    with torch.inference_mode():
        full = model_logits(loaded.model, canvas, loaded.family)
        block = model_logits(loaded.model, canvas, loaded.family, slice(6, 14))
    assert block.shape == (2, 8, full.shape[-1])
    assert torch.equal(block, full[:, 6:14])
    assert not loaded.model.get_output_embeddings()._forward_pre_hooks  # the hook is gone again


def test_dream_hook_shifts_logits_one_position_right():
    logits = torch.arange(4.0).view(1, 4, 1)
    assert shift_logits(logits).flatten().tolist() == [0.0, 0.0, 1.0, 2.0]


# Settings and events -------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings, message",
    [
        (SamplerSettings(gen_length=10, block_length=4), "not divisible by block_length 4"),
        (SamplerSettings(steps=5, gen_length=8, block_length=4), "use steps = 6"),
        (SamplerSettings(remasking="sideways"), "low_confidence, random"),
        (SamplerSettings(threshold=1.5), "threshold"),
        (SamplerSettings(temperature=-1.0), "temperature"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(settings, message):
    with pytest.raises(SamplerSettingsError, match=message):
        settings.validate()


def test_causal_models_are_refused(tiny_llama_dir):
    loaded = load_model(str(tiny_llama_dir))
    with pytest.raises(SamplerSettingsError, match="stream_causal"):
        next(sample(loaded, PROMPT, SamplerSettings()))


def test_frames_round_trip_through_json():
    step = StepFrame(step=1, block=0, committed=((3, 17, 0.5),), masked=7, forward_passes=1, signals={"eos_share": 0.0})
    payload = json.loads(step.to_json())
    assert payload == {"event": "step", "step": 1, "block": 0, "committed": [[3, 17, 0.5]], "masked": 7,
                       "forward_passes": 1, "signals": {"eos_share": 0.0}}
    final = FinalFrame(prompt_ids=(1, 2), token_ids=(3,), text="x", forward_passes=1, seconds=0.1)
    assert event_from_dict(json.loads(final.to_json()), FRAME_TYPES).to_dict() == final.to_dict()


def test_every_option_combination_runs_to_a_full_canvas(masked):
    for temperature, cfg, remasking in itertools.product((0.0, 1.0), (0.0, 1.0), ("low_confidence", "random")):
        settings = SamplerSettings(steps=2, gen_length=4, block_length=2, temperature=temperature,
                                   cfg_scale=cfg, remasking=remasking)
        frames, final = run(sample(masked, PROMPT, settings))
        assert len(frames) == 2 and frames[-1].masked == 0 and len(final.token_ids) == 4


@pytest.mark.parametrize("family_fixture", ["masked", "llada"])
def test_live_signals_of_every_frame_equal_the_definition_on_the_canvas_so_far(family_fixture, request):
    """The sampler keeps its signals incrementally; rebuilding the canvas from the frames'
    commits and computing them from scratch gives the same values at every step."""
    from engine.judge.metrics import live_signals, text_script

    loaded = request.getfixturevalue(family_fixture)
    ids = special_ids(loaded)
    settings = SamplerSettings(steps=24, gen_length=48, block_length=16, temperature=0.0)
    frames, final = run(sample(loaded, PROMPT, settings))

    def token_script(token_id):
        return text_script(loaded.tokenizer.decode([token_id], skip_special_tokens=True))

    canvas = [None] * settings.gen_length
    for frame in frames:
        for position, token_id, _ in frame.committed:
            canvas[position] = token_id
        assert frame.masked == canvas.count(None)
        assert frame.signals == live_signals(canvas, ids.end_ids, token_script, text_script(PROMPT)), frame.step
    assert canvas == list(final.token_ids)
    assert any(frame.signals["repeated_ngram_share"] or frame.signals["longest_run"] > 1 for frame in frames)
