"""Recommendations. ``recommender`` (the built-in recommender: complements, co-occurrence, similarity,
popularity, with reasons), ``sequential`` (the SASRec-style next-item model), ``cooccurrence`` (the item-item
counts both build on), ``evaluation`` (the next-item protocol)."""
