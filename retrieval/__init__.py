"""Catalog -> vectors -> candidates; imports nothing from ``bot`` or ``model``. ``catalog`` (products, loaders,
validation), ``descriptions`` (the generated-descriptions file), ``query`` (filters from text), ``lexical``
(BM25), ``encoders`` + ``fastbert`` (text encoders), ``index`` (the FAISS wrapper), ``bundle`` (the index
bundle on disk: manifest, build directories, atomic swap), ``indexer`` (catalog -> bundle, incremental
reindex), ``search`` (hybrid ranking), ``rerank`` (the learned re-ranker), ``policy`` (policy passages),
``evaluation`` (the NDCG/Recall protocol), ``threads`` (CPU thread pools), ``recommend/``."""
