"""covey's terminal UI: `covey` with no command (and `make run`).

Thin on purpose: it builds the Textual app (app/ui/) from a Context — the store, the assistant
with its model, and a line about the household — and runs it. `covey chat` keeps the plain
line-based chat for terminals where a full-screen app is not wanted.
"""

from __future__ import annotations

from app.context import Context


def main(ctx: Context | None = None) -> int:
    from app.ui.app import CoveyApp

    own = ctx is None
    context = ctx or Context()
    try:
        context.store.recover_interrupted()
        app = CoveyApp(context.store, context.assistant, household=lambda: _household(context))
        app.run()
        return 0
    finally:
        if own:
            context.close()


def _household(ctx: Context) -> str:
    from sync import household
    from sync.node import NodeLock

    try:
        members = [d for d in household.devices(ctx.store) if not d.revoked]
    except Exception:  # no household yet: a device on its own
        members = []
    others = [d.name for d in members if d.device_id != ctx.identity.device_id]
    node = "node running" if NodeLock.held(ctx.paths.locks_dir) else "no node (covey serve)"
    devices = ", ".join(others) if others else "no paired devices yet (covey pair)"
    return f"{ctx.config.device_name} · {node} · household: {devices}"


if __name__ == "__main__":
    raise SystemExit(main())
