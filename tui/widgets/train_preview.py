"""Shows one pair's tokens with the trained region highlighted (see tui/mask_preview.py).

Causal methods: the highlighted tokens are the ones with labels (response + EOS); the
prompt is context only. Diffusion: the highlighted tokens are the ones that may be masked
(each with probability p = (1-eps)t + eps per sequence); the prompt is never masked.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.mask_preview import MaskPreview

TRAINED_STYLE = {"causal": "bold black on green", "diffusion": "bold black on magenta"}
PROMPT_STYLE = "dim"
BOUNDARY_STYLE = "dim italic"


def _visible(token: str) -> str:
    """Whitespace made visible: a newline shows as ⏎ (and breaks the line), tabs as →."""
    return token.replace("\t", "→").replace("\n", "⏎\n")


def preview_text(preview: MaskPreview, objective: str, pair_label: str) -> Text:
    style = TRAINED_STYLE.get(objective, TRAINED_STYLE["causal"])
    what = "trained (labels)" if objective == "causal" else "maskable (p = (1-ε)t + ε each)"
    text = Text()
    text.append(f"{pair_label}  ·  template {preview.template}  ·  ")
    text.append(f"{preview.prompt_tokens} prompt", style=PROMPT_STYLE)
    text.append(" + ")
    text.append(f"{preview.response_tokens} {what}", style=style)
    if preview.cut_tokens:
        text.append(f"  ·  {preview.cut_tokens} response tokens cut by max length", style="yellow")
    text.append("\n")
    if objective == "diffusion":
        text.append("the prompt is never masked; EOS padding added in a batch is maskable too\n", style=BOUNDARY_STYLE)
    else:
        text.append("loss only on the response; prompt and padding labels are -100\n", style=BOUNDARY_STYLE)
    text.append("\n")
    for token, trained in preview.tokens:
        shown = _visible(token)
        if trained:
            # Style each visual line separately so a highlighted newline does not paint a whole row.
            for index, part in enumerate(shown.split("\n")):
                if index:
                    text.append("\n")
                if part:
                    text.append(part, style=style)
        else:
            text.append(shown, style=PROMPT_STYLE)
        text.append("\u200b")  # zero-width break between tokens: long words still wrap
    return text


class MaskPreviewView(Static):
    def show(self, preview: MaskPreview, objective: str, pair_label: str) -> None:
        self.update(preview_text(preview, objective, pair_label))

    def show_message(self, message: str) -> None:
        self.update(Text(message, style="dim"))
