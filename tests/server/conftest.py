"""The read estate for the server's tests (mcp_support): `estate(names, **options)` makes
one, and every estate made is closed after the test."""

import pytest
from mcp_support import make_estate


@pytest.fixture
def estate(tmp_path):
    made = []

    def make(names=("web-01", "web-02"), **kwargs):
        """Hosts `names`; `tier=previous_tier` gives them the previous version's read tier."""
        e = make_estate(tmp_path / f"estate-{len(made)}", list(names), **kwargs)
        made.append(e)
        return e
    yield make
    for e in made:
        e.close()


@pytest.fixture(params=["auto", "legacy"])
def mode(request):
    """Both protocol eras a client may speak: the modern one (what the SDK's client picks
    against this server) and the handshake era (what Claude Desktop speaks today)."""
    return request.param


@pytest.fixture(scope="session")
def previous_tier(tmp_path_factory):
    """The target tier of the version before this one (previous_support)."""
    from previous_support import PreviousTier
    return PreviousTier(tmp_path_factory.mktemp("previous"))
