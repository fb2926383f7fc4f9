"""Shows one pair's tokens with the trained region highlighted (engine.train.data.loss_mask_preview).

Causal methods: the highlighted tokens are the ones with labels (response + EOS); the
prompt is context only. Diffusion: the highlighted tokens are the ones that may be masked
(each with probability p = (1-eps)t + eps per sequence); the prompt is never masked.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from engine.display import safe_text
from engine.train.data import MaskPreview

# Two shades per region, alternating token by token, so token boundaries show without
# adding characters: (trained, trained) per objective, then the prompt's pair.
TRAINED_STYLES = {"causal": ("black on #66bb6a", "black on #a5d6a7"),
                  "diffusion": ("black on #ba68c8", "black on #e1bee7")}
PROMPT_STYLES = ("#9e9e9e on #262626", "#9e9e9e on #3a3a3a")
PROMPT_STYLE = "dim"
BOUNDARY_STYLE = "dim italic"


def _visible(token: str) -> str:
    """Whitespace made visible: a newline shows as ⏎ (and breaks the line), tabs as →."""
    return safe_text(token.replace("\t", "→").replace("\n", "⏎\n"))


def preview_text(preview: MaskPreview, objective: str, pair_label: str) -> Text:
    shades = TRAINED_STYLES.get(objective, TRAINED_STYLES["causal"])
    style = shades[0]
    what = "trained (labels)" if objective == "causal" else "maskable (p = (1-ε)t + ε each)"
    text = Text()
    text.append(f"{safe_text(pair_label)}  ·  template {preview.template}  ·  ")
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
    for index, (token, trained) in enumerate(preview.tokens):
        shade = (shades if trained else PROMPT_STYLES)[index % 2]
        # Style each visual line separately so a highlighted newline does not paint a whole row.
        for part_index, part in enumerate(_visible(token).split("\n")):
            if part_index:
                text.append("\n")
            if part:
                text.append(part, style=shade)
    return text


class MaskPreviewView(Static):
    def show(self, preview: MaskPreview, objective: str, pair_label: str) -> None:
        self.update(preview_text(preview, objective, pair_label))

    def show_message(self, message: str) -> None:
        self.update(Text(message, style="dim"))
