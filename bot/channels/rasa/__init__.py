"""The Rasa channel: custom actions (``actions``) a Rasa 3.x assistant calls, the translation of its trackers
and of our replies (``translate``), and the checked rasa-sdk action server (``server``).
"""
