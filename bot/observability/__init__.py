"""What an operator sees of a running shopbot: Prometheus metrics (metrics.py), the /healthz, /readyz and
/metrics answers and a small server for them (http.py), readiness checks (ready.py) and JSON logs with a
turn id (logs.py).

It imports no part of the application (an import-linter contract in pyproject.toml), so that every layer,
the dialogue and the store included, may record into it without an import circle.
"""
