"""The conversation. ``manager`` (the :class:`DialogueManager` every channel calls: a turn's life and its
routing), the services it routes to (``search``, ``products``, ``recommend``, ``support``) over the shared
``turn``, ``understanding`` (what a message means, from the NLU or Rasa), ``replies`` (events in, replies
out), ``messages`` (every sentence it says), ``nlu`` (intent and slots)."""
