"""moved: re-export until merge (lsmigrate.stores.base)."""

from ..stores.base import RangeReader, Receipt, Store, StoreError, content_type  # moved: re-export until merge

__all__ = ["RangeReader", "Receipt", "Store", "StoreError", "content_type"]
