"""The errors rocknet reports to its user: each message names the fix.

The `rocknet` command prints these without a traceback (exit status 2); anything else is a bug
and keeps its traceback. Library code raises them; it never imports the CLI for them.

    RocknetError                 base: a problem rocknet explains
    ├── UserError                bad input the user can fix (an option, a dataset, a file)
    │   └── CorruptFile          a plan, data or checkpoint file failed its checks
    └── ToolError                the environment failed (a board, a runtime, a transport)

Module-specific errors (``data.DatasetError``, ``boards.BoardError``, ``fleet.FleetError``,
``flash.FirmwareMismatch``, ``deploy.DeployError``, ...) derive from these. `UserError` is
also a `ValueError`, so code that checks values keeps catching what it always caught.
"""

from __future__ import annotations


class RocknetError(Exception):
    """A problem rocknet explains; the message names the fix."""


class UserError(RocknetError, ValueError):
    """Bad input the user can fix: an option, a dataset, a plan or fleet file."""


class CorruptFile(UserError):
    """A plan, data or checkpoint file failed its checks (torn, edited, or of another kind or
    version); the message says which file and how to re-create it."""


class ToolError(RocknetError, RuntimeError):
    """The environment failed: a board not reachable, a runtime missing, a transport error."""
