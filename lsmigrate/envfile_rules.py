"""Moved to lsmigrate/deployment/envfile_rules.py."""

from .deployment.envfile_rules import DOCKER_MAX_LINE, GO_SPACE, differences, unwritable  # moved: re-export until merge

__all__ = ["DOCKER_MAX_LINE", "GO_SPACE", "differences", "unwritable"]
