"""API keys in a real Redis: create, authenticate, revoke, name reuse, and no plain key at rest."""

from __future__ import annotations

import pytest

from core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from core.keys import KEY_PREFIX, KeyStore, key_digest


@pytest.fixture
def keys(redis_client) -> KeyStore:
    return KeyStore(redis_client)


def test_create_returns_a_prefixed_random_key(keys):
    a = keys.create("alice")
    b = keys.create("bob")
    assert a.startswith(KEY_PREFIX) and b.startswith(KEY_PREFIX)
    assert a != b and len(a) > len(KEY_PREFIX) + 30


def test_authenticate_returns_the_owner(keys):
    assert keys.authenticate(keys.create("alice")) == "alice"
    assert keys.authenticate(keys.create("ci-key", owner="team-a")) == "team-a"


@pytest.mark.parametrize("bad", [None, "", "aigc_", "aigc_wrong", "Bearer aigc_x", "nope",
                                 "aigc_" + "a" * 300])
def test_wrong_missing_or_malformed_keys_are_unauthorized(keys, bad):
    keys.create("alice")
    with pytest.raises(Unauthorized) as exc:
        keys.authenticate(bad)
    assert exc.value.status == 401


def test_a_real_key_without_its_prefix_is_unauthorized(keys):
    key = keys.create("alice")
    with pytest.raises(Unauthorized):
        keys.authenticate(key[len(KEY_PREFIX):])
    with pytest.raises(Unauthorized):
        keys.authenticate(key + "x")


def test_revoked_key_is_unauthorized(keys):
    key = keys.create("alice")
    keys.revoke("alice")
    with pytest.raises(Unauthorized) as exc:
        keys.authenticate(key)
    assert "revoked" in exc.value.message
    with pytest.raises(Unauthorized):
        keys.owner_for_digest(key_digest(key))
    assert keys.list()[0]["revoked_at"]


def test_revoking_an_unknown_name_is_not_found(keys):
    with pytest.raises(NotFound):
        keys.revoke("ghost")


def test_name_reuse_conflicts_while_active_and_is_allowed_after_revoke(keys):
    old = keys.create("alice")
    with pytest.raises(Conflict) as exc:
        keys.create("alice")
    assert exc.value.param == "name"
    assert keys.authenticate(old) == "alice"  # the failed create changed nothing

    keys.revoke("alice")
    new = keys.create("alice")
    assert keys.authenticate(new) == "alice"
    with pytest.raises(Unauthorized):
        keys.authenticate(old)
    assert [k["name"] for k in keys.list()] == ["alice"]


def test_list_shows_names_and_owners_but_no_secrets(keys):
    keys.create("b-key", owner="bob")
    keys.create("a-key")
    listed = keys.list()
    assert [(k["name"], k["owner"]) for k in listed] == [("a-key", "a-key"), ("b-key", "bob")]
    assert all(set(k) == {"name", "owner", "created_at", "revoked_at"} for k in listed)


def test_the_plain_key_is_stored_nowhere_in_redis(keys, redis_client):
    plain = [keys.create("alice"), keys.create("bob", owner="team")]
    keys.revoke("bob")
    dump = []
    for name in redis_client.scan_iter("*"):
        dump.append(name)
        kind = redis_client.type(name)
        if kind == "string":
            dump.append(redis_client.get(name))
        elif kind == "hash":
            for field, value in redis_client.hgetall(name).items():
                dump += [field, value]
        else:
            pytest.fail(f"unexpected {kind} key {name}")
    blob = "\n".join(dump)
    assert key_digest(plain[0]) in blob  # the scan did see the key records
    for key in plain:
        assert key not in blob
        assert key[len(KEY_PREFIX):] not in blob


@pytest.mark.parametrize("name", ["", "-lead", ".dot", "has space", "slash/name", "x" * 65, "ünï"])
def test_bad_names_are_invalid_input(keys, name):
    with pytest.raises(InvalidInput) as exc:
        keys.create(name)
    assert exc.value.param == "name"
    assert keys.list() == []


def test_bad_owner_is_invalid_input(keys):
    with pytest.raises(InvalidInput) as exc:
        keys.create("fine", owner="not fine")
    assert exc.value.param == "owner"
    assert keys.list() == []
