"""Personal data on the console: masked by default, revealed for one order on request.

Revealing is an action like any other: it writes an audit entry on the order saying who looked,
in the same transaction that reads the data. After the retention purge (`pipeline/privacy.py`)
the order holds no address, so there is nothing to reveal, and the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ...audit import note
from ...orders import Address
from ...store import OrderRecord, write_session

if TYPE_CHECKING:
    from ...bootstrap import Bridge

EVENT = "operator:reveal_address"


@dataclass(frozen=True)
class Revealed:
    destination: Address | None
    email: str
    phone: str
    purged_at: datetime | None

    @property
    def anything(self) -> bool:
        return bool(self.destination or self.email or self.phone)


def reveal_address(bridge: Bridge, order_id: int, *, actor: str) -> Revealed | None:
    """The order's address and contact data, logged as seen by `actor`; None for no such order."""
    with write_session(bridge.engine) as session:
        row = session.get(OrderRecord, order_id)
        if row is None:
            return None
        order = row.canonical()
        revealed = Revealed(order.destination, order.buyer_email, order.buyer_phone, row.pii_purged_at)
        outcome = "address revealed" if revealed.anything else "nothing to reveal (personal data purged)"
        note(session, row, EVENT, bridge.clock.now(), f"by {actor}: {outcome}")
    return revealed
