"""The guests' tests use the ledger tests' shop (a network, a restaurant, a card, staff)."""

from tests.ledger.conftest import make_shop  # noqa: F401 - a fixture, registered by import
