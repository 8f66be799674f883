"""covey: the device — configuration, CLI, the assistant pipeline."""

import _signal  # (the built-in half of `signal`: importing it cannot itself be interrupted)
import os as _os
import sys as _sys


def _interrupted_while_starting(signum: int, frame: object) -> None:
    _os._exit(130)  # (nothing was done yet: nothing to keep, and no traceback to show)


# Ctrl+C while covey is still importing its modules ends it quietly; the command itself gets
# Python's usual KeyboardInterrupt back (app.cli.entry_point). Only for the `covey` command
# (and `python -m app`), never for a program that merely imports this package.
if _sys.argv and (_os.path.basename(_sys.argv[0]) == "covey" or _sys.argv[0] == "-m"):
    _signal.signal(_signal.SIGINT, _interrupted_while_starting)
