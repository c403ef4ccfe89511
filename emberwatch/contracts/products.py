"""Imagery products. A model line learns from one product, is registered and served under a name
derived from it, and is compared only with the champion of its own product.

Mapbox keeps the names it always had (``<base>`` in MLflow, ``wildfire`` in Triton), so existing
deployments read the same; every other product appends its name.
"""

from __future__ import annotations

import re

MAPBOX = "mapbox"
SENTINEL2_SWIR = "sentinel2-swir"
SENTINEL2_TRUE_COLOUR = "sentinel2-true-colour"
PRODUCTS: tuple[str, ...] = (MAPBOX, SENTINEL2_SWIR, SENTINEL2_TRUE_COLOUR)
PRODUCT_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"

_TRITON_SAFE = re.compile(r"[^A-Za-z0-9_]")
TITLES = {MAPBOX: "Mapbox", SENTINEL2_SWIR: "Sentinel-2 SWIR", SENTINEL2_TRUE_COLOUR: "Sentinel-2 true colour"}


class UnknownProduct(ValueError):
    """A product no model line is defined for."""


def checked_product(product: str) -> str:
    if product not in PRODUCTS:
        raise UnknownProduct(f"unknown imagery product {product!r}; known: {', '.join(PRODUCTS)}")
    return product


def model_name_for(base: str, product: str) -> str:
    """The registered model of a product's line: ``base`` for Mapbox, ``base-<product>`` otherwise."""
    checked_product(product)
    return base if product == MAPBOX else f"{base}-{product}"


def triton_model_for(base: str, product: str) -> str:
    """The Triton model clients call for a product: ``base`` for Mapbox, ``base_<product>`` otherwise."""
    checked_product(product)
    return base if product == MAPBOX else f"{base}_{_TRITON_SAFE.sub('_', product)}"


def product_of_model(base: str, model_name: str) -> str | None:
    """The product whose line registers ``model_name`` under ``base``, or None when none does."""
    for product in PRODUCTS:
        if model_name_for(base, product) == model_name:
            return product
    return None


def product_title(product: str) -> str:
    """How people read a product's name (console, Discord, CLI); an unknown one as it is."""
    return TITLES.get(product, product)
