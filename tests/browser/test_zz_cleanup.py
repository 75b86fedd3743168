"""After the browser tests, the thread has no event loop left running.

Later tests may use asyncio.
"""

import asyncio
import os

import pytest

pytestmark = pytest.mark.browser


def test_no_event_loop_is_left_running_after_the_browser_tests() -> None:
    async def nothing() -> int:
        return 1

    assert asyncio.run(nothing()) == 1
    assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in os.environ
