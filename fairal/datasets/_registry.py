"""Loading a built-in data set by name, and listing them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._builtin import load_adult, load_compas, load_digits, load_german
from ._dataset import Dataset, DatasetError
from ._synthetic import make_synthetic

__all__ = ["load", "list_datasets"]

#: name → (loader, sensitive options with the default first, one-line description)
_REGISTRY: dict[str, tuple[Callable[..., Dataset], tuple[str, ...], str]] = {
    "adult": (load_adult, ("sex", "race"), "UCI Adult census income: predict income >50K (45,222 rows)"),
    "compas": (
        load_compas,
        ("race", "sex"),
        "ProPublica COMPAS: predict two-year recidivism (5,278 rows by race, 6,172 by sex)",
    ),
    "german": (load_german, ("sex",), "Statlog German Credit: predict good credit risk (1,000 rows)"),
    "synthetic": (
        make_synthetic,
        ("z",),
        "FR-Train's synthetic 2-D data, z correlated with the features (3,000 rows by default)",
    ),
    "digits": (load_digits, ("digit",), "8x8 handwritten digits, the class is the group (1,797 rows)"),
}


def load(name: str, **kwargs: Any) -> Dataset:
    """The built-in data set ``name``, loaded with its loader's keyword arguments.

    ``load("adult", sensitive="race")`` is ``load_adult(sensitive="race")``;
    ``"synthetic"`` calls :func:`make_synthetic`. CSV files go through
    :func:`load_csv` instead.
    """
    try:
        loader = _REGISTRY[name][0]
    except (KeyError, TypeError):
        known = ", ".join(repr(k) for k in _REGISTRY)
        raise DatasetError(f"unknown data set {name!r}; known data sets: {known}") from None
    return loader(**kwargs)


def list_datasets() -> list[dict[str, Any]]:
    """One dict per built-in data set: ``name``, ``description``, ``sensitive`` (options, default first)."""
    return [
        {"name": name, "description": description, "sensitive": list(options)}
        for name, (_, options, description) in _REGISTRY.items()
    ]
