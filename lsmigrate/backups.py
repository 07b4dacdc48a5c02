"""Moved to lsmigrate/deployment/backups.py (the rollback stack) and deployment/switch_record.py."""

from .deployment.backups import (  # moved: re-export until merge
    BACKUP_MARK,
    Rollback,
    entries,
    latest,
    latest_backup,
    listing,
    render_listing,
    render_rollback,
    roll_back,
    rollback,
    rollback_document,
    switch,
    write_with_backup,
)
from .deployment.switch_record import RECORD_SUFFIX, Entry, describe  # moved: re-export until merge

__all__ = [
    "BACKUP_MARK", "RECORD_SUFFIX", "Entry", "Rollback", "describe", "entries", "latest", "latest_backup", "listing",
    "render_listing", "render_rollback", "roll_back", "rollback", "rollback_document", "switch", "write_with_backup",
]
