"""Schemathesis over the whole OpenAPI spec (issue 14.6): no generated input answers a server error.

The tracking routes read their bodies by hand but document them (api/openapi.py): their messages are
generated too, and some must be accepted. Each operation gets FUZZ_EXAMPLES generated cases (default 6:
the run stays around a minute);
`BOOMERANG_FUZZ_EXAMPLES=200 pytest tests/test_api_fuzz.py` digs deeper."""

from __future__ import annotations

import base64
import os
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from api_helpers import Api

EXAMPLES = int(os.environ.get("BOOMERANG_FUZZ_EXAMPLES", "6"))


def test_no_generated_input_is_a_server_error(ws):
    shop = Api(ws)
    schema = schemathesis.openapi.from_asgi("/openapi.json", shop.client.app)
    secret = {"Authorization": f"Bearer {shop.secret_key}"}
    write = {"Authorization": "Basic " + base64.b64encode(f"{shop.write_key}:".encode()).decode()}
    errors: list[str] = []
    answered: Counter[int] = Counter()
    accepted: set[str] = set()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 60  # the whole API, not a corner of it

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def probe(case) -> None:
        headers = write if case.path.startswith("/v1/") else secret
        response = case.call(headers=headers)
        answered[response.status_code // 100] += 1
        if response.status_code < 300:
            accepted.add(case.path)
        if response.status_code >= 500:
            errors.append(f"{case.method} {case.formatted_path} {case.query} {case.body!r:.200}: {response.text[:200]}")

    for operation in operations:  # inputs the schema allows, and inputs it does not
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            try:
                given(case=operation.as_strategy(mode))(probe)()
            except Unsatisfiable:  # an operation with nothing to break (no parameters, no body)
                continue
    assert errors == [], "\n".join(errors[:20])
    assert answered[2] > 50 and answered[4] > 100, answered  # both accepted and refused inputs were tried
    tracking = {f"/v1/{kind}" for kind in ("track", "identify", "page", "screen", "group", "alias", "batch")}
    assert tracking <= accepted, tracking - accepted  # the documented message bodies are ones the server takes
