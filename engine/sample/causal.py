"""Causal generation streamed token by token: the "typewriter" beside the diffusion canvas.

`stream_causal(loaded, prompt, max_new_tokens, temperature, seed)` yields a `TokenFrame`
per new token and returns the same `FinalFrame` the diffusion sampler returns, so the CLI,
the Canvas screen and canary runs treat both families alike. Decoding is incremental with
the model's KV cache (one token per forward pass after the prompt); sampling uses its own
seeded `torch.Generator`; temperature 0 is greedy; it stops after EOS or end-of-turn.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Generator
from typing import Any, ClassVar

from engine.sample.diffusion import END_OF_TURN_TOKENS, FinalFrame, decode_reply, encode_prompt
from engine.events import Event
from engine.models.loading import LoadedModel


@dataclasses.dataclass(frozen=True)
class TokenFrame(Event):
    """One generated token; `text` is what it adds to the reply (may be "" mid-character)."""

    kind: ClassVar[str] = "token"
    index: int  # 0-based position in the reply
    token_id: int
    text: str


def stop_ids(loaded: LoadedModel) -> set[int]:
    """EOS ids from the tokenizer and generation config, plus end-of-turn markers."""
    tokenizer = loaded.tokenizer
    ids: set[int] = set()
    generation_config = getattr(loaded.model, "generation_config", None)
    for source in (tokenizer.eos_token_id, getattr(generation_config, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif isinstance(source, (list, tuple)):
            ids.update(int(token_id) for token_id in source)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[token] for token in END_OF_TURN_TOKENS if token in vocab)
    return ids


def _kv_cache_kwargs(model: Any) -> dict[str, Any]:
    """The KV cache argument for this model's forward: transformers 5 models take a
    `DynamicCache` as `cache` and fill it in place (`past_key_values` is deprecated and goes
    in 5.40); remote code written for transformers 4 still takes `past_key_values`."""
    import inspect

    from transformers import DynamicCache

    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # through a peft wrapper
    if "cache" in inspect.signature(base.forward).parameters:
        return {"cache": DynamicCache(config=model.config)}
    return {"past_key_values": None}


# Families whose positions index a learned table: a sequence past its end raises IndexError
# mid-forward. Rotary and ALiBi models run on past their trained length (worse, not broken), so
# they are left alone here.
LEARNED_POSITION_TYPES = frozenset({"gpt2", "gpt_neo", "gpt_bigcode", "opt"})


def _check_positions(loaded: LoadedModel, length: int) -> None:
    from engine.sample.diffusion import SamplerSettingsError

    config = loaded.model.config
    limit = getattr(config, "max_position_embeddings", None)
    if getattr(config, "model_type", None) in LEARNED_POSITION_TYPES and limit and length > limit:
        raise SamplerSettingsError(
            f"{loaded.path}: prompt + max_new_tokens is {length} tokens but the model takes at most {limit}; "
            "shorten the prompt or lower max_new_tokens.")


def stream_causal(
    loaded: LoadedModel,
    prompt: str,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    seed: int = 0,
    use_template: bool = True,
) -> Generator[TokenFrame, None, FinalFrame]:
    """Generate up to `max_new_tokens` tokens after `prompt`; yields TokenFrames."""
    import torch

    if max_new_tokens <= 0:
        raise ValueError(f"max_new_tokens {max_new_tokens} must be positive.")
    if temperature < 0:
        raise ValueError(f"temperature {temperature} must be 0 or more.")
    started = time.perf_counter()
    model, tokenizer = loaded.model, loaded.tokenizer
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    prompt_ids = encode_prompt(tokenizer, prompt, use_template)
    _check_positions(loaded, len(prompt_ids) + max_new_tokens)
    stops = stop_ids(loaded)
    token_ids: list[int] = []
    text_so_far = ""
    forward_passes = 0
    next_input = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    cache_kwargs = _kv_cache_kwargs(model)

    with torch.inference_mode():
        for index in range(max_new_tokens):
            output = model(input_ids=next_input, use_cache=True, **cache_kwargs)
            forward_passes += 1
            if "past_key_values" in cache_kwargs:  # older remote code hands back a new cache
                cache_kwargs["past_key_values"] = output.past_key_values
            logits = output.logits[0, -1].float()
            if temperature > 0:
                probabilities = torch.softmax(logits / temperature, dim=-1)
                token_id = int(torch.multinomial(probabilities, 1, generator=generator))
            else:
                token_id = int(logits.argmax())
            token_ids.append(token_id)
            # Decode the whole reply and emit the difference: byte-level pieces of one
            # character only become text once the character is complete (or the reply ends).
            is_last = token_id in stops or index == max_new_tokens - 1
            text = tokenizer.decode(token_ids, skip_special_tokens=True)
            added = text[len(text_so_far):] if is_last or not text.endswith("\ufffd") else ""
            if added:
                text_so_far = text
            yield TokenFrame(index=index, token_id=token_id, text=added)
            if token_id in stops:
                break
            next_input = torch.tensor([[token_id]], dtype=torch.long, device=device)

    return FinalFrame(
        prompt_ids=tuple(prompt_ids),
        token_ids=tuple(token_ids),
        text=decode_reply(tokenizer, token_ids, sorted(stops)),
        forward_passes=forward_passes,
        seconds=round(time.perf_counter() - started, 4),
    )
