"""Settings (settings.py): the durations they take."""

import pytest

from mcp_linux_infra.settings import parse_ttl


@pytest.mark.parametrize("text, seconds", [("900", 900), ("900s", 900), ("15m", 900),
                                           ("1h", 3600), (" 2m ", 120)])
def test_parse_ttl(text, seconds):
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "15x", "-5m", "1.5h", "m"])
def test_parse_ttl_refuses(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_ttl(text)
