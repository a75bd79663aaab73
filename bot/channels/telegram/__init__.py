"""The Telegram channel: the python-telegram-bot application (``bot``), rendering of replies as HTML, cards and
buttons (``render``), the shop team's admin commands (``admin``), and the Bot API HTTP client (``http``).
"""
