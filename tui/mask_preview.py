"""Loss-mask preview for the Train screen: one pair's tokens, marked trained or not.

The engine's `engine.train.data.loss_mask_preview` does this with a transformers
tokenizer, which imports torch (seconds of start-up, and the UI process must stay
torch-free). This adapter rebuilds the same token sequence with the `tokenizers` library
from the model folder's `tokenizer.json`, and renders the chat template with jinja2 the way
transformers does, following `engine.train.data.encode_pair` step by step:
- "plain": prompt with the tokenizer's special tokens + response without + EOS;
- "chat": the template with the prompt as user turn (+ generation prompt) is the prompt
  region; the template with both turns is the sequence; then EOS if missing.
A test checks the result token for token against `loss_mask_preview`.

The trained region is the same for both objectives — everything after the prompt:
causal training puts labels there (`response_only_labels`), diffusion masks only there
(`diffusion_mask`, prompt never masked) — so `trained` means "scored" for causal and
"maskable" for diffusion.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path
from typing import Any

TEMPLATE_FILE = "chat_template.jinja"  # transformers 5 saves the template here
NO_CHAT_MODEL_TYPES = ("gpt2",)  # auto template: plain for GPT-2 even if a template exists


class PreviewUnavailable(Exception):
    """The preview cannot be built for this model here; the message says why."""


@dataclasses.dataclass(frozen=True)
class MaskPreview:
    tokens: tuple[tuple[str, bool], ...]  # (token text, in the trained region) up to max_length
    template: str  # "chat" | "plain"
    prompt_tokens: int
    response_tokens: int  # after truncation to max_length, EOS included
    cut_tokens: int  # response tokens beyond max_length (not trained)


class PreviewTokenizer:
    """The pieces of a saved tokenizer the preview needs, from tokenizer.json (+ config)."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        path = folder / "tokenizer.json"
        if not path.exists():
            raise PreviewUnavailable(f"{folder}: no tokenizer.json, so the preview cannot tokenise here.")
        self.tokenizer = Tokenizer.from_file(str(path))
        config: dict[str, Any] = {}
        config_path = folder / "tokenizer_config.json"
        if config_path.exists():
            config = json.loads(config_path.read_text(encoding="utf-8"))
        template_path = folder / TEMPLATE_FILE
        if template_path.exists():
            self.chat_template: str | None = template_path.read_text(encoding="utf-8")
        else:
            template = config.get("chat_template")
            self.chat_template = template if isinstance(template, str) else None
        self.special = {key: _token_text(config.get(key)) for key in ("bos_token", "eos_token", "pad_token", "unk_token")}
        eos = self.special.get("eos_token")
        self.eos_token_id = self.tokenizer.token_to_id(eos) if eos else None

    def encode(self, text: str, *, special: bool) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=special).ids)

    def decode(self, token: int) -> str:
        return self.tokenizer.decode([token], skip_special_tokens=False)

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        return _compile(self.chat_template).render(
            messages=messages, add_generation_prompt=add_generation_prompt,
            **{key: value for key, value in self.special.items() if value is not None},
        )


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):  # older configs store AddedToken dicts
        value = value.get("content")
    return value if isinstance(value, str) else None


def _compile(template: str | None) -> Any:
    from jinja2 import ext
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    if template is None:
        raise PreviewUnavailable("this tokenizer has no chat template")

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    def strftime_now(pattern: str) -> str:
        return datetime.datetime.now().strftime(pattern)

    # The environment transformers renders chat templates in (trim/lstrip blocks, loopcontrols).
    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[ext.loopcontrols])
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = strftime_now
    environment.filters["tojson"] = lambda value, **kwargs: json.dumps(value, ensure_ascii=False, **kwargs)
    return environment.from_string(template)


def resolve_template(template: str, tokenizer: PreviewTokenizer, model_type: str) -> str:
    """engine.train.data.resolve_template, for the preview tokenizer."""
    if template == "plain":
        return "plain"
    has_chat = bool(tokenizer.chat_template)
    if template == "chat":
        if not has_chat:
            raise PreviewUnavailable('template = "chat" but this tokenizer has no chat template; use "plain".')
        return "chat"
    return "chat" if has_chat and model_type not in NO_CHAT_MODEL_TYPES else "plain"


def encode_pair(tokenizer: PreviewTokenizer, prompt: str, response: str, template: str) -> tuple[list[int], int]:
    """(ids, prompt_length) exactly as engine.train.data.encode_pair builds them."""
    if template == "plain":
        prompt_ids = tokenizer.encode(prompt, special=True)
        ids = prompt_ids + tokenizer.encode(response, special=False)
    else:
        user = [{"role": "user", "content": prompt}]
        both = [*user, {"role": "assistant", "content": response}]
        prompt_text = tokenizer.render(user, add_generation_prompt=True)
        full_text = tokenizer.render(both, add_generation_prompt=False)
        # transformers tokenises a rendered template without adding special tokens again.
        prompt_ids = tokenizer.encode(prompt_text, special=False)
        ids = tokenizer.encode(full_text, special=False)
        if ids[: len(prompt_ids)] != prompt_ids:
            if not full_text.startswith(prompt_text):
                raise PreviewUnavailable("the chat template does not start the conversation with the prompt turn")
            ids = prompt_ids + tokenizer.encode(full_text[len(prompt_text):], special=False)
    eos = tokenizer.eos_token_id
    if eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
    return ids, len(prompt_ids)


def build_preview(model_dir: Path, model_type: str, prompt: str, response: str, *,
                  template: str = "auto", max_length: int = 512) -> MaskPreview:
    tokenizer = PreviewTokenizer(model_dir)
    chosen = resolve_template(template, tokenizer, model_type)
    ids, prompt_length = encode_pair(tokenizer, prompt, response, chosen)
    kept = ids[:max_length]
    tokens = tuple((tokenizer.decode(token), index >= prompt_length) for index, token in enumerate(kept))
    return MaskPreview(
        tokens=tokens, template=chosen, prompt_tokens=min(prompt_length, len(kept)),
        response_tokens=max(0, len(kept) - prompt_length), cut_tokens=max(0, len(ids) - max(max_length, prompt_length)),
    )
