"""Measure the peak tensor memory of real training steps on CPU (for the estimator's check).

`PeakTensorMemory` is a TorchDispatchMode that accounts every tensor storage an operation
creates until Python frees it (a finalizer on the storage), like tracemalloc for tensors.
Storages alive before the step (weights, optimizer states) are the baseline; peak = baseline
+ the highest sum of storages the step held at once.
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


def measured_training_peak(folder: Path, method: str, *, batch: int, length: int, checkpointing: bool,
                           rank: int = 8, family: str | None = None) -> int:
    """Peak bytes of the second optimizer step (the first creates AdamW's states) of `method`
    on the model in `folder`, float32 on CPU, loss as training computes it."""
    from engine.models.loading import load_model
    from engine.train.lora import apply_lora
    from engine.train.objectives import diffusion_training_loss

    torch.manual_seed(0)
    loaded = load_model(str(folder), family=family, device="cpu", dtype="float32")
    model = loaded.model
    if checkpointing:
        model.config.use_cache = False
        model.activation_checkpointing_enable({"use_reentrant": False})
    if method == "lora":
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
        if method == "diffusion":
            mask_id = loaded.tokenizer.mask_token_id
            loss = diffusion_training_loss(model, ids, [length // 4] * batch, mask_id)
        else:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    existing = list(model.parameters()) + list(model.buffers()) + [ids]
    existing += [value for state in optimizer.state.values() for value in state.values() if torch.is_tensor(value)]
    with PeakTensorMemory(existing) as meter:
        step()
    return meter.peak_bytes
