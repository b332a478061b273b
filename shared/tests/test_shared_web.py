"""The app factory every service uses, against the real database: problem+json errors, auth bound to an
organization, cross-organization 404s, health, metrics, request ids, and the token command."""
import subprocess
import sys
import uuid
from dataclasses import replace

import pytest
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from pymongo.errors import NetworkTimeout

from shared.auth import SigningKey, verify_token
from shared.devstack.servers import free_port
from shared.mongo import ensure_platform_indexes
from shared.testing.fixtures import auth_header, forged_token, old_secret_token, test_keys
from shared.web import Blueprint, create_service_app, current_principal, require_organization, require_role


class NoteIn(Schema):
    text = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    priority = fields.Int(load_default=1, validate=validate.Range(min=1, max=3))


class NoteOut(Schema):
    id = fields.Str()
    text = fields.Str()


class EchoQuery(Schema):
    """A query schema that counts its instances (the Blueprint makes one per declaration, not per request)."""
    made = 0
    word = fields.Str(required=True)
    times = fields.Int(load_default=1, validate=validate.Range(min=1, max=5))

    def __init__(self, *args, **kwargs):
        type(self).made += 1
        super().__init__(*args, **kwargs)


def build_app(settings):
    """A tiny service with one organization-scoped resource, built the way every service is."""
    app = create_service_app(settings, title="Notes", configure_logs=False)
    db = app.extensions["mongo.db"]
    blp = Blueprint("notes", __name__, url_prefix="/v1")

    @blp.route("/notes")
    class Notes(MethodView):
        @blp.arguments(NoteIn)
        @blp.response(201, NoteOut)
        def post(self, body):
            org = require_organization()
            note = {"_id": uuid.uuid4().hex, "organization_id": org, "text": body["text"]}
            db.notes.insert_one(note)
            return {"id": note["_id"], "text": note["text"]}

    @blp.route("/notes/<note_id>")
    class Note(MethodView):
        @blp.response(200, NoteOut)
        def get(self, note_id):
            note = db.notes.find_one({"_id": note_id, "organization_id": current_principal().organization_id})
            if note is None:
                abort(404, message="No such note in your organization.")
            return {"id": note["_id"], "text": note["text"]}

    @blp.route("/echo")
    class Echo(MethodView):
        @blp.arguments(EchoQuery, location="query")
        def get(self, query):
            return {"said": " ".join([query["word"]] * query["times"])}

    @blp.route("/admin-only")
    class AdminOnly(MethodView):
        def get(self):
            require_role("admin")
            return {"ok": True}

    @blp.route("/boom")
    class Boom(MethodView):
        def get(self):
            raise RuntimeError("secret internal detail")

    @blp.route("/commit-unconfirmed")
    class CommitUnconfirmed(MethodView):
        def post(self):
            # what the driver raises when a commit's answer does not come back in time
            error = NetworkTimeout("timed out waiting for commitTransaction")
            error._add_error_label("UnknownTransactionCommitResult")
            raise error

    app.extensions["smorest"].register_blueprint(blp)
    return app


@pytest.fixture(scope="module")
def client(platform_settings):
    app = build_app(platform_settings("webtest"))
    ensure_platform_indexes(app.extensions["mongo.db"])
    return app.test_client()


def assert_problem(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status and body["title"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def test_health_readiness_and_metrics_need_no_token(client):
    assert client.get("/healthz").json == {"status": "ok", "service": "webtest"}
    assert client.get("/readyz").status_code == 200
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "recoverynet_outbox_backlog" in metrics and "recoverynet_http_requests_total" in metrics
    assert client.get("/openapi.json").json["info"]["title"] == "Recovery Network — Notes"


@pytest.mark.parametrize("token_kind", ["missing", "garbage", "forged", "unknown-key", "old-secret", "expired",
                                        "wrong-audience"])
def test_requests_without_a_valid_token_are_refused(client, make_token, org_id, token_kind):
    headers = {
        "missing": {},
        "garbage": {"Authorization": "Bearer not-a-jwt"},
        "forged": auth_header(forged_token(org_id, "admin")),
        "unknown-key": auth_header(make_token(org_id, "admin", signing_key=SigningKey.generate())),
        "old-secret": auth_header(old_secret_token(org_id, "admin")),
        "expired": auth_header(make_token(org_id, "admin", ttl_seconds=-10)),
        "wrong-audience": auth_header(make_token(org_id, "admin", audience="someone-else")),
    }[token_kind]
    body = assert_problem(client.get("/v1/notes/anything", headers=headers), 401)
    assert body["detail"]


def test_another_organizations_object_answers_404(client, make_token, org_id):
    mine = auth_header(make_token(org_id, "admin"))
    created = client.post("/v1/notes", json={"text": "hello"}, headers=mine)
    assert created.status_code == 201
    note_id = created.json["id"]
    assert client.get(f"/v1/notes/{note_id}", headers=mine).status_code == 200
    theirs = auth_header(make_token(f"{org_id}-other", "admin"))
    assert_problem(client.get(f"/v1/notes/{note_id}", headers=theirs), 404)


def test_field_errors_are_named_in_problem_json(client, make_token, org_id):
    headers = auth_header(make_token(org_id, "admin"))
    body = assert_problem(client.post("/v1/notes", json={"priority": 9, "extra": 1}, headers=headers), 422)
    assert set(body["errors"]) >= {"text", "priority"}
    assert "text" in body["detail"]
    assert_problem(client.post("/v1/notes", data=b"{not json", headers={**headers, "Content-Type": "application/json"}),
                   400)
    too_big = b'{"text": "' + b"a" * (3 * 1024 * 1024) + b'"}'
    assert_problem(client.post("/v1/notes", data=too_big, headers={**headers, "Content-Type": "application/json"}), 413)


def test_roles_are_enforced_and_unknown_routes_are_problems(client, make_token, org_id):
    coordinator = auth_header(make_token(org_id, "coordinator", sites=["s1"]))
    assert_problem(client.get("/v1/admin-only", headers=coordinator), 403)
    assert client.get("/v1/admin-only", headers=auth_header(make_token(org_id, "admin"))).status_code == 200
    assert_problem(client.get("/v1/nowhere"), 404)
    assert_problem(client.delete("/v1/notes", headers=coordinator), 405)


def test_unexpected_errors_answer_500_without_internals(client, make_token, org_id):
    response = client.get("/v1/boom", headers=auth_header(make_token(org_id, "admin")))
    body = assert_problem(response, 500)
    assert "secret internal detail" not in response.get_data(as_text=True)
    assert body["request_id"] == response.headers["X-Request-Id"]


def test_database_unreachable_answers_503_with_retry_after(platform_settings, make_token, org_id):
    dead = replace(platform_settings("webtest"), mongo_uri=f"mongodb://127.0.0.1:{free_port()}/?directConnection=true",
                   mongo_timeout_ms=300)
    client = build_app(dead).test_client()
    assert_problem(client.get("/readyz"), 503)
    response = client.post("/v1/notes", json={"text": "x"}, headers=auth_header(make_token(org_id, "admin")))
    assert_problem(response, 503)
    assert response.headers["Retry-After"]


def test_a_commit_the_database_did_not_confirm_answers_503_without_claiming_nothing_changed(client, make_token,
                                                                                            org_id):
    response = client.post("/v1/commit-unconfirmed", headers=auth_header(make_token(org_id, "admin")))
    body = assert_problem(response, 503)
    assert "may have been stored" in body["detail"] and "nothing was changed" not in body["detail"]
    assert response.headers["Retry-After"]


def test_request_ids_are_echoed(client):
    assert client.get("/healthz", headers={"X-Request-Id": "abc123"}).headers["X-Request-Id"] == "abc123"
    assert client.get("/healthz").headers["X-Request-Id"]


def test_token_command_prints_a_token_the_services_accept(org_id):
    result = subprocess.run(
        [sys.executable, "-m", "shared.auth", "token", "--org", org_id, "--role", "coordinator", "--sites", "s1,s2"],
        capture_output=True, text=True, env={**test_keys().environ("intake"), "PATH": ""}, check=True)
    principal = verify_token(result.stdout.strip(), test_keys().keyset())
    assert principal.organization_id == org_id and principal.sites == {"s1", "s2"}
    missing = subprocess.run([sys.executable, "-m", "shared.auth", "token", "--role", "admin"],
                             capture_output=True, text=True, env={**test_keys().environ("intake"), "PATH": ""})
    assert missing.returncode == 2 and "organization" in missing.stderr


def test_query_arguments_load_with_one_schema_instance_shared_by_concurrent_requests(client, make_token, org_id):
    """shared.web.Blueprint: ``@blp.arguments(SchemaClass)`` loads every request with the instance made when the
    view was declared (webargs would make one a request); concurrent requests each get their own values, and
    errors still name the field."""
    from concurrent.futures import ThreadPoolExecutor

    headers = auth_header(make_token(org_id, "admin"))
    made = EchoQuery.made

    def echo(i):
        word, times = f"w{i}", i % 5 + 1
        answer = client.application.test_client().get("/v1/echo", query_string={"word": word, "times": times},
                                                       headers=headers)
        return answer.status_code, answer.json, " ".join([word] * times)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(echo, range(40)))
    assert all(status == 200 and body == {"said": expected} for status, body, expected in answers), answers
    assert EchoQuery.made == made   # no instance made for a request
    body = assert_problem(client.get("/v1/echo", query_string={"word": "x", "times": 9}, headers=headers), 422)
    assert set(body["errors"]) == {"times"}
