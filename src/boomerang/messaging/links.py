"""The signed links that leave in messages and lead back to Boomerang: a click's redirect, the open pixel,
one-click unsubscribe, the preference centre, and the token a customer's app reads their in-app inbox with.

Each link is a token signed for its purpose (core.signing): one made for a click cannot open a
preference centre, and an unsigned or altered one is refused, so no link redirects anywhere it was
not sent to.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from boomerang.core.signing import BadToken, Signer

CLICK, OPEN, UNSUBSCRIBE, PREFERENCES, INBOX = "click", "open", "unsubscribe", "preferences", "inbox"


@dataclass(frozen=True)
class Links:
    signer: Signer
    public_url: str  # where customers reach Boomerang

    @property
    def base(self) -> str:
        return self.public_url.rstrip("/")

    def click(self, message_id: int, url: str) -> str:
        """A tracked link to `url` (http or https only): the click is recorded, then the customer is sent on."""
        if urlsplit(url).scheme not in ("http", "https"):
            return url  # mailto:, tel: and anchors are not tracked
        return f"{self.base}/t/c/{self.signer.sign(CLICK, [message_id, url])}"

    def pixel(self, message_id: int) -> str:
        return f"{self.base}/t/o/{self.signer.sign(OPEN, [message_id])}.gif"

    def unsubscribe(self, message_id: int) -> str:
        """RFC 8058 one-click: a POST to it unsubscribes at once; a GET shows a page asking to confirm."""
        return f"{self.base}/u/{self.signer.sign(UNSUBSCRIBE, [message_id])}"

    def preferences_token(self, customer_id: str) -> str:
        """The customer's own token: their preference centre, and their points at /v1/loyalty/{token}."""
        return self.signer.sign(PREFERENCES, [customer_id])

    def preferences(self, customer_id: str) -> str:
        return f"{self.base}/preferences/{self.preferences_token(customer_id)}"

    def points(self, customer_id: str) -> str:
        return f"{self.base}/v1/loyalty/{self.preferences_token(customer_id)}"

    def inbox_token(self, customer_id: str) -> str:
        """What the app passes to read a customer's inbox at /v1/inbox/{token}."""
        return self.signer.sign(INBOX, [customer_id])

    def inbox(self, customer_id: str) -> str:
        return f"{self.base}/v1/inbox/{self.inbox_token(customer_id)}"

    # -- reading them back -------------------------------------------------------------------------

    def message_of(self, purpose: str, token: str) -> tuple[int, list]:
        """The message id a click, open or unsubscribe token names, and its whole payload; BadToken otherwise."""
        payload = self.signer.verify(purpose, token)
        try:
            return int(payload[0]), payload
        except (ValueError, TypeError, IndexError, KeyError):
            raise BadToken("invalid link") from None

    def customer_of(self, purpose: str, token: str) -> str:
        """The customer a preferences or inbox token names; BadToken otherwise."""
        payload = self.signer.verify(purpose, token)
        try:
            return str(payload[0])
        except (TypeError, IndexError, KeyError):
            raise BadToken("invalid link") from None
