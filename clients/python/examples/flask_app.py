"""Flask + nudge (documentation; not run by the tests, only compiled).

A change is saved, then published: the browsers that show project 17 get a hint and refetch.
The publisher is made once per process and shared by every request thread; publish() waits
for its ack (at most ack_timeout, 2 s) and returns None instead of failing the request when the
broker is down, stalled or refuses: nudge is a hint, the change itself is already saved.

    pip install flask            # plus Debian's python3-msgpack, or pip install msgpack
    NUDGE_API_KEY=... PYTHONPATH=clients/python flask --app clients/python/examples/flask_app run
"""

import itertools
import os

from flask import Flask, jsonify, request

import nudge

app = Flask(__name__)
pub = nudge.Publisher(os.environ.get("NUDGE_ADDRESS", "127.0.0.1:7400"))  # key: $NUDGE_API_KEY

TASKS = {}  # stands for your database
_ids = itertools.count(1)


@app.post("/projects/<int:project>/tasks")
def add_task(project):
    task = {"id": next(_ids), "project": project, "title": request.json["title"]}
    TASKS[task["id"]] = task  # 1. the change, committed
    # 2. the hint. origin: the browser's nudge connId (its hint says own: true); the seqs
    # ({"project:17": 19}, or None) tell that browser when its own change has been seen.
    seqs = pub.publish(
        ["project:%d" % project],
        data={"task": task["id"]},
        origin=request.headers.get("X-Nudge-Conn") or None,
    )
    return jsonify(task=task, seqs=seqs)


@app.get("/healthz")
def healthz():
    return jsonify(nudge=pub.stats())  # {sent, acked, buffered, dropped, refused, ...}
