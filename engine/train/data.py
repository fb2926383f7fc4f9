"""Pairs → token ids → batches, for both training objectives.

Each pair becomes one `Example`: the token ids of prompt and response in one sequence and
the prompt's length (where the trained region starts).
- "chat" template (instruct models): the tokenizer's chat template with the prompt as the
  user turn and the response as the assistant turn, then EOS if the template did not end
  with it. The prompt region is everything up to and including the assistant header; what a
  template appends after the last message (LLaDA's always-on assistant header) is dropped.
- "plain" template (GPT-2, base models): `prompt` tokens (with the tokenizer's own special
  prefix, e.g. BOS) then `response` tokens then EOS.
Sequences longer than `max_length` lose the end of their response; a pair whose prompt
alone fills `max_length` is skipped and counted.

Collators pad to the longest sequence in the batch:
- `CausalCollator`: pads with the pad token (EOS when there is none); labels come from
  `engine.train.objectives.response_only_labels` with the attention mask, so an EOS used as
  padding is not confused with the EOS that ends the response.
- `DiffusionCollator`: pads with EOS and attends to it — LLaDA's SFT recipe, so the model
  learns to fill the rest of its canvas with EOS — and passes `prompt_lengths` for the
  masking done in the trainer.

`loss_mask_preview` shows one pair's trained region. Layout and preview are the one
implementation for training and for the Train screen, which passes an
`engine.curate.file_tokenizer.FileTokenizer` instead of a transformers tokenizer: so this module
must not import torch or transformers at module level.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from engine.train.config import ConfigError


class DataError(Exception):
    """The pairs file cannot be used for training; the message says where and what to do."""


@dataclasses.dataclass(frozen=True)
class TrainingPair:
    id: str
    prompt: str
    response: str
    split: str  # "train" | "val"


@dataclasses.dataclass(frozen=True)
class Example:
    input_ids: list[int]
    prompt_length: int


def load_training_pairs(path: str | Path) -> tuple[list[TrainingPair], list[str]]:
    """Pairs from a pairs JSONL file and problems (bad lines) as "path:line: message" strings."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no pairs file. Make pairs first (`voicebench ingest`, or the Pairs screen) or pass --pairs.")
    from engine.curate.pairs import PairsFileError, load_pairs

    try:
        pair_file = load_pairs(path)
    except PairsFileError as error:  # a folder, an unreadable file: the user's input, not a fault
        raise DataError(str(error)) from None
    pairs = [TrainingPair(p.id, p.prompt, p.response, p.split) for p in pair_file.pairs]
    problems = [f"{path}:{bad.line}: {bad.message}" for bad in pair_file.bad_lines]
    return pairs, problems


def resolve_template(template: str, tokenizer: Any, model_type: str) -> str:
    """"chat" or "plain": auto picks chat when the tokenizer has a template, except GPT-2."""
    if template == "plain":
        return "plain"
    has_chat = bool(getattr(tokenizer, "chat_template", None))
    if template == "chat":
        if not has_chat:
            raise ConfigError(
                "template = \"chat\" but this tokenizer has no chat template; use template = \"plain\"."
            )
        return "chat"
    return "chat" if has_chat and model_type != "gpt2" else "plain"


def _ids(encoded: Any) -> list[int]:
    """apply_chat_template returns a list or a BatchEncoding depending on version and flags."""
    if isinstance(encoded, dict) or hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    return [int(token) for token in encoded]


# Probe turns for `template_trailer`: short, and ending in different tokens so the common
# suffix of two renders never reaches into the contents.
_PROBE_PROMPT, _PROBE_REPLY = "Hello", "World"
_TRAILERS: dict[tuple[str, tuple[str, ...]], str] = {}


def _added_token_texts(tokenizer: Any) -> list[str]:
    """Texts of the tokenizer's added (special) tokens, longest first (one unit each)."""
    texts = set(getattr(tokenizer, "added_tokens_encoder", None) or {})
    return sorted((text for text in texts if text), key=len, reverse=True)


def _units(text: str, specials: list[str]) -> list[str]:
    """The text as comparison units: each special token whole, every other character alone
    (so "<|eot_id|>" and "<|startoftext|>" never half-match on their shared "|>")."""
    units, index = [], 0
    while index < len(text):
        for special in specials:
            if text.startswith(special, index):
                units.append(special)
                index += len(special)
                break
        else:
            units.append(text[index])
            index += 1
    return units


def _common_prefix(a: list[str], b: list[str]) -> int:
    count = 0
    for left, right in zip(a, b):
        if left != right:
            break
        count += 1
    return count


def template_trailer(tokenizer: Any) -> str:
    """What the chat template appends after the last message, whoever wrote it ("" for most).

    Found by rendering, not by name: the text that follows every last message (common to a
    conversation ending on the user and one ending on the assistant) is the turn's closer
    plus any trailer; the closer is what also follows the reply when another message comes
    after it. Where the two part inside a shared header opening ("<|start_header_id|>"), the
    closer ends at its end-of-turn token (the first special token). LLaDA-8B-Instruct's
    template always appends "<|start_header_id|>assistant<|end_header_id|>\n\n" (it has no
    add_generation_prompt guard): that is the trailer, and "<|eot_id|>" stays with the reply.
    """
    specials = _added_token_texts(tokenizer)
    key = (str(tokenizer.chat_template), tuple(specials))
    if key in _TRAILERS:
        return _TRAILERS[key]

    def render(messages: list[dict[str, str]]) -> list[str]:
        return _units(tokenizer.apply_chat_template(messages, tokenize=False), specials)

    user = {"role": "user", "content": _PROBE_PROMPT}
    reply = {"role": "assistant", "content": _PROBE_REPLY}
    ends_on_user, ends_on_reply, continued = render([user]), render([user, reply]), render([user, reply, user])
    suffix = 0  # units every last message is followed by: closer + trailer
    while (suffix < min(len(ends_on_user), len(ends_on_reply))
           and ends_on_user[-1 - suffix] == ends_on_reply[-1 - suffix]):
        suffix += 1
    reply_end = len(ends_on_reply) - suffix
    after_last = ends_on_reply[reply_end:]
    trailer = ""
    if suffix and continued[:reply_end] == ends_on_reply[:reply_end]:
        shared = _common_prefix(after_last, continued[reply_end:])
        if shared < len(after_last):
            closer = next((index + 1 for index, unit in enumerate(after_last[:shared]) if unit in specials), shared)
            trailer = "".join(after_last[closer:])
    _TRAILERS[key] = trailer
    return trailer


def encode_pair(tokenizer: Any, prompt: str, response: str, template: str) -> tuple[list[int], int]:
    """(ids, prompt_length) of one pair, untruncated.

    Chat layout (LLaDA's SFT guidance, GUIDELINES.md in ML-GSAI/LLaDA, and the usual causal
    SFT): the prompt — the user turn and the assistant header — is never trained; the reply,
    its end-of-turn token and EOS are. What the template appends after the last message
    (`template_trailer`) is left out, so it is neither trained nor counted.
    """
    eos = tokenizer.eos_token_id
    if template == "plain":
        prompt_ids = _ids(tokenizer(prompt)["input_ids"])
        response_ids = _ids(tokenizer(response, add_special_tokens=False)["input_ids"])
        ids = prompt_ids + response_ids
    else:
        user = [{"role": "user", "content": prompt}]
        both = user + [{"role": "assistant", "content": response}]
        prompt_text = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
        full_text = tokenizer.apply_chat_template(both, tokenize=False)
        trailer = template_trailer(tokenizer)
        if trailer and full_text.endswith(trailer) and len(full_text) - len(trailer) >= len(prompt_text):
            full_text = full_text[: len(full_text) - len(trailer)]
        if not full_text.startswith(prompt_text):
            raise DataError(
                "the chat template renders the conversation so that it does not start with the "
                "prompt turn; use template = \"plain\" for this model."
            )
        # Encoded as apply_chat_template(tokenize=True) does (the rendered text, no extra
        # special tokens); split on the text when the boundary tokenises differently.
        prompt_ids = _ids(tokenizer(prompt_text, add_special_tokens=False)["input_ids"])
        ids = _ids(tokenizer(full_text, add_special_tokens=False)["input_ids"])
        if ids[: len(prompt_ids)] != prompt_ids:
            ids = prompt_ids + _ids(tokenizer(full_text[len(prompt_text):], add_special_tokens=False)["input_ids"])
    if eos is not None and (not ids or ids[-1] != eos):
        ids.append(int(eos))
    return ids, len(prompt_ids)


def layout_overhead(tokenizer: Any, template: str) -> int:
    """Tokens this layout adds around a pair's own text: `encode_pair`'s length for a probe
    pair minus the prompt's and the response's tokens encoded alone (no special tokens) —
    the chat turns, headers, BOS and EOS. For the usual templates (a special token or a
    newline on each side of a message) lengths add up, so for any pair
    `prompt tokens + response tokens + layout_overhead == len(encode_pair(...)[0])`; where a
    template's text merges with a message's first or last word, it is off by that merge."""
    ids, _ = encode_pair(tokenizer, _PROBE_PROMPT, _PROBE_REPLY, template)
    alone = sum(len(_ids(tokenizer(text, add_special_tokens=False)["input_ids"])) for text in (_PROBE_PROMPT, _PROBE_REPLY))
    return len(ids) - alone


def build_examples(tokenizer: Any, pairs: list[TrainingPair], template: str, max_length: int) -> tuple[list[Example], int]:
    """Examples for the pairs, and how many were skipped because the prompt fills max_length."""
    examples, skipped = [], 0
    for pair in pairs:
        ids, prompt_length = encode_pair(tokenizer, pair.prompt, pair.response, template)
        if prompt_length >= max_length:
            skipped += 1
            continue
        examples.append(Example(ids[:max_length], prompt_length))
    return examples, skipped


def pad_token_for(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id
    return int(pad if pad is not None else tokenizer.eos_token_id)


def _as_example(item: Any) -> Example:
    return item if isinstance(item, Example) else Example(list(item["input_ids"]), int(item["prompt_length"]))


def _pad(rows: list[list[int]], value: int) -> tuple[Any, Any]:
    import torch

    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), value, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention[index, : len(row)] = 1
    return ids, attention


@dataclasses.dataclass
class CausalCollator:
    pad_token_id: int

    def __call__(self, items: list[Any]) -> dict[str, Any]:
        from engine.train.objectives import response_only_labels

        examples = [_as_example(item) for item in items]
        input_ids, attention_mask = _pad([e.input_ids for e in examples], self.pad_token_id)
        prompt_lengths = [e.prompt_length for e in examples]
        labels = response_only_labels(input_ids, prompt_lengths, self.pad_token_id, attention_mask=attention_mask)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


@dataclasses.dataclass
class DiffusionCollator:
    eos_token_id: int

    def __call__(self, items: list[Any]) -> dict[str, Any]:
        import torch

        examples = [_as_example(item) for item in items]
        input_ids, _ = _pad([e.input_ids for e in examples], self.eos_token_id)
        return {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),  # EOS padding is part of the response
            "prompt_lengths": torch.tensor([e.prompt_length for e in examples], dtype=torch.long),
        }


class ExampleDataset:
    """A list of examples as the map-style dataset the Trainer's sampler indexes."""

    def __init__(self, examples: list[Example]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        example = self.examples[index]
        return {"input_ids": example.input_ids, "prompt_length": example.prompt_length}


@dataclasses.dataclass(frozen=True)
class MaskPreview:
    """One pair's tokens, each marked trained or not, as the Train screen shows them."""

    tokens: tuple[tuple[str, bool], ...]  # (token text, in the trained region) up to max_length
    template: str  # "chat" | "plain"
    prompt_tokens: int
    response_tokens: int  # after truncation to max_length, EOS included
    cut_tokens: int  # response tokens beyond max_length (not trained)


def loss_mask_preview(tokenizer: Any, prompt: str, response: str, template: str, max_length: int,
                      model_type: str = "") -> MaskPreview:
    """Which tokens of one pair training sees as its trained region.

    Works with a transformers tokenizer or an `engine.curate.file_tokenizer.FileTokenizer` (the
    Train screen's, no torch). Causal training scores exactly the response tokens; diffusion
    masks only within the same region, so one preview serves both (diffusion also trains on
    the EOS padding a batch adds, which a single pair does not show).
    """
    chosen = resolve_template(template, tokenizer, model_type)
    ids, prompt_length = encode_pair(tokenizer, prompt, response, chosen)
    kept = ids[:max_length]
    return MaskPreview(
        tokens=tuple((tokenizer.decode([token]), index >= prompt_length) for index, token in enumerate(kept)),
        template=chosen,
        prompt_tokens=min(prompt_length, len(kept)),
        response_tokens=max(0, len(kept) - prompt_length),
        cut_tokens=max(0, len(ids) - max(max_length, prompt_length)),
    )
