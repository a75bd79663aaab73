"""Retraining from the SQL log: the version registry (``registry``), what every trainer shares (``common``),
the trainers (``ranker``, ``recommender``, ``intents``, ``llm``), simulated shoppers (``simulate``), the shop's
own purchase exports (``feedback_import``) and the description evaluation protocol (``describe_eval``).
"""
