"""Ports for the servers the tests and the local platform start: never from the range the kernel gives outgoing
connections (a server's port taken as some connection's source port before it binds: "Address already in use")."""
from __future__ import annotations

import socket

from shared.devstack import servers
from shared.devstack.servers import _ephemeral_low, free_port


def test_free_ports_are_below_the_outgoing_range_distinct_and_bindable():
    ports = [free_port() for _ in range(50)]

    assert all(1024 <= port < _ephemeral_low() for port in ports)
    assert len(set(ports)) == len(ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))


def test_a_port_in_use_is_passed_over(monkeypatch):
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        taken = listening.getsockname()[1]
        real, offered = servers._RANDOM.randrange, []

        def offer_the_taken_port_first(low, high):
            offered.append(taken if len(offered) < 2 else real(low, high))
            return offered[-1]

        monkeypatch.setattr(servers._RANDOM, "randrange", offer_the_taken_port_first)

        port = free_port()

        assert offered[:2] == [taken, taken] and port == offered[-1] != taken
