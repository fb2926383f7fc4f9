"""Causal streaming: KV-cached greedy decoding matches transformers, seeds, stops, frames."""

from __future__ import annotations

import copy

import pytest
import torch

from engine.sample.diffusion import FinalFrame, encode_prompt
from engine.sample.causal import TokenFrame, stop_ids, stream_causal
from engine.events import run_to_end
from engine.models.loading import load_model

PROMPT = "The river keeps"


run = run_to_end  # all frames of a stream, and its final frame


@pytest.fixture(scope="module")
def llama(tiny_llama_dir):
    return load_model(str(tiny_llama_dir))


def with_head_bias(loaded, bias_by_id: dict[int, float], keep_weights: bool = True):
    """A copy of a causal model whose LM head gains a bias (and optionally loses its weights)."""
    model = copy.deepcopy(loaded.model)
    head = model.lm_head
    model.lm_head = torch.nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        model.lm_head.weight.copy_(head.weight if keep_weights else torch.zeros_like(head.weight))
        model.lm_head.bias.zero_()
        for token_id, bias in bias_by_id.items():
            model.lm_head.bias[token_id] = bias
    return type(loaded)(model=model, tokenizer=loaded.tokenizer, family=loaded.family, path=loaded.path)


def without_stops(loaded):
    """A copy that can never pick a stop token, so runs reach max_new_tokens."""
    return with_head_bias(loaded, {token_id: -1e4 for token_id in stop_ids(loaded)})


def test_greedy_stream_equals_transformers_generate(llama):
    loaded = without_stops(llama)
    frames, final = run(stream_causal(loaded, PROMPT, max_new_tokens=12))
    prompt_ids = encode_prompt(loaded.tokenizer, PROMPT)
    expected = loaded.model.generate(
        torch.tensor([prompt_ids]), attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
        max_new_tokens=12, do_sample=False, pad_token_id=loaded.tokenizer.pad_token_id,
    )[0, len(prompt_ids):].tolist()
    assert list(final.token_ids) == expected
    assert [frame.token_id for frame in frames] == expected
    assert [frame.index for frame in frames] == list(range(12))
    assert final.forward_passes == 12 and isinstance(final, FinalFrame)
    assert "".join(frame.text for frame in frames) == final.text
    assert list(final.prompt_ids) == prompt_ids


def test_seeds_and_temperature_zero(llama):
    loaded = without_stops(llama)

    def tokens(**options):
        return run(stream_causal(loaded, PROMPT, max_new_tokens=10, **options))[1].token_ids

    assert tokens(temperature=0.0, seed=1) == tokens(temperature=0.0, seed=2)
    assert tokens(temperature=1.0, seed=5) == tokens(temperature=1.0, seed=5)
    assert tokens(temperature=1.0, seed=5) != tokens(temperature=1.0, seed=6)


def test_stops_at_eos_and_keeps_it_out_of_the_text(llama):
    eos = llama.tokenizer.eos_token_id
    loaded = with_head_bias(llama, {eos: 10.0}, keep_weights=False)
    frames, final = run(stream_causal(loaded, PROMPT, max_new_tokens=20))
    assert frames == [TokenFrame(index=0, token_id=eos, text="")]
    assert final.token_ids == (eos,) and final.text == ""


def test_template_is_optional(llama):
    templated = run(stream_causal(llama, PROMPT, max_new_tokens=1))[1].prompt_ids
    plain = run(stream_causal(llama, PROMPT, max_new_tokens=1, use_template=False))[1].prompt_ids
    assert list(plain) == llama.tokenizer(PROMPT)["input_ids"]
    assert len(templated) > len(plain)


def test_bad_arguments(llama):
    with pytest.raises(ValueError, match="max_new_tokens"):
        next(stream_causal(llama, PROMPT, max_new_tokens=0))
    with pytest.raises(ValueError, match="temperature"):
        next(stream_causal(llama, PROMPT, temperature=-0.5))
