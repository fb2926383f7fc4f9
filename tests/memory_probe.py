"""Measure the peak tensor memory of real training steps on CPU (for the estimator's check).

`PeakTensorMemory` is a TorchDispatchMode that accounts every tensor storage an operation
creates until Python frees it (a finalizer on the storage), like tracemalloc for tensors.
Storages alive before the step (weights, optimizer states) are the baseline; peak = baseline
+ the highest sum of storages the step held at once.

QLoRA: the 4-bit weights (Params4bit, two NF4 values per byte) and their quantisation
constants (`quant_state`: 8-bit absmax per 64 weights, the float32 absmax of those per 256,
the code tables) are part of the baseline. bitsandbytes' 4-bit forward is one custom operator
(`bitsandbytes::gemm_4bit`) that dequantises the layer's weight to the input's dtype and
multiplies: the mode sees its output, not the dequantised weight inside it. Backward
dequantises with separate operators (`dequantize_4bit`, then a cast), which the mode does see.
Either way the copy is one layer's weight, freed before the next layer's, on a GPU as here.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class PeakTensorMemory(TorchDispatchMode):
    def __init__(self, existing: list[torch.Tensor]):
        super().__init__()
        self.live: dict[int, int] = {}
        self.baseline = 0
        for tensor in existing:
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in self.live:
                self.live[storage.data_ptr()] = 0  # known: counted in the baseline, never again
                self.baseline += storage.nbytes()
        self.current = self.peak = 0

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key in self.live or storage.nbytes() == 0:
            return
        self.live[key] = storage.nbytes()
        self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for item in tree_flatten(out)[0]:
            if isinstance(item, torch.Tensor) and item.device.type == "cpu":
                self._track(item)
        return out

    @property
    def peak_bytes(self) -> int:
        return self.baseline + self.peak


def quantisation_tensors(model: torch.nn.Module) -> list[torch.Tensor]:
    """Every tensor a 4-bit model keeps beside its parameters: each Params4bit's quant_state
    (absmax, code, offset and, with double quantisation, the nested state's absmax and code)."""
    tensors: list[torch.Tensor] = []
    for parameter in model.parameters():
        state = getattr(parameter, "quant_state", None)
        while state is not None:
            tensors += [value for value in (state.absmax, state.code, getattr(state, "offset", None))
                        if torch.is_tensor(value)]
            state = getattr(state, "state2", None)
    return tensors


def measured_training_peak(folder: Path, method: str, *, batch: int, length: int, checkpointing: bool,
                           rank: int = 8, family: str | None = None, dtype: str = "float32") -> int:
    """Peak bytes of the second optimizer step (the first creates AdamW's states) of `method`
    on the model in `folder`, loaded in `dtype` on CPU, loss as training computes it. QLoRA
    loads NF4 weights computing in `dtype` and prepares them as training does (engine/train/run.py)."""
    from engine.models.loading import DIFFUSION_FAMILIES, load_model
    from engine.sample.diffusion import special_ids
    from engine.train.lora import apply_lora
    from engine.train.objectives import diffusion_training_loss

    torch.manual_seed(0)
    quantised = method == "qlora"
    loaded = load_model(str(folder), family=family, device="cpu", dtype=dtype, load_in_4bit=quantised)
    model = loaded.model
    if quantised:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if checkpointing:
        model.config.use_cache = False
        model.activation_checkpointing_enable({"use_reentrant": False})
    if method in ("lora", "qlora"):
        model, _ = apply_lora(model, family=loaded.family, rank=rank, alpha=2 * rank, dropout=0.0, targets=None)
    else:
        for parameter in model.parameters():
            parameter.requires_grad_(True)
    model.train()
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=1e-4)
    vocab = model.config.vocab_size
    ids = torch.randint(3, vocab, (batch, length))

    def step() -> None:
        if method == "diffusion" or loaded.family in DIFFUSION_FAMILIES:
            mask_id = special_ids(loaded).mask  # LLaDA's fixed id, else the tokenizer's
            loss = diffusion_training_loss(model, ids, [length // 4] * batch, mask_id)
        else:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    existing = list(model.parameters()) + list(model.buffers()) + quantisation_tensors(model) + [ids]
    existing += [value for state in optimizer.state.values() for value in state.values() if torch.is_tensor(value)]
    with PeakTensorMemory(existing) as meter:
        step()
    return meter.peak_bytes
