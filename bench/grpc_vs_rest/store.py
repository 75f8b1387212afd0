"""The inventory service's logic, once for every implementation.

Each server holds a :class:`Store` of its own message objects (google.protobuf
classes for grpcio, fastnet.proto classes for the REST servers): the classes
are passed in, the rules are here, so the implementations differ only in how
they put the service on the wire. Errors are :class:`ServiceError` with a
gRPC status name; each front end turns them into its own error form.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, Iterator

#: Seeded items, ids 1..SEED; created items get the next ids.
SEED = 1000
#: At most this many created items are kept (the oldest go first), so a
#: load test of CreateItem cannot grow a server's memory without bound.
MAX_CREATED = 10_000
DEFAULT_PAGE, MAX_PAGE = 20, 100
MAX_WATCH = 100_000
_SKU = re.compile(r"[A-Z0-9-]{3,32}")
_WORDS = ("steel", "oak", "copper", "linen", "walnut", "granite", "cobalt", "amber",
          "cedar", "silver", "basalt", "ivory")
_THINGS = ("bracket", "hinge", "lamp", "shelf", "valve", "spindle", "clamp", "gasket")
UPDATED_AT = 1_764_547_200  # 2025-12-01T00:00:00Z: fixed, so every run sends the same bytes


class ServiceError(Exception):
    """A call that fails: ``code`` is the gRPC status name (NOT_FOUND,
    INVALID_ARGUMENT), ``violations`` the (field, description) pairs of a
    refused CreateItem."""

    def __init__(self, code: str, message: str,
                 violations: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.violations = violations


def seed_fields(i: int) -> dict[str, Any]:
    """Item ``i``'s fields as keyword arguments (updated_at as seconds)."""
    word, thing = _WORDS[i % len(_WORDS)], _THINGS[i % len(_THINGS)]
    return {"id": i, "sku": f"SKU-{i:05d}", "name": f"{word.title()} {thing} {i}",
            "description": f"A {word} {thing} for general use, batch {i % 97}, "
                           f"rated for {10 + i % 40} kg.",
            "price_cents": 199 + (i * 37) % 90_000, "quantity": (i * 13) % 500,
            "tags": [word, thing] + (["clearance"] if i % 5 == 0 else []),
            "state": 1 + i % 3, "updated_at": UPDATED_AT + i}


def violations(item: Any) -> tuple[tuple[str, str], ...]:
    """What is wrong with a CreateItem's item (empty when it is valid)."""
    out = []
    if not _SKU.fullmatch(item.sku):
        out.append(("item.sku", "must be 3-32 characters of A-Z, 0-9 and '-'"))
    if not 1 <= len(item.name) <= 200:
        out.append(("item.name", "must be 1-200 characters"))
    if item.price_cents < 0:
        out.append(("item.price_cents", "must not be negative"))
    if item.quantity < 0:
        out.append(("item.quantity", "must not be negative"))
    if item.id:
        out.append(("item.id", "is assigned by the server"))
    return tuple(out)


class Store:
    """Items in memory, built with the message classes of one library.

    ``item_cls`` builds Item messages, ``timestamp_cls`` Timestamps,
    ``page_cls`` ListItemsResponse, ``event_cls`` ItemEvent."""

    def __init__(self, item_cls: Any, timestamp_cls: Any, page_cls: Any, event_cls: Any) -> None:
        self.item_cls, self.timestamp_cls = item_cls, timestamp_cls
        self.page_cls, self.event_cls = page_cls, event_cls
        self.items: dict[int, Any] = {}
        self.created: OrderedDict[int, Any] = OrderedDict()
        for i in range(1, SEED + 1):
            fields = seed_fields(i)
            fields["updated_at"] = timestamp_cls(seconds=fields["updated_at"])
            self.items[i] = item_cls(**fields)
        self.next_id = SEED + 1

    def _lookup(self, item_id: int) -> Any:
        item = self.items.get(item_id)
        return item if item is not None else self.created.get(item_id)

    def get(self, item_id: int) -> Any:
        """GetItem: the item, or NOT_FOUND."""
        item = self._lookup(item_id)
        if item is None:
            raise ServiceError("NOT_FOUND", f"item {item_id} does not exist")
        return item

    def list(self, page_size: int, page_token: str) -> Any:
        """ListItems: a page in id order from ``page_token`` (an id, as text)."""
        if page_size == 0:
            page_size = DEFAULT_PAGE
        if not 1 <= page_size <= MAX_PAGE:
            raise ServiceError("INVALID_ARGUMENT", f"page_size must be 1-{MAX_PAGE}",
                               (("page_size", f"must be 1-{MAX_PAGE}"),))
        start = 1
        if page_token:
            if not page_token.isdigit():
                raise ServiceError("INVALID_ARGUMENT", "page_token is not one this server gave",
                                   (("page_token", "is not one this server gave"),))
            start = int(page_token)
        page, last = [], 0
        for item_id in range(start, self.next_id):
            item = self._lookup(item_id)
            if item is not None:
                page.append(item)
                last = item_id
                if len(page) == page_size:
                    break
        more = page and last + 1 < self.next_id and len(page) == page_size
        return self.page_cls(items=page, next_page_token=str(last + 1) if more else "")

    def create(self, item: Any) -> Any:
        """CreateItem: the item stored with its new id, or INVALID_ARGUMENT
        naming every field that is wrong."""
        wrong = violations(item)
        if wrong:
            raise ServiceError("INVALID_ARGUMENT", "invalid item: " + "; ".join(
                f"{field} {why}" for field, why in wrong), wrong)
        # A new message rather than assignments: the two libraries set
        # submessages differently (google.protobuf refuses assigning one).
        item = self.item_cls(
            id=self.next_id, sku=item.sku, name=item.name, description=item.description,
            price_cents=item.price_cents, quantity=item.quantity, tags=list(item.tags),
            state=item.state or 1,
            updated_at=self.timestamp_cls(seconds=UPDATED_AT + self.next_id))
        self.created[self.next_id] = item
        self.next_id += 1
        if len(self.created) > MAX_CREATED:
            self.created.popitem(last=False)
        return item

    def watch(self, count: int) -> Iterator[Any]:
        """WatchItems: ``count`` stock updates, made as they are sent."""
        if not 1 <= count <= MAX_WATCH:
            raise ServiceError("INVALID_ARGUMENT", f"count must be 1-{MAX_WATCH}",
                               (("count", f"must be 1-{MAX_WATCH}"),))
        return self._events(count)

    def _events(self, count: int) -> Iterator[Any]:
        event = self.event_cls
        for seq in range(1, count + 1):
            yield event(sequence=seq, item_id=1 + seq % SEED, quantity=(seq * 7) % 500)
