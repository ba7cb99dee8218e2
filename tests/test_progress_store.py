from __future__ import annotations

import pickle
import socket
import time

import pytest

from slowjobs.progress import get_store
from slowjobs.progress.local import LocalStore
from slowjobs.progress.memcached import MAX_VALUE_BYTES, RETRY_AFTER, MemcachedStore


def test_without_memcached_the_embedded_store_is_used(settings):
    settings.SLOWJOBS_MEMCACHED = ""
    store = get_store()
    assert isinstance(store, LocalStore)
    assert store.shared is False
    assert store.set("k", {"a": 1})
    assert store.get("k") == {"a": 1}
    assert store.delete_many(["k"])
    assert store.get("k") is None


def test_local_values_expire():
    store = LocalStore()
    store.set("k", {"a": 1}, ttl=0)
    time.sleep(0.01)
    assert store.get_many(["k"]) == {}


def test_memcached_store_round_trips_json(memcached):
    store = get_store()
    assert isinstance(store, MemcachedStore)
    assert store.shared
    assert store.set("slowjobs:t:live", {"current": 3, "message": "é ok"})
    assert store.get_many(["slowjobs:t:live", "missing"]) == {
        "slowjobs:t:live": {"current": 3, "message": "é ok"}
    }
    assert store.delete_many(["slowjobs:t:live"])
    assert store.get("slowjobs:t:live") is None


def test_a_pickled_value_reads_as_missing_and_is_never_unpickled(memcached):
    payload = pickle.dumps({"evil": True})
    with socket.create_connection(("127.0.0.1", memcached.port)) as sock:
        # flags 1 is what pickling clients write
        sock.sendall(b"set slowjobs:p:live 1 60 %d\r\n%b\r\n" % (len(payload), payload))
        assert sock.recv(64).startswith(b"STORED")
        sock.sendall(b"set slowjobs:j:live 16 60 5\r\nnot{}\r\n")
        assert sock.recv(64).startswith(b"STORED")
    store = get_store()
    assert store.get("slowjobs:p:live") is None
    assert store.get("slowjobs:j:live") is None


def test_values_over_the_size_bound_are_not_stored(memcached):
    store = get_store()
    assert store.set("slowjobs:big:live", {"x": "y" * MAX_VALUE_BYTES}) is False
    assert store.available  # a refused value is not an outage
    assert store.get("slowjobs:big:live") is None


def test_a_dead_memcached_fails_fast_then_is_tried_again(own_memcached):
    store = get_store()
    assert store.set("slowjobs:a:live", {"n": 1})
    own_memcached.stop()
    started = time.monotonic()
    assert store.get("slowjobs:a:live") is None
    assert not store.available
    # While it is marked down, calls do not wait on the network at all.
    for _ in range(100):
        assert store.set("slowjobs:a:live", {"n": 2}) is False
    assert time.monotonic() - started < 2
    own_memcached.start()
    deadline = time.monotonic() + RETRY_AFTER + 3
    while not store.set("slowjobs:a:live", {"n": 3}):
        assert time.monotonic() < deadline, "memcached was not used again"
        time.sleep(0.1)
    assert store.get("slowjobs:a:live") == {"n": 3}


@pytest.mark.parametrize("bad", ["nohost", "h:0", ":11211"])
def test_bad_memcached_locations_are_refused(settings, bad):
    from django.core.exceptions import ImproperlyConfigured

    from slowjobs import conf

    settings.SLOWJOBS_MEMCACHED = bad
    with pytest.raises(ImproperlyConfigured, match="SLOWJOBS_MEMCACHED"):
        conf.load()


@pytest.fixture(params=["embedded", "memcached"])
def any_store(request):
    if request.param == "memcached":
        request.getfixturevalue("memcached")
        return get_store()
    return LocalStore()


def newer(value):
    return value.get("attempts", 0) > 1


def test_a_conditional_write_keeps_what_another_writer_wrote_meanwhile(any_store):
    key = "slowjobs:c:live"
    assert any_store.set_unless(key, {"attempts": 1}, unless=newer) is True  # none
    assert any_store.set_unless(key, {"attempts": 1, "n": 2}, unless=newer) is True
    assert any_store.get(key) == {"attempts": 1, "n": 2}
    any_store.set(key, {"attempts": 2})  # another process's newer attempt
    assert any_store.set_unless(key, {"attempts": 1, "n": 3}, unless=newer) is False
    assert any_store.get(key) == {"attempts": 2}


def test_a_conditional_write_replaces_a_value_slowjobs_cannot_read(memcached):
    with socket.create_connection(("127.0.0.1", memcached.port)) as sock:
        sock.sendall(b"set slowjobs:g:live 1 60 4\r\njunk\r\n")
        assert sock.recv(64).startswith(b"STORED")
    store = get_store()
    assert store.set_unless("slowjobs:g:live", {"attempts": 1}, unless=newer) is True
    assert store.get("slowjobs:g:live") == {"attempts": 1}
