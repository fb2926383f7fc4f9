"""Models: loading (one path for every consumer), families and special ids, and the demo
models' builder (`python -m engine.models.demo`).
"""
