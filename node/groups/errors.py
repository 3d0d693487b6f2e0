"""The error of group operations, in a module of its own: the CLI catches it without
importing the operations (node/cli/main.py starts fast)."""

from __future__ import annotations


class OperationError(ValueError):
    """A request that cannot be done as asked; the message is for the user."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
