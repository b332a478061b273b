"""A service behind docker-compose's proxy (issue 19): mounted at PUBLIC_URL/<service>/ with the prefix taken
off and told in X-Forwarded-Prefix. With TRUSTED_PROXY_HOPS its docs, OpenAPI document (and the client's
address, scheme and host) follow the proxy's headers; without it (the default) the headers are ignored."""
from dataclasses import replace

from shared.web import create_service_app

BEHIND = {"X-Forwarded-Prefix": "/intake", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "recovery.example.org",
          "X-Forwarded-For": "203.0.113.7"}


def _app(settings):
    return create_service_app(settings, title="Proxied", configure_logs=False)


def test_behind_the_proxy_the_docs_and_openapi_use_the_path_prefix(platform_settings):
    settings = replace(platform_settings("proxied"), trusted_proxy_hops=1,
                       public_base_url="https://recovery.example.org/intake")
    client = _app(settings).test_client()
    docs = client.get("/docs", headers=BEHIND)
    assert docs.status_code == 200
    page = docs.get_data(as_text=True)
    # the assets are named relative to /intake/docs, so they load from /intake/docs/assets/
    assert 'src="docs/assets/swagger-ui-bundle.js"' in page and "/docs/assets/" not in page
    assert "/intake/openapi.json" in page
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/openapi.json").get_json()["servers"] == [{"url": "/intake"}]


def test_without_trusted_hops_forwarded_headers_are_ignored(platform_settings):
    settings = platform_settings("direct")
    assert settings.trusted_proxy_hops == 0
    client = _app(settings).test_client()
    assert "/intake/openapi.json" not in client.get("/docs", headers=BEHIND).get_data(as_text=True)
    assert "servers" not in client.get("/openapi.json").get_json()
