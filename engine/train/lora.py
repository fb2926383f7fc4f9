"""LoRA targets per model family, resolved to exact module names, and the peft wrapping.

Targets are module-name suffixes (`q_proj`, `c_attn`, `Wqkv` …). They resolve only to
linear layers *inside the repeated blocks* — modules whose dotted path has a numeric part
such as `layers.3.` — and never to the model's output head (`get_output_embeddings()`), so an
LM head or embedding that shares a suffix is never adapted. LLaDA needs this: its block MLP
output (`model.transformer.blocks.N.ff_out`, a target) and its LM head
(`model.transformer.ff_out`, never a target) are both called `ff_out`.
A target list that matches nothing is an error naming the list and the linear layers the
model does have, never a silent no-op.
"""

from __future__ import annotations

from typing import Any

from engine.train.config import DEFAULT_LORA_TARGETS


class LoraTargetError(Exception):
    """The LoRA target list matches no linear layer of the model."""


def _is_linear(module: Any) -> bool:
    import torch

    if isinstance(module, torch.nn.Linear):
        return True
    # GPT-2's Conv1D is a transposed linear layer; bitsandbytes' Linear4bit subclasses nn.Linear.
    return type(module).__name__ == "Conv1D"


def _inside_block(name: str) -> bool:
    return any(part.isdigit() for part in name.split("."))


def linear_module_names(model: Any) -> list[str]:
    """Dotted names of every linear layer in the model."""
    return [name for name, module in model.named_modules() if name and _is_linear(module)]


def _output_head(model: Any) -> Any:
    try:
        return model.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return None


def default_targets(model: Any, family: str) -> list[str] | None:
    """Suffixes for this model's type, or None (meaning every linear layer inside the blocks)."""
    model_type = str(getattr(model.config, "model_type", "") or "").lower()
    if family == "llada":
        model_type = "llada"
    targets = DEFAULT_LORA_TARGETS.get(model_type)
    return list(targets) if targets else None


def resolve_targets(model: Any, targets: list[str] | None, family: str, source: str = "model") -> list[str]:
    """Exact module names to adapt. `targets=None` uses the family default."""
    names = linear_module_names(model)
    wanted = targets if targets is not None else default_targets(model, family)
    head = _output_head(model)
    modules = dict(model.named_modules())
    in_blocks = [name for name in names if _inside_block(name) and (head is None or modules[name] is not head)]
    if wanted is None:
        resolved = in_blocks
    else:
        suffixes = set(wanted)
        resolved = [name for name in in_blocks if name.rsplit(".", 1)[-1] in suffixes]
    if not resolved:
        available = sorted({name.rsplit(".", 1)[-1] for name in in_blocks}) or sorted(
            {name.rsplit(".", 1)[-1] for name in names})
        raise LoraTargetError(
            f"{source}: LoRA targets {list(wanted or [])} match no linear layer inside the model's "
            f"blocks. Its linear layers are named {available}. Pass some of these with "
            "--lora-targets (comma-separated) or set lora_targets in the config."
        )
    return resolved


def apply_lora(model: Any, *, family: str, rank: int, alpha: int, dropout: float,
               targets: list[str] | None, source: str = "model",
               base_reference: str | None = None) -> tuple[Any, list[str]]:
    """Wrap `model` with fresh LoRA adapters on the resolved targets; returns (peft model, names).

    `base_reference` (engine.models.portable.base_reference) is what saved adapters name as
    their base instead of the absolute folder peft would record, so a moved workspace still
    loads them.
    """
    from peft import LoraConfig, get_peft_model

    resolved = resolve_targets(model, targets, family, source)
    model_type = str(getattr(model.config, "model_type", "") or "").lower()
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=resolved,
        bias="none",
        fan_in_fan_out=model_type == "gpt2",  # Conv1D stores weights transposed
    )
    wrapped = get_peft_model(model, config)
    if base_reference is not None:
        name_base_portably(wrapped, base_reference)
    return wrapped, resolved


def name_base_portably(peft_model: Any, base_reference: str) -> None:
    """Make saved adapters name their base by `base_reference` (workspace name or Hub id).

    With a name instead of a folder, peft's default save would look the name up on the Hub
    to see whether the vocabulary was resized ("auto" embedding saving). Our targets are
    linear layers inside the blocks, never the embeddings, so saves skip that lookup.
    """
    import functools

    peft_model.peft_config["default"].base_model_name_or_path = base_reference
    peft_model.save_pretrained = functools.partial(peft_model.save_pretrained, save_embedding_layers=False)


def parameter_counts(model: Any) -> tuple[int, int]:
    """(trainable, total) parameters; 4-bit weights count as their unpacked size."""
    trainable = total = 0
    for parameter in model.parameters():
        count = parameter.numel()
        if hasattr(parameter, "quant_state") or type(parameter).__name__ == "Params4bit":
            count *= 2  # two 4-bit values per stored byte
        total += count
        if parameter.requires_grad:
            trainable += count
    return trainable, total
