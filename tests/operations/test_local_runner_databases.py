"""The local runner gives each service a database server of its own (deploy/local.py says why). A var
folder of the earlier layout (one server for every service, its files right in var/mongo) is moved aside
at the first start and each service's data copied into its own server: nothing a developer had is lost."""
from concurrent.futures import ThreadPoolExecutor

from pymongo import MongoClient

from deploy.backup import SERVICES
from deploy.local import DATABASE_OWNERS, _move_to_own_servers, _one_server_data
from shared.devstack.servers import EmbeddedMongo


def test_data_of_the_earlier_one_server_layout_is_copied_to_each_services_own_server(tmp_path):
    var = tmp_path / "var"
    (var / "logs").mkdir(parents=True)
    old = EmbeddedMongo(storage_path=var / "mongo").start()
    try:
        with MongoClient(old.uri) as client:
            for service in SERVICES:
                client[f"recoverynet_{service}"].things.insert_many([{"_id": f"{service}-{i}", "i": i} for i in range(3)])
            client["recoverynet_intake"].leases.insert_one({"_id": "outbox-relay:intake"})   # volatile: not copied
    finally:
        old.stop()

    earlier = _one_server_data(var / "mongo")
    assert earlier == var / "mongo-one-server" and not (var / "mongo").exists()
    mongos = {owner: EmbeddedMongo(storage_path=var / "mongo" / owner) for owner in DATABASE_OWNERS}
    with ThreadPoolExecutor(len(mongos)) as pool:
        list(pool.map(EmbeddedMongo.start, mongos.values()))
    said = []
    try:
        _move_to_own_servers(earlier, mongos, var / "logs", said.append)
        for owner, mongo in mongos.items():
            with MongoClient(mongo.uri) as client:
                names = set(client.list_database_names())
                assert names & {f"recoverynet_{s}" for s in SERVICES} == ({f"recoverynet_{owner}"} if owner in SERVICES else set())
                if owner in SERVICES:
                    things = sorted(d["_id"] for d in client[f"recoverynet_{owner}"].things.find())
                    assert things == [f"{owner}-{i}" for i in range(3)]
                    assert "leases" not in client[f"recoverynet_{owner}"].list_collection_names() or \
                        client[f"recoverynet_{owner}"].leases.count_documents({}) == 0
    finally:
        for mongo in mongos.values():
            mongo.stop()
    assert any("may be deleted" in line for line in said), said
    assert earlier.is_dir(), "the earlier data is kept until someone deletes it"
    # the next start finds the new layout and moves nothing
    assert _one_server_data(var / "mongo") is None
