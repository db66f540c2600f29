"""Definitions people write (segments, journeys, templates, campaigns) as JSON or YAML documents."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from boomerang.core.errors import ValidationFailed


class _Loader(yaml.SafeLoader):
    """YAML 1.1 without yes/no/on/off as booleans: a branch's `yes:` and `no:` stay keys (only true/false are)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def read(text: str, field: str = "file") -> Any:
    """A JSON or YAML document as plain JSON data (YAML's dates become ISO text); errors name `field`."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or "cannot be read"
        raise ValidationFailed([{"field": field, "reason": f"not JSON or YAML: {reason}{where}"}]) from None
    return json.loads(json.dumps(data, default=str))


def load_file(text: str) -> list[dict[str, Any]]:
    """Definitions from a JSON or YAML document: one definition, or a list of them."""
    data = read(text)
    return data if isinstance(data, list) else [data]
