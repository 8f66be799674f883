"""covey's terminal UI: `covey` with no command (and `make run`).

Thin on purpose: it hosts this device's node while the app is open (unless `covey serve`
already runs it, or sync_in_app is off), builds the Textual app (app/ui/) from a Context — the
store, the model, the settings — and runs it. `covey chat` keeps the plain line chat for
terminals where a full-screen app is not wanted.
"""

from __future__ import annotations

from app.context import Context


def main(ctx: Context | None = None) -> int:
    from app.node_host import NodeHost
    from app.ui.app import CoveyApp

    own = ctx is None
    context = ctx or Context()
    node = NodeHost(context) if context.config.sync_in_app else None
    try:
        app = CoveyApp(context, node)  # (it starts the node once the window is up)
        app.run()
        # Quitting mid-answer stops it (the app sets the cancel event); let the generation
        # thread record how the answer ended before the store closes.
        app.chat.idle.wait(10)
        return 0
    finally:
        if node is not None:
            node.stop()
        if own:
            context.close()


if __name__ == "__main__":
    raise SystemExit(main())
