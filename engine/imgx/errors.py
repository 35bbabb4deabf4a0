"""The one exception tree of imgx.

Every error a user can see derives from :class:`ImgxError`. Third-party exceptions are converted at the boundary
(``raise InputError(...) from exc``) so that callers catch one root and messages read
"got X for Y; expected Z" and say how to fix it.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ImgxError",
    "InputError",
    "ModelError",
    "OutputError",
    "PluginError",
    "RecipeError",
    "StageError",
]


class ImgxError(Exception):
    """Root of every imgx error."""


class RecipeError(ImgxError):
    """A recipe is invalid: unknown stage or key, wrong type, cycle, missing input.

    ``location`` is ``"file:line"`` where known and ``key_path`` the dotted path of the offending key.
    """

    def __init__(self, message: str, *, location: str | None = None, key_path: str | None = None) -> None:
        self.message = message
        self.location = location
        self.key_path = key_path
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.location:
            where = self.location + ": "
        if self.key_path:
            where += f"{self.key_path}: "
        return where + self.message


class PluginError(ImgxError):
    """A plugin failed to load or registered something invalid; the message names the plugin."""


class StageError(ImgxError):
    """A stage failed on an item (or could not be constructed); the message names the stage."""


class InputError(ImgxError):
    """An input item cannot be read or decoded: missing, truncated, not an image, over the pixel limit."""


class OutputError(ImgxError):
    """An output cannot be written: unsafe name (escapes the output folder), encoder failure, disk error."""


class BackendError(ImgxError):
    """A compute backend is missing or failed; the message says which extra to install."""


class ModelError(ImgxError):
    """Model weights cannot be had: no source reachable, a wrong checksum, a file missing from its package.

    The message names the model, the file and the source, and says what to do (including placing the file by hand).
    """
