"""Every problem code the API can answer, read from the source, and the README's table of them.

`python -m tests.error_catalogue` rewrites the table; `test_readme_lists_every_error_code`
fails when the two differ, so the documented codes cannot drift from the raised ones."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "maxloyalty"
README = ROOT / "README.md"
START, END = "<!-- error-codes:start -->", "<!-- error-codes:end -->"


@dataclass
class Code:
    statuses: set[int] = field(default_factory=set)
    messages: set[str] = field(default_factory=set)


def _text(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):  # f"No {thing}." -> "No {…}."
        return "".join(v.value if isinstance(v, ast.Constant) else "{…}" for v in node.values)
    return None


def _int(node: ast.expr | None) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    return None


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def _attributes(node: ast.ClassDef) -> dict[str, str | int]:
    """The `code`, `status` and `message` a class body sets itself."""
    found: dict[str, str | int] = {}
    for statement in node.body:
        target = statement.target if isinstance(statement, ast.AnnAssign) else None
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
        value = getattr(statement, "value", None)
        if not isinstance(target, ast.Name):
            continue
        if target.id in ("code", "message") and (text := _text(value)) is not None:
            found[target.id] = text
        if target.id == "status" and (number := _int(value)) is not None:
            found["status"] = number
    return found


def _classes(trees: list[ast.Module]) -> dict[str, tuple[str, int, str | None]]:
    """Every error class (AppError and its subclasses) with its (code, status, message),
    each looked up along the class's method resolution order, as Python does."""
    defs = {
        node.name: node
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }
    orders: dict[str, list[str]] = {}

    def mro(name: str) -> list[str]:  # C3 linearization over the classes defined here
        if name not in orders:
            bases = [n for b in defs[name].bases if (n := _name(b)) in defs]
            pending = [mro(base) for base in bases] + [bases]
            order = [name]
            while any(pending):
                head = next(
                    seq[0] for seq in pending if seq and all(seq[0] not in s[1:] for s in pending)
                )
                order.append(head)
                pending = [[c for c in seq if c != head] for seq in pending]
            orders[name] = order
        return orders[name]

    known: dict[str, tuple[str, int, str | None]] = {}
    for name in defs:
        if "AppError" not in mro(name):
            continue
        merged: dict[str, str | int] = {}
        for ancestor in reversed(mro(name)):
            merged |= _attributes(defs[ancestor])
        message = merged.get("message")
        known[name] = (
            str(merged.get("code", "")),
            int(merged.get("status", 400)),
            message if isinstance(message, str) else None,
        )
    return known


def collect() -> dict[str, Code]:
    trees = [ast.parse(path.read_text()) for path in sorted(SOURCE.rglob("*.py"))]
    classes = _classes(trees)
    codes: dict[str, Code] = defaultdict(Code)
    naming = {  # classes that name a code, or say their code's refusal their own way
        node.name
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and {"code", "message"} & set(_attributes(node))
    }
    for name, (code, status, message) in classes.items():
        if name in naming:
            codes[code].statuses.add(status)
            codes[code].messages.update({message} if message else set())
    for tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or (called := _name(node.func)) is None:
                continue
            kwargs = {k.arg: k.value for k in node.keywords if k.arg}
            if called in classes:
                default_code, default_status, _ = classes[called]
                code = _text(kwargs.get("code")) or default_code
                codes[code].statuses.add(_int(kwargs.get("status")) or default_status)
                message = _text(node.args[0]) if node.args else _text(kwargs.get("detail"))
                if message:
                    codes[code].messages.add(message)
            elif called == "problem_response" and len(node.args) >= 3:
                code = _text(node.args[2])
                if code:
                    status = _int(node.args[1])
                    codes[code].statuses.update({status} if status else set())
                    message = _text(node.args[3]) if len(node.args) > 3 else None
                    codes[code].messages.update({message} if message else set())
        for node in ast.walk(tree):  # the codes given to bare HTTP statuses (404, 405, …)
            if isinstance(node, ast.AnnAssign | ast.Assign) and isinstance(node.value, ast.Dict):
                targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
                if any(_name(t) == "_HTTP_CODES" for t in targets):
                    for key, value in zip(node.value.keys, node.value.values, strict=True):
                        if (code := _text(value)) and key is not None:
                            codes[code].statuses.add(_int(key) or 0)
    codes.pop("", None)
    return dict(codes)


def render(codes: dict[str, Code]) -> str:
    rows = ["| code | status | what it says |", "| --- | --- | --- |"]
    for code in sorted(codes):
        entry = codes[code]
        statuses = ", ".join(str(s) for s in sorted(entry.statuses))
        said = " / ".join(sorted(entry.messages)).replace("|", "\\|")
        rows.append(f"| `{code}` | {statuses} | {said} |")
    return "\n".join(rows)


def readme_table(text: str) -> str:
    found = re.search(re.escape(START) + r"\n(.*?)\n" + re.escape(END), text, re.S)
    assert found, f"README has no {START} … {END} section"
    return found.group(1)


def write() -> None:
    text = README.read_text()
    README.write_text(text.replace(readme_table(text), render(collect())))


if __name__ == "__main__":
    write()
