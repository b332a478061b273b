"""Bad input (issue 9): property-based fuzzing of every service's OpenAPI with schemathesis, on a
bounded budget (a few positive and a few negative examples per operation, derandomized so a run is
reproducible): no answer is a 5xx, and every 4xx is application/problem+json. Then explicit cases on
every service: a body that is too large (413), deeply nested JSON, wrong types, bytes that are not
UTF-8 or text in another encoding, and the wrong content type, each refused cleanly with problem+json."""
from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from shared.testing.fixtures import auth_header

from tests.security.conftest import SERVICES, param_value

pytestmark = pytest.mark.timeout(300)

# The suite's budget; a deeper, randomized run: SECURITY_FUZZ_EXAMPLES=50 SECURITY_FUZZ_RANDOM=1 pytest tests/security
EXAMPLES_PER_MODE = int(os.environ.get("SECURITY_FUZZ_EXAMPLES", "3"))
DERANDOMIZE = not os.environ.get("SECURITY_FUZZ_RANDOM")

# One create endpoint per service that takes a JSON body: the target of the explicit cases.
JSON_TARGETS = {"intake": "/v1/sites", "matching": "/v1/overrides", "scheduling": "/v1/meetings",
                "notifications": "/v1/webhooks"}

LIST_TARGETS = {"intake": "/v1/members", "matching": "/v1/matches", "scheduling": "/v1/meetings",
                "notifications": "/v1/deliveries"}


def _header(response, name):
    value = response.headers.get(name) or response.headers.get(name.lower())
    return value[0] if isinstance(value, list) else value


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")  # schemathesis's own strategies
@pytest.mark.parametrize("service", SERVICES)
def test_fuzzing_the_openapi_finds_no_5xx_and_only_problem_json_4xx(stack, fuzz_world, service):
    """Each operation three ways: valid requests on real objects (path parameters naming the fuzz world's
    member, match, meeting, ...), invalid bodies and queries on real objects, and invalid everything
    (random path parameters included). As the fuzz world's admin: the fuzzer may change, erase, cancel."""
    app = stack.apps[service]
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    token = fuzz_world.tokens["admin"]
    failures, calls, started, statuses = [], 0, time.monotonic(), Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "no operation in the OpenAPI document"

    for operation in operations:
        names = [p.name for p in operation.path_parameters]
        real = {name: param_value(service, name, fuzz_world.ids) for name in names}
        for mode, path_parameters in ((GenerationMode.POSITIVE, real), (GenerationMode.NEGATIVE, real),
                                      (GenerationMode.NEGATIVE, None)):
            seen = []

            @settings(max_examples=EXAMPLES_PER_MODE, deadline=None, database=None, derandomize=DERANDOMIZE,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters or None))
            def run(case):
                response = case.call(headers={"Authorization": f"Bearer {token}"})
                seen.append(1)
                statuses[response.status_code] += 1
                status, ctype = response.status_code, _header(response, "Content-Type") or ""
                if status >= 500 or (400 <= status < 500 and not ctype.startswith("application/problem+json")):
                    failures.append(f"{operation.label} [{mode.value}] -> {status} {ctype}: "
                                    f"{response.content[:300]!r} for body={getattr(case, 'body', None)!r:.300} "
                                    f"query={case.query!r:.200} path={case.path_parameters!r:.200}")

            try:
                run()
            except Exception as exc:  # noqa: BLE001 - schemathesis could not build a request: say which
                if not seen:
                    name = type(exc).__name__
                    if name not in ("Unsatisfiable", "InvalidArgument") and "Unsatisfiable" not in repr(exc):
                        failures.append(f"{operation.label} [{mode.value}] generation failed: {exc!r:.300}")
            calls += len(seen)
    elapsed = time.monotonic() - started
    print(f"{service}: {len(operations)} operations, {calls} requests in {elapsed:.1f}s: {dict(sorted(statuses.items()))}")
    assert calls >= len(operations), (calls, len(operations))
    assert not failures, "\n".join(failures[:30])


# --- explicit bad bodies -----------------------------------------------------------------------------

def _post(client, path, token, data, content_type):
    return client.post(path, data=data, headers={**auth_header(token), "Content-Type": content_type})


@pytest.mark.parametrize("service", SERVICES)
def test_bad_bodies_are_refused_cleanly_with_problem_json(stack, world, problem, service):
    client, path, token = stack.client(service), JSON_TARGETS[service], world.tokens["admin"]
    json_type = "application/json"
    # too large: over the 2 MB body limit
    too_large = b'{"name": "' + b"a" * (3 * 1024 * 1024) + b'"}'
    problem(_post(client, path, token, too_large, json_type), 413)
    # deeply nested JSON: arrays and objects 100,000 levels deep (the parser must not crash the worker)
    problem(_post(client, path, token, b"[" * 100_000 + b"]" * 100_000, json_type), 400, 422)
    problem(_post(client, path, token, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, json_type), 400, 422)
    # nested but valid JSON of a reasonable size where a string is expected
    nested = {"name": {"a": [{"b": [{"c": [1, 2, {"d": None}]}]}]}}
    problem(client.post(path, json=nested, headers=auth_header(token)), 422)
    # wrong types: a list, a number, a string, null instead of an object; wrong field types
    for body in ([1, 2], 42, "text", None, True):
        problem(_post(client, path, token, json.dumps(body).encode(), json_type), 400, 422)
    wrong_types = {"name": 123, "url": 5, "time_zone": [], "facilitator_id": {}, "member_id": 7, "capacity": "many",
                   "kind": False, "reason": ["x"], "site_id": 1.5}
    problem(client.post(path, json=wrong_types, headers=auth_header(token)), 422)
    # not UTF-8 at all, and text in another encoding declared or not
    problem(_post(client, path, token, b'{"name": "\xff\xfe\xfa bad"}', json_type), 400, 422)
    problem(_post(client, path, token, '{"name": "Señora"}'.encode("latin-1"), json_type), 400, 422)
    problem(_post(client, path, token, '{"name": "Señora"}'.encode("latin-1"), "application/json; charset=latin-1"),
            400, 415, 422)
    problem(_post(client, path, token, b"\x00\x01\x02\x03", json_type), 400, 422)
    # truncated JSON and trailing garbage
    problem(_post(client, path, token, b'{"name": "x"', json_type), 400, 422)
    problem(_post(client, path, token, b'{"name": "x"} {"name": "y"}', json_type), 400, 422)
    # the wrong content type: form data, plain text, XML, none
    for data, ctype in ((b"name=x", "application/x-www-form-urlencoded"), (b'{"name": "x"}', "text/plain"),
                        (b"<site><name>x</name></site>", "application/xml"), (b'{"name": "x"}', "")):
        problem(_post(client, path, token, data, ctype), 400, 415, 422)
    # query strings of the wrong type or size
    listing = LIST_TARGETS[service]
    for limit in ("lots", "9" * 400, "-1", "1e9", "\x00"):
        problem(client.get(listing, query_string={"limit": limit}, headers=auth_header(token)), 400, 422)


@pytest.mark.parametrize("service", SERVICES)
def test_bad_headers_are_refused_cleanly_or_ignored(stack, world, problem, service):
    """Authorization in other schemes or far too long, a request id or trace header of any shape, a
    garbage If-Match: never a 5xx; a refused request is problem+json; a request id is echoed bounded."""
    client, listing = stack.client(service), LIST_TARGETS[service]
    token = world.tokens["admin"]
    for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer  ", "bearer " + token + " extra", "Token " + token,
                  "Bearer " + "a" * 20_000, "Bearer " + token.replace(".", "..", 1), "Bearer \u00e9\u00e8"):
        problem(client.get(listing, headers={"Authorization": value}), 401)
    ok = {"Authorization": f"Bearer {token}"}
    for extra in ({"X-Request-Id": "r" * 5000}, {"X-Request-Id": "\u00e9vil id"}, {"traceparent": "00-zz-zz-zz"},
                  {"traceparent": "x" * 3000}, {"If-None-Match": "\"" * 100}, {"Accept": "application/xml"},
                  {"Content-Length": "0"}, {"Accept-Encoding": "gzip;q=abc"}):
        response = client.get(listing, headers={**ok, **extra})
        assert response.status_code == 200, (extra.keys(), response.status_code, response.get_data(as_text=True)[:300])
    response = client.post(JSON_TARGETS[service], json={}, headers={**ok, "If-Match": "\x00garbage"})
    assert 400 <= response.status_code < 500
    problem(response, response.status_code)
