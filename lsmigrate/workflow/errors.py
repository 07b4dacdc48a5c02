"""The two ways a workflow stops before its document is made."""


class Refused(Exception):
    """The run cannot go as asked (a usage or configuration error, exit 2); the message says why and what to do."""


class NothingToMove(Exception):
    """--move-from-current, and the file already points Label Studio at the destination: nothing to do (exit 0)."""
