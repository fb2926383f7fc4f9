"""A model folder's tokenizer without transformers: tokenizer.json + the chat template.

`FileTokenizer(folder)` offers the slice of a transformers tokenizer that
`engine.train.data` uses to lay out a training pair (`__call__`, `apply_chat_template`,
`decode`, `eos_token_id`, `pad_token_id`, `chat_template`), built from the `tokenizers`
library and jinja2. The Train screen hands it to the same `encode_pair` /
`loss_mask_preview` that training runs with a transformers tokenizer, so its loss-mask
preview needs neither torch nor transformers (seconds of start-up in the UI process).

    tokenizer = FileTokenizer(Path("data/models/demo-ar"))
    preview = loss_mask_preview(tokenizer, prompt, response, "auto", 512, model_type="llama")

What transformers does that is mirrored here, and why it gives the same ids:
- `apply_chat_template(tokenize=True)` renders the template, then encodes the text with
  `add_special_tokens=False` (sanitize_control_tokens is off by default) — done the same way;
- the template sees the messages, `add_generation_prompt` and the special tokens by name
  (`bos_token`, `eos_token`, …), in a sandboxed jinja environment with trim_blocks,
  lstrip_blocks, loopcontrols, `raise_exception`, `strftime_now` and a non-escaping `tojson`.
Not mirrored (templates that need them fail with a jinja error instead of rendering): the
`{% generation %}` tag, tools and documents. Decoding skips transformers' space clean-up,
which only changes how a WordPiece token is displayed, never an id.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from engine.curate.tokens import TokenizerUnavailable

TEMPLATE_FILE = "chat_template.jinja"  # transformers 5 saves the template here
# The special tokens transformers passes to a chat template (its `special_tokens_map`).
TEMPLATE_SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


class FileTokenizer:
    """The pieces of a saved tokenizer that pair encoding needs, from its files."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        path = Path(folder) / "tokenizer.json"
        if not path.exists():
            raise TokenizerUnavailable(f"{folder}: no tokenizer.json, so it cannot be tokenised without transformers.")
        self.tokenizer = Tokenizer.from_file(str(path))
        config: dict[str, Any] = {}
        config_path = Path(folder) / "tokenizer_config.json"
        if config_path.exists():
            config = json.loads(config_path.read_text(encoding="utf-8"))
        template_path = Path(folder) / TEMPLATE_FILE
        if template_path.exists():
            self.chat_template: str | None = template_path.read_text(encoding="utf-8")
        else:
            template = config.get("chat_template")
            self.chat_template = template if isinstance(template, str) else None
        self.special_tokens = {key: text for key in TEMPLATE_SPECIAL_TOKENS if (text := _token_text(config.get(key)))}
        self.eos_token_id = self._id_of("eos_token")
        self.pad_token_id = self._id_of("pad_token")
        self._compiled: Any = None

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        """Added (special) token text → id, as transformers names it."""
        return {token.content: index for index, token in self.tokenizer.get_added_tokens_decoder().items()}

    def _id_of(self, key: str) -> int | None:
        text = self.special_tokens.get(key)
        return self.tokenizer.token_to_id(text) if text else None

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens).ids)}

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def apply_chat_template(self, conversation: list[dict[str, str]], add_generation_prompt: bool = False,
                            tokenize: bool = True, return_dict: bool = False) -> Any:
        """The rendered text (tokenize=False), else its ids: a list, or {"input_ids": …} with return_dict."""
        if self._compiled is None:
            self._compiled = _compile(self.chat_template)
        text = self._compiled.render(messages=conversation, add_generation_prompt=add_generation_prompt,
                                     **self.special_tokens)
        if not tokenize:
            return text
        encoded = self(text, add_special_tokens=False)
        return encoded if return_dict else encoded["input_ids"]


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):  # older configs store AddedToken dicts
        value = value.get("content")
    return value if isinstance(value, str) else None


def _compile(template: str | None) -> Any:
    from jinja2 import ext
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    if template is None:
        raise TokenizerUnavailable("this tokenizer has no chat template")

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    def strftime_now(pattern: str) -> str:
        return datetime.datetime.now().strftime(pattern)

    def tojson(value: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        # Jinja's own tojson escapes HTML characters, which a prompt must keep as written.
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[ext.loopcontrols])
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = strftime_now
    environment.filters["tojson"] = tojson
    return environment.from_string(template)
