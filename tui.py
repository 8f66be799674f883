"""covey's terminal front end: `covey` with no command.

For now this is the line-based chat in app/chat.py; the Textual app will take this place, with
the store, model and node passed in the same way.
"""

from __future__ import annotations

from app.chat import ChatSession
from app.context import Context


def main(ctx: Context | None = None) -> int:
    own = ctx is None
    context = ctx or Context()
    try:
        return ChatSession(context).run()
    finally:
        if own:
            context.close()


if __name__ == "__main__":
    raise SystemExit(main())
