"""The assistant around search: channels (Telegram, Rasa, terminal), the dialogue, the SQL store, the CLI.

Wiring lives in ``app`` (build_assistant) and ``services`` (load the engine, reindex); ``settings`` is the single
source of configuration. docs/architecture.md shows which package owns what and which way imports point.
"""
