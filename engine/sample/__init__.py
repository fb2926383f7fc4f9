"""Sample: the one masked-diffusion sampler, the causal token stream, traces, and the
sampler process the Canvas screen watches (`python -m engine.sample.service`).
"""
