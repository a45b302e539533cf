"""Numbers typed by people are ASCII digits: "¹" passes str.isdigit() but int() refuses it, so
every place that reads one says what is wrong instead of raising from int()."""

from __future__ import annotations

import pytest

from farmhand.options import parse_address

pytestmark = pytest.mark.fast


@pytest.mark.parametrize("text", ["localhost:¹", "localhost:٣", "localhost:0", "localhost:65536"])
def test_a_port_that_is_not_ascii_digits_is_a_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match="bad port in address"):
        parse_address(text)
