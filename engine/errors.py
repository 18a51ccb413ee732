"""The one base class of every error the user can act on (a bad setting, no marks yet, a damaged file, a folder
that is not ours). The CLI prints such an error as one line and the GUI as a message box; anything else is a bug
and keeps its traceback, so it reaches whoever can fix it."""
from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; the message says what happened and what to do."""
