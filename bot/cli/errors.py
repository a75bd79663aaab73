"""How a command ends when the user can fix the problem: one sentence on stderr and exit code 1, no traceback.

Every command wraps its work in :func:`user_errors`, which turns the clear-sentence exceptions of the layers
below (a bad catalog, a missing encoder, an index that cannot load, a broken intents file, an unreachable
database, too little data to train on) into a :class:`UserError`; ``--debug`` lets the original traceback
through for bug reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from bot.store.records import StoreUnavailable
from model.training.registry import RegistryError
from retrieval.bundle import IndexLoadError
from retrieval.catalog import CatalogError

__all__ = ["UserError", "user_errors"]


class UserError(click.ClickException):
    """A problem the user can fix; printed as one sentence."""

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.message}", err=True)


@contextmanager
def user_errors(debug: bool = False) -> Iterator[None]:
    """Turn the library's clear-sentence exceptions into a clean exit."""
    # imported here, not at the top: these pull in numpy and scipy, which `shopbot --help` does not need
    from bot.dialogue.nlu.intents import IntentDataError, IntentModelError
    from model.training.common import TrainDataError
    from retrieval.encoders import EncoderError

    try:
        yield
    except (CatalogError, EncoderError, IndexLoadError, IntentDataError, IntentModelError, StoreUnavailable,
            TrainDataError, RegistryError) as exc:
        if debug:
            raise
        raise UserError(str(exc)) from None
    except KeyboardInterrupt:
        raise UserError("Interrupted; nothing was published, the previous index is still in use.") from None
