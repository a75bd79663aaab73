"""Understanding one message. ``parser`` (the :class:`NLU`: intent + slots per catalog), ``intents`` (the
classifier and its packaged model), ``slots`` (filters, result references, order numbers), ``categories``
(the catalog's category and brand words), ``rules`` (where a pattern overrides the classifier), ``data``
(the examples, the weights and the scripts that make them)."""
