"""Reading settings from the environment, with errors that name the setting.

Each service's ``config.Settings.from_env()`` is the only caller; nothing else reads ``os.environ``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Mapping, TypeVar

T = TypeVar("T")

_MISSING = object()


class ConfigError(RuntimeError):
    """A required setting is missing or malformed. The message names it and says what is expected."""


class EnvReader:
    """Typed access to an environment mapping; collects every problem before failing, so an operator
    fixes the whole configuration in one go instead of one setting per restart."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.environ = os.environ if environ is None else environ
        self.problems: list[str] = []

    def _get(self, name: str, default, parse: Callable[[str], T], expected: str) -> T:
        raw = self.environ.get(name)
        if raw is None or raw.strip() == "":
            if default is _MISSING:
                self.problems.append(f"{name} is required ({expected})")
                return None  # type: ignore[return-value]
            return default
        try:
            return parse(raw.strip())
        except (ValueError, TypeError) as exc:
            self.problems.append(f"{name}={raw!r} is malformed: expected {expected} ({exc})")
            return None  # type: ignore[return-value]

    def str(self, name: str, default=_MISSING, expected: str = "a non-empty string"):
        return self._get(name, default, str, expected)

    def int(self, name: str, default=_MISSING, minimum: int | None = None):
        def parse(raw: str) -> int:
            value = int(raw)
            if minimum is not None and value < minimum:
                raise ValueError(f"must be >= {minimum}")
            return value

        return self._get(name, default, parse, "an integer")

    def float(self, name: str, default=_MISSING):
        return self._get(name, default, float, "a number")

    def bool(self, name: str, default=_MISSING):
        def parse(raw: str) -> bool:
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError("not a boolean")

        return self._get(name, default, parse, "true or false")

    def secret(self, name: str, min_length: int = 32):
        def parse(raw: str) -> str:
            if len(raw) < min_length:
                raise ValueError(f"must be at least {min_length} characters")
            return raw

        return self._get(name, _MISSING, parse, f"a secret of at least {min_length} characters")

    def bootstrap_servers(self, name: str = "KAFKA_BOOTSTRAP_SERVERS"):
        def parse(raw: str) -> str:
            for server in raw.split(","):
                host, sep, port = server.strip().rpartition(":")
                if not sep or not host or not port.isdigit():
                    raise ValueError(f"{server!r} is not host:port")
            return raw

        return self._get(name, _MISSING, parse, "comma-separated host:port pairs")

    def kafka(self) -> "KafkaConnection":
        """How to reach the broker: KAFKA_BOOTSTRAP_SERVERS and its security (KAFKA_SECURITY_PROTOCOL,
        KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, KAFKA_SSL_CAFILE), each checked now
        against the others, so a broker that refuses us is a startup error that names the setting."""
        bootstrap = self.bootstrap_servers()
        protocol = self._get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", _one_of(SECURITY_PROTOCOLS),
                             "one of " + ", ".join(SECURITY_PROTOCOLS))
        mechanism = self._get("KAFKA_SASL_MECHANISM", None, _one_of(SASL_MECHANISMS),
                              "one of " + ", ".join(SASL_MECHANISMS))
        username = self.str("KAFKA_SASL_USERNAME", None)
        password = self.str("KAFKA_SASL_PASSWORD", None)
        cafile = self._get("KAFKA_SSL_CAFILE", None, _readable_file, "the path of a PEM file of CA certificates")
        if protocol is None:  # malformed, already said: nothing else can be checked against it
            return KafkaConnection(bootstrap)
        security: dict[str, str] = {}
        if protocol != "PLAINTEXT":
            security["security_protocol"] = protocol
        if protocol.startswith("SASL_"):
            for name, value, expected in (
                    ("KAFKA_SASL_MECHANISM", mechanism, "one of " + ", ".join(SASL_MECHANISMS)),
                    ("KAFKA_SASL_USERNAME", username, "the user the broker knows this service as"),
                    ("KAFKA_SASL_PASSWORD", password, "that user's password")):
                if value is None and not self.missing_any(name):
                    self.problems.append(f"{name} is required with KAFKA_SECURITY_PROTOCOL={protocol} ({expected})")
            security.update(sasl_mechanism=mechanism, sasl_plain_username=username, sasl_plain_password=password)
        else:
            for name, value in (("KAFKA_SASL_MECHANISM", mechanism), ("KAFKA_SASL_USERNAME", username),
                                ("KAFKA_SASL_PASSWORD", password)):
                if value is not None:
                    self.problems.append(f"{name} is set but KAFKA_SECURITY_PROTOCOL={protocol} does not "
                                         "authenticate: use SASL_SSL or SASL_PLAINTEXT, or unset it")
        if protocol.endswith("SSL"):
            if cafile:
                security["ssl_cafile"] = cafile
        elif cafile is not None:
            self.problems.append(f"KAFKA_SSL_CAFILE is set but KAFKA_SECURITY_PROTOCOL={protocol} does not use "
                                 "TLS: use SSL or SASL_SSL, or unset it")
        return KafkaConnection(bootstrap, security)

    def mongo_uri(self, name: str = "MONGO_URI", default=_MISSING):
        def parse(raw: str) -> str:
            if not raw.startswith(("mongodb://", "mongodb+srv://")):
                raise ValueError("must start with mongodb:// or mongodb+srv://")
            return raw

        return self._get(name, default, parse, "a mongodb:// URI")

    def mongo_uris(self, services) -> dict[str, str]:
        """For tools that reach every service's database (set-up, backup): each service's server,
        ``MONGO_URI_<SERVICE>`` where a service's database is on a server of its own (the local runner gives
        each one), else ``MONGO_URI`` (one server for all, as in docker-compose)."""
        shared = self.mongo_uri()
        return {service: self.mongo_uri(f"MONGO_URI_{service.upper()}", shared) or shared for service in services}

    def key_file(self, name: str, kind: str, required: bool = False):
        """The path of a key file (``kind``: "private" for an Ed25519 PEM, "public" for a JWKS), checked
        to be readable and to hold such a key now, not at the first token."""
        from shared.auth import KeyFileError, SigningKey, load_jwks_file

        def parse(raw: str) -> str:
            try:
                if kind == "private":
                    SigningKey.load(raw)
                elif not load_jwks_file(raw):
                    raise ValueError("it holds no Ed25519 key")
            except KeyFileError as exc:
                raise ValueError(str(exc)) from exc
            return raw

        expected = "the path of an Ed25519 private key PEM" if kind == "private" else "the path of a JWKS file"
        return self._get(name, _MISSING if required else None, parse, expected)

    def url(self, name: str, default=None):
        def parse(raw: str) -> str:
            if not raw.startswith(("http://", "https://")):
                raise ValueError("must start with http:// or https://")
            return raw

        return self._get(name, default, parse, "an http(s) URL")

    def missing_any(self, *names: str) -> bool:
        """Whether a problem was already noted about one of ``names`` (so it is not said twice)."""
        return any(problem.startswith(f"{name}=") or problem.startswith(f"{name} ") for problem in self.problems
                   for name in names)

    def done(self) -> None:
        if self.problems:
            raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(self.problems))


SECURITY_PROTOCOLS = ("PLAINTEXT", "SASL_SSL", "SASL_PLAINTEXT", "SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _one_of(allowed: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.upper() not in allowed:
            raise ValueError("not a value kafka-python knows")
        return raw.upper()
    return parse


def _readable_file(raw: str) -> str:
    try:
        with open(raw, "rb"):
            return raw
    except OSError as exc:
        raise ValueError(f"cannot read it: {exc.strerror}") from exc


@dataclass(frozen=True)
class KafkaConnection:
    """How every Kafka client of the platform reaches the broker: the addresses and kafka-python's security
    keyword arguments (none for PLAINTEXT). ``EnvReader.kafka()`` builds it from the environment;
    ``shared.messaging.kafka`` (make_producer, make_consumer, ensure_topics) takes nothing else."""

    bootstrap_servers: str
    # security_protocol, sasl_mechanism, sasl_plain_username, sasl_plain_password, ssl_cafile: as set
    security: Mapping[str, str] = field(default_factory=dict, hash=False)

    def client_config(self) -> dict:
        """Keyword arguments for KafkaProducer, KafkaConsumer and KafkaAdminClient."""
        return {"bootstrap_servers": self.bootstrap_servers.split(","), **self.security}

    def __repr__(self) -> str:  # settings get printed; the password never is
        shown = {k: ("***" if k == "sasl_plain_password" else v) for k, v in self.security.items()}
        return f"KafkaConnection({self.bootstrap_servers!r}, {shown!r})"


@dataclass(frozen=True)
class PlatformSettings:
    """The settings every service shares. Services embed this in their own ``Settings``."""

    service_name: str
    kafka_bootstrap_servers: str
    mongo_uri: str
    mongo_database: str
    auth_audience: str
    public_base_url: str
    log_level: str
    # How long the web process waits for MongoDB before answering 503 (never 500).
    mongo_timeout_ms: int
    # The public keys tokens are verified with (by kid): a JWKS file and/or intake's JWKS URL (at least one).
    auth_public_keys_file: str | None = None
    auth_jwks_url: str | None = None
    # Intake only (intake.config reads them; PlatformSettings.read never does): the Ed25519 private key
    # intake signs tokens with, and the public keys of rotated-out keys it still publishes.
    auth_signing_key_file: str | None = None
    auth_previous_keys_file: str | None = None
    # How many reverse proxies in front of the web process to believe (X-Forwarded-For/-Proto/-Host/-Prefix):
    # 0 (default) believes none; docker-compose's nginx makes it 1. The path of public_base_url is where the
    # proxy mounts the service (X-Forwarded-Prefix), so the docs and OpenAPI document say it too.
    trusted_proxy_hops: int = 0
    # kafka-python's security keyword arguments from KAFKA_SECURITY_PROTOCOL and the rest (EnvReader.kafka);
    # empty: PLAINTEXT. Kafka clients are made with ``settings.kafka``, never with these two fields.
    kafka_security: Mapping[str, str] = field(default_factory=dict, hash=False, repr=False)

    @property
    def kafka(self) -> KafkaConnection:
        """The broker and how to authenticate to it: what every Kafka client of the service is made with."""
        return KafkaConnection(self.kafka_bootstrap_servers, self.kafka_security)

    @classmethod
    def read(cls, env: EnvReader, service_name: str) -> "PlatformSettings":
        kafka = env.kafka()
        settings = cls(
            service_name=service_name,
            kafka_bootstrap_servers=kafka.bootstrap_servers,
            kafka_security=kafka.security,
            mongo_uri=env.mongo_uri(),
            mongo_database=env.str("MONGO_DATABASE", f"recoverynet_{service_name}"),
            auth_audience=env.str("AUTH_AUDIENCE", "recoverynet"),
            public_base_url=env.str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
            log_level=env.str("LOG_LEVEL", "INFO"),
            mongo_timeout_ms=env.int("MONGO_TIMEOUT_MS", 5000, minimum=100),
            auth_public_keys_file=env.key_file("AUTH_PUBLIC_KEYS_FILE", "public"),
            auth_jwks_url=env.url("AUTH_JWKS_URL"),
            trusted_proxy_hops=env.int("TRUSTED_PROXY_HOPS", 0, minimum=0),
        )
        if not settings.auth_public_keys_file and not settings.auth_jwks_url and not env.missing_any(
                "AUTH_PUBLIC_KEYS_FILE", "AUTH_JWKS_URL"):
            env.problems.append("AUTH_PUBLIC_KEYS_FILE or AUTH_JWKS_URL is required (the JWKS file of the "
                                "token signing key's public part, or intake's /.well-known/jwks.json)")
        return settings
