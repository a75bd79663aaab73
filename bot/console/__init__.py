"""The shop owner's web console (`shopbot console`): overview, conversations and handoffs, catalog upload and
reindex, model versions, and demand gaps, over the same store, index and registry as the bot."""
