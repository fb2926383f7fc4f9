"""Models: loading (one path for every consumer), families and special ids, the native LLaDA
implementation (`engine.models.llada`), and the demo models' builder (`python -m engine.models.demo`).
"""
