"""A Bot API on 127.0.0.1 speaking Telegram's wire format: `POST /bot<token>/<method>` with
form fields (objects as JSON), answered `{"ok": true, "result": …}` or
`{"ok": false, "error_code", "description", "parameters"}`."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

from tests.integrations.fake_http import Behaviour, FakeServer, Request, json_answer

TOKEN = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
BOT_ID = 123456
USERNAME = "grill_house_bot"


def ok(result: object) -> Behaviour:
    return json_answer({"ok": True, "result": result})


def refusal(code: int, description: str, **parameters: object) -> Behaviour:
    body: dict[str, object] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return json_answer(body, code)


UNAUTHORIZED = refusal(401, "Unauthorized")
BLOCKED = refusal(403, "Forbidden: bot was blocked by the user")


def too_many(retry_after: int = 1) -> Behaviour:
    return refusal(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


@dataclass(frozen=True)
class Call:
    token: str
    method: str
    fields: dict[str, Any]  # JSON fields decoded


class FakeBotApi(FakeServer):
    """Knows the bots in `bots` (token → getMe's user); any other token is 401. Answers for
    the next calls of a method may be scripted in `plan[method]`."""

    def __init__(self) -> None:
        super().__init__()
        self.bots: dict[str, dict[str, object]] = {
            TOKEN: {"id": BOT_ID, "is_bot": True, "first_name": "Гриль Хаус", "username": USERNAME}
        }
        self.plan: dict[str, list[Behaviour]] = {}
        self.updates: list[list[dict[str, object]]] = []  # getUpdates answers, in turn
        self._message_ids = itertools.count(1)

    def calls(self, method: str | None = None) -> list[Call]:
        found = []
        for request in self.requests:
            token, _, name = request.path.removeprefix("/bot").partition("/")
            if method is None or name == method:
                found.append(Call(token, name, {k: _decoded(v) for k, v in request.form.items()}))
        return found

    def sent(self) -> list[dict[str, Any]]:
        """The fields of every sendMessage, in order."""
        return [call.fields for call in self.calls("sendMessage")]

    async def respond(self, request: Request) -> Behaviour:
        token, _, method = request.path.removeprefix("/bot").partition("/")
        if token not in self.bots:
            return UNAUTHORIZED
        if self.plan.get(method):
            return self.plan[method].pop(0)
        if method == "getMe":
            return ok(self.bots[token])
        if method == "sendMessage":
            return ok(
                {
                    "message_id": next(self._message_ids),
                    "date": int(time.time()),
                    "chat": {"id": int(request.form["chat_id"]), "type": "private"},
                    "text": request.form.get("text", ""),
                }
            )
        if method == "getUpdates":
            return ok(self.updates.pop(0) if self.updates else [])
        if method in {"setWebhook", "deleteWebhook", "setChatMenuButton"}:
            return ok(True)
        return refusal(404, "Not Found: method not found")


def _decoded(value: str) -> Any:
    if value[:1] in "[{":
        return json.loads(value)
    return value
