"""The preflight checks: what `doctor` prints and what local-to-* runs before copying."""

from __future__ import annotations


def run_doctor(target, *, retries: int, apply_cors: bool) -> dict:
    """One function, one set of severities, for both commands."""
    from .. import doctor

    return doctor.preflight(target, retries=retries, apply_cors=apply_cors)
