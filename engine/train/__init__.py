"""Fine-tuning: LoRA / QLoRA / full for causal LMs, masked-diffusion for LLaDA-style models.

    python -m engine.train --model demo-ar --method lora --max-steps 30 --json
    voicebench train --model demo-diffusion --method diffusion

Modules: `config` (TrainConfig, TOML), `data` (pairs → examples → batches), `lora`
(targets per family), `trainer` (transformers Trainer subclass + event callback),
`events` (the JSON-lines protocol), `canaries`, `run` (one run end to end), `record`
(events.jsonl, status.json, stdout, store), `runs` (reading run folders back), `options`
(command-line flags). Importing this package does not import torch.
"""
