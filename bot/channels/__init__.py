"""One folder (or module) per channel: it turns the platform's messages into ``Event``s, calls the assistant
and renders the ``Reply``s. A channel translates and decides nothing, and never imports another channel.
"""
