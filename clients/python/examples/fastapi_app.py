"""FastAPI + nudge (documentation; not run by the tests, only compiled).

The asyncio publisher: no thread, one connection per process, opened in the lifespan and
flushed on shutdown. `await pub.publish(...)` returns {topic: seq}, or None when the broker is
down, stalled or refuses (the request does not fail: the change itself is already saved).

    pip install fastapi uvicorn  # plus Debian's python3-msgpack, or pip install msgpack
    NUDGE_API_KEY=... PYTHONPATH=clients/python uvicorn --app-dir clients/python/examples fastapi_app:app
"""

import itertools
import os
from contextlib import asynccontextmanager
from typing import Optional

from fastapi import FastAPI, Header
from pydantic import BaseModel

import nudge

pub = nudge.AsyncPublisher(os.environ.get("NUDGE_ADDRESS", "127.0.0.1:7400"))  # key: $NUDGE_API_KEY


@asynccontextmanager
async def lifespan(app):
    await pub.start()  # connect now rather than at the first publish
    yield
    await pub.aclose()  # what is in flight gets up to ack_timeout to be acked


app = FastAPI(lifespan=lifespan)
TASKS = {}  # stands for your database
_ids = itertools.count(1)


class NewTask(BaseModel):
    title: str


@app.post("/projects/{project}/tasks")
async def add_task(project: int, body: NewTask, x_nudge_conn: Optional[str] = Header(default=None)):
    task = {"id": next(_ids), "project": project, "title": body.title}
    TASKS[task["id"]] = task  # 1. the change, committed
    seqs = await pub.publish(["project:%d" % project], data={"task": task["id"]}, origin=x_nudge_conn or None)
    return {"task": task, "seqs": seqs}  # 2. seqs: {"project:17": 19}, or None


@app.get("/healthz")
async def healthz():
    return {"nudge": pub.stats()}
