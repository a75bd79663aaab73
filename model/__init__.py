"""Everything with a model in it: ``llm`` (the language-model contract and its backends), ``writing`` (text
the model writes, verified against the facts), ``training`` (retraining from the log, versions, protocols).
"""
