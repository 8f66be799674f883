"""Rating an answer from the app (+ / - on a focused answer): the same rating `covey rate`
sets, synced to every device; pressing the same key again takes it back."""

from __future__ import annotations

from app.errors import CoveyError
from sync.conversation import Message
from sync.store import Store


def toggle_rating(store: Store, conv_id: str, message: Message, rating: str) -> str:
    """Rate `message` (or clear the rating it already has); the notice to show."""
    again = message.rating == rating
    try:
        store.rate(conv_id, message.id, None if again else rating)
    except CoveyError as exc:
        return f"Could not rate it: {exc}"
    if again:
        return "Rating taken back."
    return (f"Rated {'good' if rating == 'up' else 'bad'}: kept for `covey export --format "
            "finetune`, on every device.")
