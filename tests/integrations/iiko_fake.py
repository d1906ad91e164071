"""A local iikoCloud that answers as its OpenAPI document says.

`iiko_openapi.json` beside this file is a verbatim excerpt of the iikoCloud OpenAPI document
(OpenAPI 3.0.1): the paths we call, the webhook events we take, and every schema they reach.
Regenerate it with `python -m tests.integrations.iiko_fake <the whole document>`.

The fake routes by path, issues access tokens that expire, answers 401 to a wrong or expired
token by itself, and checks every request body against the document's request schema and
every answer it makes against the response schema (a breach is kept in `violations`, which
the fixtures assert empty). Tests inject faults per path with `inject`.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs

from tests.integrations.fake_http import Answer, Behaviour, FakeServer, Request, json_answer

SPEC_FILE = Path(__file__).with_name("iiko_openapi.json")
LOGIN = "/api/1/access_token"
ORGANIZATIONS = "/api/1/organizations"
TERMINAL_GROUPS = "/api/1/terminal_groups"
UPDATE_WEBHOOKS = "/api/1/webhooks/update_settings"
PATHS = (LOGIN, ORGANIZATIONS, TERMINAL_GROUPS, UPDATE_WEBHOOKS)
EVENTS = ("TableOrderUpdate", "DeliveryOrderUpdate", "StopListUpdate")
_EVENT_SCHEMA = "iikoTransport.PublicApi.Contracts.WebHooks.{}WebHookEventInfo"
_SCHEMAS = "#/components/schemas/"
# iiko's own notation for times, e.g. "2019-08-24 14:15:22.123".
_IIKO_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}")
# Types the document spells its own way, as JSON Schema says them.
_TYPE_ALIASES = {"float": "number", "bool": "boolean", "int": "integer", "uuid": "string"}
_CONSTANT = re.compile(r"constant string '(.*)'")


# The document as JSON Schema (draft 2020-12)


def _safe(name: str) -> str:
    # Generic names such as "RmsItemsResponseWrapper`1[[…, Version=9.7.5.2, …]]" are no
    # URI fragments; every reference is rewritten to a plain key.
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _ref_name(ref: str) -> str:
    assert ref.startswith(_SCHEMAS), ref
    return ref.removeprefix(_SCHEMAS)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI 3.0's `nullable: true` as JSON Schema."""
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema["type"] = [*kinds, "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
        return schema
    if "$ref" in schema or "oneOf" in schema or "anyOf" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    return schema  # no type: anything, null included


class _Converter:
    """OpenAPI 3.0 schemas as generated from C# classes, turned into plain JSON Schema:

    - `nullable` becomes a `null` type;
    - a property typed `{"allOf": [{"$ref": X}]}` is simply X;
    - a class deriving from another (`allOf: [base]` plus its own properties, both with
      `additionalProperties: false`) gets the base's properties merged in, since JSON
      Schema would otherwise let neither side's properties past the other;
    - a base class with a `discriminator` accepts whichever derived class its
      discriminator names.
    """

    def __init__(self, schemas: dict[str, Any]) -> None:
        self._schemas = schemas

    def all(self) -> dict[str, Any]:
        return {_safe(name): self._named(name) for name in self._schemas}

    def _named(self, name: str) -> dict[str, Any]:
        raw = self._schemas[name]
        discriminator = raw.get("discriminator")
        if discriminator and discriminator.get("mapping"):
            key, mapping = discriminator["propertyName"], discriminator["mapping"]
            return {
                "type": "object",
                "required": [key],
                "properties": {key: {"enum": list(mapping)}},
                "allOf": [
                    {
                        "if": {"required": [key], "properties": {key: {"const": value}}},
                        "then": {"$ref": _SCHEMAS + _safe(_ref_name(target))},
                    }
                    for value, target in mapping.items()
                ],
            }
        return self._node(self._flat(name))

    def _flat(self, name: str) -> dict[str, Any]:
        """A class with its bases' properties and requirements merged in (not converted)."""
        raw = dict(self._schemas[name])
        parents = raw.pop("allOf", [])
        raw.pop("discriminator", None)
        if not parents:
            return raw
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for parent in parents:
            base = self._flat(_ref_name(parent["$ref"]))
            merged["properties"] |= base.get("properties", {})
            merged["required"] += base.get("required", [])
        merged["properties"] |= raw.get("properties", {})
        merged["required"] += raw.get("required", [])
        if "additionalProperties" in raw:
            merged["additionalProperties"] = raw["additionalProperties"]
        return merged

    def _node(self, schema: Any) -> Any:
        if not isinstance(schema, dict):
            return schema
        nullable = schema.get("nullable") is True
        if "$ref" in schema:  # OpenAPI 3.0 ignores a reference's siblings
            out: dict[str, Any] = {"$ref": _SCHEMAS + _safe(_ref_name(schema["$ref"]))}
        elif len(schema.get("allOf", [])) == 1 and "$ref" in schema["allOf"][0]:
            out = self._node(schema["allOf"][0])
        else:
            out = {}
            for key, value in schema.items():
                if key in {"nullable", "discriminator", "example", "deprecated", "description"}:
                    continue
                if key == "type" and isinstance(value, str):
                    constant = _CONSTANT.fullmatch(value)
                    if constant:
                        out["const"] = constant.group(1)
                    elif value in _TYPE_ALIASES or value.split(" ")[0] in {"integer", "string"}:
                        out["type"] = _TYPE_ALIASES.get(value, value.split(" ")[0])
                    elif value in {"object", "array", "string", "number", "integer", "boolean"}:
                        out["type"] = value
                    # any other spelling ("enum", "Array of strings <uuid>") constrains nothing
                elif key == "properties":
                    out[key] = {name: self._node(sub) for name, sub in value.items()}
                elif key in {"items", "additionalProperties"}:
                    out[key] = self._node(value)
                elif key in {"allOf", "oneOf", "anyOf"}:
                    out[key] = [self._node(sub) for sub in value]
                else:
                    out[key] = value
        return _nullable(out) if nullable else out


class Spec:
    """The excerpt of the iikoCloud document, and validators for its schemas."""

    def __init__(self, document: dict[str, Any]) -> None:
        assert document["openapi"].startswith("3.0"), "nullable handling is OpenAPI 3.0's"
        self.document = document
        self._definitions = {
            "components": {"schemas": _Converter(document["components"]["schemas"]).all()}
        }
        self._validators: dict[str, jsonschema_rs.Validator] = {}

    @staticmethod
    @functools.cache
    def load() -> Spec:
        return Spec(json.loads(SPEC_FILE.read_text(encoding="utf-8")))

    def _validator(self, name: str) -> jsonschema_rs.Validator:
        if name not in self._validators:
            self._validators[name] = jsonschema_rs.Draft202012Validator(
                {"$ref": _SCHEMAS + _safe(name)} | self._definitions,
                validate_formats=True,
                formats={"yyyy-MM-dd HH:mm:ss.fff": lambda text: bool(_IIKO_TIME.fullmatch(text))},
            )
        return self._validators[name]

    def errors(self, name: str, instance: Any) -> list[str]:
        return [
            f"{'/'.join(map(str, error.instance_path)) or '(root)'}: {error.message}"
            for error in self._validator(name).iter_errors(instance)
        ]

    def _schema_name(self, content: dict[str, Any]) -> str:
        return _ref_name(content["application/json"]["schema"]["$ref"])

    def request_schema(self, path: str) -> str:
        return self._schema_name(self.document["paths"][path]["post"]["requestBody"]["content"])

    def response_schema(self, path: str, status: int) -> str | None:
        """The schema of `status` answers to `path`, if the document names that status."""
        answer = self.document["paths"][path]["post"]["responses"].get(str(status))
        return self._schema_name(answer["content"]) if answer else None

    def event_errors(self, event: Any) -> list[str]:
        """What is wrong with a webhook event, by the schema of its `eventType`."""
        kind = event.get("eventType") if isinstance(event, dict) else None
        if kind not in EVENTS:
            return [f"no schema for eventType {kind!r}"]
        return self.errors(_EVENT_SCHEMA.format(kind), event)


def assert_event_conforms(event: dict[str, Any]) -> dict[str, Any]:
    errors = Spec.load().event_errors(event)
    assert not errors, errors
    return event


# The server


def error_answer(status: int, description: str, code: str | None = None) -> Answer:
    """iiko's ErrorResponse."""
    body = {"correlationId": str(uuid.uuid4()), "errorDescription": description, "error": code}
    return json_answer(body, status)


@dataclass
class TerminalGroupRow:
    id: str
    organization_id: str
    name: str
    address: str | None = None
    time_zone: str = "Ekaterinburg Standard Time"
    asleep: bool = False

    def out(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organizationId": self.organization_id,
            "name": self.name,
            "address": self.address,
            "timeZone": self.time_zone,
            "externalData": None,
            "posVersion": "9.1.7021.0",
        }


@dataclass
class _Fault:
    behaviour: Behaviour
    conforms: bool


class IikoCloudFake(FakeServer):
    """iikoCloud for the apiLogins in `logins`, each seeing the organizations listed."""

    def __init__(
        self,
        logins: dict[str, list[str]],
        organizations: dict[str, str | None] | None = None,  # id → name
        terminal_groups: list[TerminalGroupRow] | None = None,
        token_lifetime: float = 3600.0,
    ) -> None:
        super().__init__()
        self.spec = Spec.load()
        self.logins = logins
        self.organizations = organizations or {}
        self.terminal_groups = terminal_groups or []
        self.token_lifetime = token_lifetime
        # What update_settings stored, per (apiLogin, organization).
        self.webhook_settings: dict[tuple[str, str], dict[str, Any]] = {}
        self.violations: list[str] = []
        self._tokens: dict[str, tuple[str, float]] = {}  # token → (apiLogin, expiry)
        self._faults: dict[str, list[_Fault]] = {}
        self._clock_offset = 0.0
        self._routes: dict[str, Callable[[str, dict[str, Any]], Answer]] = {
            ORGANIZATIONS: self._organizations,
            TERMINAL_GROUPS: self._terminal_groups,
            UPDATE_WEBHOOKS: self._update_webhooks,
        }

    # What tests do to it

    def inject(self, path: str, *behaviours: Behaviour, conforms: bool = True) -> None:
        """Answer the next calls of `path` so (after checking the request); `conforms=False`
        for answers that break the document on purpose (a proxy's page, a broken body)."""
        assert path in PATHS, path
        self._faults.setdefault(path, []).extend(_Fault(b, conforms) for b in behaviours)

    def advance(self, seconds: float) -> None:
        self._clock_offset += seconds

    def expire_tokens(self) -> None:
        """iiko drops every token it issued (a restart, a revoked apiLogin session)."""
        self._tokens.clear()

    def calls(self, path: str | None = None) -> list[Request]:
        return [r for r in self.requests if path is None or r.path == path]

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    # Serving

    def _now(self) -> float:
        return time.monotonic() + self._clock_offset

    async def respond(self, request: Request) -> Behaviour:
        if request.method != "POST" or request.path not in PATHS:
            return Answer(404, b"Not Found")
        body = self._body(request)
        if body is None:
            return error_answer(400, "The request body is not JSON.")
        problems = self.spec.errors(self.spec.request_schema(request.path), body)
        if problems:
            self.violations += [f"request to {request.path}: {p}" for p in problems]
            return error_answer(400, "; ".join(problems))
        faults = self._faults.get(request.path)
        if faults:
            fault = faults.pop(0)
            if fault.conforms and isinstance(fault.behaviour, Answer):
                self._check(request.path, fault.behaviour)
            return fault.behaviour
        if request.path == LOGIN:
            answer = self._login(body)
        else:
            login = self._login_of(request)
            if login is None:
                answer = error_answer(401, "Token is expired or invalid")
            else:
                answer = self._routes[request.path](login, body)
        self._check(request.path, answer)
        return answer

    def _body(self, request: Request) -> Any:
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            self.violations.append(f"request to {request.path} is not application/json")
            return None
        try:
            return json.loads(request.body)
        except ValueError:
            self.violations.append(f"request to {request.path} is not JSON")
            return None

    def _check(self, path: str, answer: Answer) -> None:
        """The answer matches the document, where the document describes that status."""
        name = self.spec.response_schema(path, answer.status)
        if name is None:
            return
        try:
            payload = json.loads(answer.body)
        except ValueError:
            self.violations.append(f"answer {answer.status} to {path} is not JSON")
            return
        self.violations += [
            f"answer {answer.status} to {path}: {p}" for p in self.spec.errors(name, payload)
        ]

    def _login_of(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        issued = self._tokens.get(token) if scheme == "Bearer" else None
        if issued is None or issued[1] <= self._now():
            return None
        return issued[0]

    def _correlation(self, **fields: Any) -> Answer:
        return json_answer({"correlationId": str(uuid.uuid4())} | fields)

    def _login(self, body: dict[str, Any]) -> Answer:
        login = body["apiLogin"]
        if login not in self.logins:
            return error_answer(401, f"Login {login} is not authorized")
        token = uuid.uuid4().hex + uuid.uuid4().hex
        self._tokens[token] = (login, self._now() + self.token_lifetime)
        return self._correlation(token=token)

    def _visible(self, login: str, wanted: list[str] | None) -> list[str]:
        seen = self.logins[login]
        return [o for o in seen if wanted is None or o in wanted]

    def _organizations(self, login: str, body: dict[str, Any]) -> Answer:
        organizations = [
            {"responseType": "Simple", "id": org, "name": self.organizations.get(org)}
            for org in self._visible(login, body.get("organizationIds"))
        ]
        return self._correlation(organizations=organizations)

    def _terminal_groups(self, login: str, body: dict[str, Any]) -> Answer:
        def wrappers(asleep: bool) -> Iterator[dict[str, Any]]:
            for org in self._visible(login, body["organizationIds"]):
                items = [
                    group.out()
                    for group in self.terminal_groups
                    if group.organization_id == org and group.asleep is asleep
                ]
                if items:
                    yield {"organizationId": org, "items": items}

        return self._correlation(
            terminalGroups=list(wrappers(False)), terminalGroupsInSleep=list(wrappers(True))
        )

    def _update_webhooks(self, login: str, body: dict[str, Any]) -> Answer:
        organization = body["organizationId"]
        if organization not in self.logins[login]:
            return error_answer(400, f"Organization {organization} not found", "NOT_FOUND")
        self.webhook_settings[(login, organization)] = body
        return self._correlation()


# Regenerating the excerpt


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield _ref_name(value)
            elif key == "mapping":
                yield from (_ref_name(target) for target in value.values())
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def excerpt(document: dict[str, Any]) -> dict[str, Any]:
    """The paths we call, the events we take, and every schema they reach, verbatim."""
    paths = {path: {"post": document["paths"][path]["post"]} for path in PATHS}
    hooks = {
        _EVENT_SCHEMA.format(kind): document["x-webhooks"][_EVENT_SCHEMA.format(kind)]
        for kind in EVENTS
    }
    # The events' own schemas are reached from `hooks` through their request bodies.
    schemas = document["components"]["schemas"]
    needed: set[str] = set()
    pending = list(_references([paths, hooks]))
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending += _references(schemas[name])
    return {
        "openapi": document["openapi"],
        "info": document["info"] | {"description": "An excerpt: tests/integrations/iiko_fake.py"},
        "paths": paths,
        "x-webhooks": hooks,
        "components": {"schemas": {name: schemas[name] for name in sorted(needed)}},
    }


if __name__ == "__main__":
    whole = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    text = json.dumps(excerpt(whole), ensure_ascii=False, indent=1)
    SPEC_FILE.write_text(text + "\n", encoding="utf-8")
