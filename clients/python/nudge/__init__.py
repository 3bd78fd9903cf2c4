"""nudge: publish cache-invalidation hints to a nudged broker from Python backends.

    pub = nudge.Publisher("127.0.0.1:7400")          # Flask, Django: share it between threads
    seqs = pub.publish(["project:17"], data={"rev": 12})   # {"project:17": 19}, or None

    pub = nudge.AsyncPublisher("127.0.0.1:7400")     # FastAPI, asyncio
    seqs = await pub.publish(["project:17"])

Fail-open: publish() returns None when the broker is down, stalled or refuses (and keeps the
publish buffered for the next connection), so a request never fails because nudge does;
wait=True raises NudgeError instead. docs/clients.md §Python publisher.
"""

from ._aio import AsyncPublisher
from ._core import NudgeError, __version__
from ._sync import Publisher

__all__ = ["Publisher", "AsyncPublisher", "NudgeError", "__version__"]
