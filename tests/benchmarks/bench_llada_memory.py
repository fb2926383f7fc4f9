"""Peak memory of one LLaDA training step with and without gradient checkpointing, on CPU.

    python tests/benchmarks/bench_llada_memory.py [--layers 16] [--tokens 1024] [--d-model 64]

Builds a deep tiny native LLaDA (random weights, LLaDA's block layout), runs one forward and
backward pass (cross-entropy on every position) at `--tokens` tokens, and prints the peak of
the bytes held by tensors the step allocates — activations, attention and MLP intermediates,
logits, gradients (which outlive the step) — with checkpointing off and on, and their ratio. Weights exist before the
step and are not counted (they are the same both ways; printed for scale).

How it counts: a TorchDispatchMode sees every tensor an operator returns, adds its storage's
bytes once, and subtracts them when the storage is freed (a weakref finaliser on the storage,
which PyTorch keeps as one Python object for the storage's life). That is the allocator's view
without the allocator's caching, so the figure is exact and the same on every run; wall-clock
time is not measured here.
"""

from __future__ import annotations

import argparse
import sys
import weakref
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils._pytree import tree_flatten  # noqa: E402


class LiveTensorBytes(TorchDispatchMode):
    """Bytes held by tensors created under this mode: `live` now, `peak` the most at once.
    Storages of `existing` tensors (the weights) are never counted, nor are views of them."""

    def __init__(self, existing=()) -> None:
        super().__init__()
        self.live = self.peak = 0
        self._tracked: set[int] = set()
        self._existing = [tensor.untyped_storage() for tensor in existing]  # held, so their ids stay theirs
        self._existing_ids = {id(storage) for storage in self._existing}

    def _release(self, key: int, size: int) -> None:
        self._tracked.discard(key)
        self.live -= size

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for value in tree_flatten(result)[0]:
            if isinstance(value, torch.Tensor) and value.device.type != "meta":
                storage = value.untyped_storage()
                key = id(storage)
                if key not in self._tracked and key not in self._existing_ids:  # views add nothing
                    self._tracked.add(key)
                    self.live += storage.nbytes()
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(storage, self._release, key, storage.nbytes())
        return result


def deep_tiny_llada(layers: int, d_model: int, tokens: int):
    """A random native LLaDA: `layers` blocks, LLaDA's 3x MLP ratio, a 256-entry vocabulary."""
    from engine.models.llada.configuration import LLaDAConfig
    from engine.models.llada.modeling import LLaDAModelLM

    torch.manual_seed(0)
    config = LLaDAConfig(d_model=d_model, n_heads=4, n_kv_heads=4, n_layers=layers, mlp_hidden_size=3 * d_model,
                         vocab_size=256, embedding_size=256, max_sequence_length=tokens)
    return LLaDAModelLM(config).train()


def training_step_peak_bytes(model, input_ids, *, checkpointing: bool) -> int:
    """Peak bytes allocated by one forward + backward pass (gradients cleared before)."""
    if checkpointing:
        model.activation_checkpointing_enable()
    else:
        model.activation_checkpointing_disable()
    model.zero_grad(set_to_none=True)
    counter = LiveTensorBytes(existing=list(model.parameters()) + [input_ids])
    with counter:
        loss = model(input_ids=input_ids, labels=input_ids).loss
        loss.backward()
        del loss
    return counter.peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=16, help="blocks in the tiny model")
    parser.add_argument("--tokens", type=int, default=1024, help="sequence length of the step")
    parser.add_argument("--d-model", type=int, default=64, help="model width")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = deep_tiny_llada(args.layers, args.d_model, args.tokens)
    input_ids = torch.randint(0, 256, (1, args.tokens), generator=torch.Generator().manual_seed(1))
    weights = sum(parameter.numel() * parameter.element_size() for parameter in model.parameters())
    plain = training_step_peak_bytes(model, input_ids, checkpointing=False)
    checkpointed = training_step_peak_bytes(model, input_ids, checkpointing=True)
    mib = 2 ** 20
    print(f"tiny LLaDA: {args.layers} blocks, d_model {args.d_model}, {args.tokens} tokens, "
          f"weights {weights / mib:.1f} MiB (not counted)")
    print(f"step peak without checkpointing: {plain / mib:8.1f} MiB")
    print(f"step peak with checkpointing:    {checkpointed / mib:8.1f} MiB")
    print(f"ratio (with / without): {checkpointed / plain:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
