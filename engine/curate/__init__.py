"""Curate: the writer's essays and notes → training pairs, and everything about those pairs.

`ingest` (sources → pieces → pairs), `pairs` (the JSONL file, validation, search),
`tokens` (lengths and budgets per model), `duplicates`, `export`, and `file_tokenizer`
(a model folder's tokenizer without transformers, for the app).
"""
