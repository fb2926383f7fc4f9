"""Judge: canaries, automatic metrics, blind sessions, the rubric, ratings, the report, and
the store (`judgments.db`) they all write to. `workspace_store.open_workspace_store` is the
door: migrations applied, rubric seeded.
"""
