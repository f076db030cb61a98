"""Model instances built for the hot paths."""

from __future__ import annotations

from typing import Any


def unsaved(model: type, **values: Any) -> Any:
    """`model(**values)` for values by attribute name (a foreign key by its `_id`), every other
    field at its default, built positionally: Django's keyword path costs several times more,
    and a send, a run or an ingested event builds one each."""
    return model(
        *[values[f.attname] if f.attname in values else f.get_default() for f in model._meta.concrete_fields]
    )
