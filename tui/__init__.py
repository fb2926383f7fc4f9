"""voicebench's Textual app. Screens live in tui/screens (each with its .tcss beside it)."""
