"""The guests' tests use the ledger tests' shop (a network, a restaurant, a card, staff)."""

# Fixtures, registered by import.
from tests.ledger.conftest import in_a_window, make_shop  # noqa: F401
