"""JSON Schemas of our own for the custom resources deploy/kubernetes uses (kubernetes-validate knows only
built-in kinds). They cover the fields we set, in the shape Strimzi 0.45 (kafka.strimzi.io/v1beta2) and the
MongoDB Community Operator 0.12 (mongodbcommunity.mongodb.com/v1) document, and refuse any other field
(additionalProperties: false), so a typo or a field from another version fails here rather than in a
cluster. They are not the operators' CRDs: a field the CRD would also refuse for a deeper reason (a value
range, a cross-field rule) is not checked."""

def _obj(properties: dict, required: tuple = ()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_QUANTITY = {"type": ["string", "integer"]}
_RESOURCES = _obj({"requests": {"type": "object", "additionalProperties": _QUANTITY},
                   "limits": {"type": "object", "additionalProperties": _QUANTITY}})
_META = _obj({"name": _STR, "namespace": _STR, "labels": _MAP, "annotations": _MAP}, ("name",))
_CLUSTER_LABEL = {**_META, "required": ["name", "labels"],
                  "properties": {**_META["properties"],
                                 "labels": {"type": "object", "required": ["strimzi.io/cluster"],
                                            "additionalProperties": {"type": "string"}}}}


def _resource(api_version: str, kind: str, spec: dict, metadata: dict = _META) -> dict:
    return _obj({"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": metadata, "spec": spec},
                ("apiVersion", "kind", "metadata", "spec"))


_SECURITY = {"type": "object"}  # a Kubernetes securityContext: checked by the policy tests, not here
KAFKA = _resource("kafka.strimzi.io/v1beta2", "Kafka", _obj({
    "kafka": _obj({
        "version": _STR, "metadataVersion": _STR,
        "listeners": {"type": "array", "minItems": 1, "items": _obj({
            "name": {"type": "string", "pattern": "^[a-z0-9]{1,11}$"}, "port": {"type": "integer", "minimum": 9092},
            "type": {"enum": ["internal", "route", "loadbalancer", "nodeport", "ingress", "cluster-ip"]},
            "tls": _BOOL,
            "authentication": _obj({"type": {"enum": ["tls", "scram-sha-512", "oauth", "custom"]}}, ("type",)),
            "networkPolicyPeers": {"type": "array", "items": {"type": "object"}}}, ("name", "port", "type", "tls"))},
        "authorization": _obj({"type": {"enum": ["simple", "opa", "keycloak", "custom"]}}, ("type",)),
        "config": {"type": "object", "additionalProperties": {"type": ["string", "integer", "boolean", "number"]}},
        "template": _obj({"pod": _obj({"securityContext": _SECURITY}),
                          "kafkaContainer": _obj({"securityContext": _SECURITY})}),
    }, ("version", "listeners")),
    "entityOperator": _obj({"topicOperator": {"type": "object"}, "userOperator": {"type": "object"}}),
}, ("kafka",)))

KAFKA_NODE_POOL = _resource("kafka.strimzi.io/v1beta2", "KafkaNodePool", _obj({
    "replicas": {"type": "integer", "minimum": 0},
    "roles": {"type": "array", "items": {"enum": ["controller", "broker"]}, "minItems": 1, "uniqueItems": True},
    "storage": _obj({"type": {"enum": ["jbod", "persistent-claim", "ephemeral"]},
                     "volumes": {"type": "array", "items": _obj({
                         "id": _INT, "type": {"enum": ["persistent-claim", "ephemeral"]}, "size": _STR,
                         "deleteClaim": _BOOL, "kraftMetadata": {"enum": ["shared"]}, "class": _STR}, ("id", "type"))}},
                    ("type",)),
    "resources": _RESOURCES,
}, ("replicas", "roles", "storage")), _CLUSTER_LABEL)

KAFKA_TOPIC = _resource("kafka.strimzi.io/v1beta2", "KafkaTopic", _obj({
    "topicName": _STR, "partitions": {"type": "integer", "minimum": 1}, "replicas": {"type": "integer", "minimum": 1},
    "config": {"type": "object", "additionalProperties": {"type": ["string", "integer", "boolean", "number"]}},
}, ("partitions", "replicas")), _CLUSTER_LABEL)

_ACL = _obj({
    "resource": _obj({"type": {"enum": ["topic", "group", "cluster", "transactionalId"]}, "name": _STR,
                      "patternType": {"enum": ["literal", "prefix"]}}, ("type",)),
    "operations": {"type": "array", "minItems": 1, "items": {"enum": [
        "Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction", "AlterConfigs", "DescribeConfigs",
        "IdempotentWrite", "All"]}},
    "host": _STR,
}, ("resource", "operations"))
KAFKA_USER = _resource("kafka.strimzi.io/v1beta2", "KafkaUser", _obj({
    "authentication": _obj({"type": {"enum": ["tls", "tls-external", "scram-sha-512"]}}, ("type",)),
    "authorization": _obj({"type": {"const": "simple"}, "acls": {"type": "array", "items": _ACL}}, ("type", "acls")),
}, ("authentication", "authorization")), _CLUSTER_LABEL)

_ROLE = _obj({"name": _STR, "db": _STR}, ("name", "db"))
MONGODB_COMMUNITY = _resource("mongodbcommunity.mongodb.com/v1", "MongoDBCommunity", _obj({
    "members": {"type": "integer", "minimum": 1}, "type": {"const": "ReplicaSet"},
    "version": {"type": "string", "pattern": r"^\d+\.\d+\.\d+$"},
    "security": _obj({"authentication": _obj({"modes": {"type": "array", "items": {"enum": ["SCRAM", "SCRAM-SHA-1", "SCRAM-SHA-256", "X509"]}}}, ("modes",))}),
    "users": {"type": "array", "items": _obj({
        "name": _STR, "db": _STR, "passwordSecretRef": _obj({"name": _STR, "key": _STR}, ("name",)),
        "connectionStringSecretName": _STR, "scramCredentialsSecretName": {"type": "string", "pattern": "^[a-z0-9.-]+$"},
        "roles": {"type": "array", "minItems": 1, "items": _ROLE}}, ("name", "db", "passwordSecretRef", "roles",
                                                                     "scramCredentialsSecretName"))},
    "additionalMongodConfig": {"type": "object"},
    "statefulSet": _obj({"spec": {"type": "object"}}),
}, ("members", "type", "version", "security", "users")))

SCHEMAS = {(s["properties"]["apiVersion"]["const"], s["properties"]["kind"]["const"]): s
           for s in (KAFKA, KAFKA_NODE_POOL, KAFKA_TOPIC, KAFKA_USER, MONGODB_COMMUNITY)}
