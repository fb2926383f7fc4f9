"""voicebench engine: everything that is not UI.

Importable and testable headless. Never imports textual; torch and transformers are
imported lazily inside the functions that need them, so `voicebench --help` stays fast.
"""
