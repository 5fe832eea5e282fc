"""A tiny function app for the devhost tests: HTTP routes, a timer and a queue trigger.

Non-HTTP functions record what they saw as JSON lines in the file named by DEVHOST_FIXTURE_RECORD.
"""

import asyncio
import json
import os
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def record(**entry: object) -> None:
    path = os.environ.get("DEVHOST_FIXTURE_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


@app.route(route="echo/{*rest}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    document = {
        "method": req.method,
        "url": req.url,
        "params": dict(req.params),
        "route_params": dict(req.route_params),
        "headers": dict(req.headers),
        "body": req.get_body().decode("utf-8"),
    }
    return func.HttpResponse(json.dumps(document), mimetype="application/json", headers={"X-Echo": "yes"})


@app.route(route="items/{id}", methods=["GET"])
def item_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"item {req.route_params['id']}")


@app.route(route="items/new", methods=["GET"])
def new_item_form(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("new item form")


@app.route(route="items/{id}", methods=["DELETE"])
def delete_item(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"deleted item {req.route_params['id']}")


@app.route(route="created", methods=["POST"])
def created(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        req.get_body(),
        status_code=201,
        headers={"Location": "/api/items/7", "Content-Type": "application/vnd.test+json"},
    )


@app.route(route="boom")
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret internal detail")


@app.route(route="setting")
def setting(req: func.HttpRequest) -> str:
    return os.environ.get("DEVHOST_FIXTURE_FROM_SETTINGS", "<unset>")


@app.route(route="slow")
def slow(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(float(req.params.get("seconds", "1")))
    return func.HttpResponse("done")


@app.route(route="async/{name}")
async def async_hello(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0)
    return func.HttpResponse(f"hello {req.route_params['name']}", mimetype="text/html", charset="latin-1")


@app.timer_trigger(arg_name="timer", schedule="%DEVHOST_FIXTURE_SCHEDULE%", run_on_startup=False)
def tick(timer: func.TimerRequest) -> None:
    record(fn="tick", past_due=timer.past_due, at=time.time())
    if os.environ.get("DEVHOST_FIXTURE_TICK_FAIL"):
        raise ValueError("tick told to fail")


@app.queue_trigger(arg_name="msg", queue_name="%DEVHOST_FIXTURE_QUEUE%", connection="DevhostFixtureStorage")
def work(msg: func.QueueMessage) -> None:
    """Succeeds, fails or sleeps depending on the body: 'ok', 'fail', 'fail-once', 'sleep:<seconds>'."""
    body = msg.get_body().decode("utf-8")
    record(fn="work", id=msg.id, body=body, dequeue_count=msg.dequeue_count, at=time.time())
    if body == "fail" or (body == "fail-once" and msg.dequeue_count == 1):
        raise ValueError(f"failing on purpose: {body}")
    if body.startswith("sleep:"):
        time.sleep(float(body.split(":", 1)[1]))
