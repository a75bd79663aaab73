"""The SQL log and conversation state. ``database`` (the :class:`Store` every channel uses), ``records``
(the plain data it takes and returns; no SQLAlchemy), ``schema`` (the tables), ``operations`` (writes as
plain operations, applied to SQL), ``outbox`` (the outage buffer), ``reports`` (stats, export, training
reads), ``migrations`` (Alembic)."""
