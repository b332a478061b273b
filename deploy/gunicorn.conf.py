"""gunicorn settings for every service's web process (local runner and containers alike).

The web process never holds a Kafka client (DESIGN.md), so forking workers is safe; each forked
worker opens its own MongoDB client lazily (pymongo is fork-safe when the client is created after fork).
"""
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 20
# Longer than any pause between a client's requests that we know of: a connection the server closes just as
# a client sends on it again loses that request ("Connection reset by peer", never read: seen in the faults
# benchmark with 5 s, for clients waiting out a Retry-After of about 5 s). An idle kept-alive connection
# holds no thread here (gthread keeps it in the worker's poller, at most worker_connections of them).
keepalive = 75
preload_app = False          # each worker builds its own app (and Mongo client) after the fork
accesslog = None             # the app logs each request as JSON, without bodies or query strings
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
limit_request_line = 8190


def pre_request(worker, req):
    """A body over the apps' limit (shared.web.app.MAX_BODY_BYTES) is answered 413 without being read;
    gunicorn would then drop the connection after an answer that said keep-alive, and the client's next
    request on it would fail. Mark such a request's connection to close: the 413 says Connection: close."""
    from shared.web.app import MAX_BODY_BYTES  # loaded with the app by now

    length = next((value for name, value in req.headers if name == "CONTENT-LENGTH"), None)
    if length is not None and length.strip().isdigit() and int(length) > MAX_BODY_BYTES:
        req.force_close()
    worker.log.debug("%s %s", req.method, req.path)
