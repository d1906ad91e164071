"""The guest's personal data in an iiko order event, kept apart from the event (152-FZ).

`pos_events.payload` keeps the event without the fields below; `pos_events.personal` keeps
them as JSON `{path: value}`, encrypted with the PII keyring, and processing (an admin's
replay too) puts them back in memory. `pos_events.phone_hash` is the blind index of the
order's phone, so that erasing a person finds their events.

The fields, all on the order (`eventInfo.order`, of table and delivery orders alike):

- `phone`: the guest's phone, which also finds the member;
- `customer`: the iiko guest card (name, surname, gender, birth date, comment, blacklist
  reason) or a one-time customer's name;
- `deliveryPoint`: the delivery address and its coordinates;
- `comment`: the delivery order's free text (door codes, "call me on …").

The rest carries nothing that identifies the guest: `guestsInfo` is a head count, `waiter`,
`operator` and `courierInfo` are the network's own employees, and ids, items, payments and
sums are what the ledger records anyway.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from maxloyalty.identity.service.contacts import normalize_phone, phone_index
from maxloyalty.kit.errors import AppError

ORDER = ("eventInfo", "order")
FIELDS = ("phone", "customer", "deliveryPoint", "comment")
PHONE = ".".join((*ORDER, "phone"))


@dataclass(frozen=True)
class Separated:
    payload: dict[str, Any]  # the event without the personal fields
    personal: str | None  # JSON {path: value}, to be stored encrypted
    phone_hash: str | None  # the blind index of the order's phone, if it is one


def _order(payload: dict[str, Any]) -> dict[str, Any] | None:
    info = payload.get(ORDER[0])
    order = info.get(ORDER[1]) if isinstance(info, dict) else None
    return order if isinstance(order, dict) else None


def _phone_hash(phone: Any) -> str | None:
    if not isinstance(phone, str):
        return None
    try:
        return phone_index(normalize_phone(phone))
    except AppError:  # not a phone number: nothing to find the person by
        return None


def separate(payload: dict[str, Any]) -> Separated:
    """Split the personal fields (those not null) off a copy of the event."""
    order = _order(payload)
    found = {name: order[name] for name in FIELDS if order.get(name) is not None} if order else {}
    if not found:
        return Separated(payload, None, None)
    kept = copy.deepcopy(payload)
    kept_order = _order(kept)
    assert kept_order is not None
    for name in found:
        del kept_order[name]
    personal = json.dumps(
        {".".join((*ORDER, name)): value for name, value in found.items()}, ensure_ascii=False
    )
    return Separated(kept, personal, _phone_hash(found.get("phone")))


def merged(payload: dict[str, Any], personal: str | None) -> dict[str, Any]:
    """The event as iiko sent it: a copy of `payload` with the personal fields back in."""
    if personal is None:
        return payload
    whole = copy.deepcopy(payload)
    for path, value in json.loads(personal).items():
        *parents, name = path.split(".")
        node = whole
        for key in parents:
            node = node.setdefault(key, {})
        node[name] = value
    return whole
