"""JobStore against a real Redis: create, ownership, transitions, leases, fencing, cancel, idempotency, listing."""

from __future__ import annotations

import pytest

from core.errors import Conflict, InvalidInput, NotFound
from core.jobs import (CANCELED, CANCELING, FAILED, QUEUED, RUNNING, SUCCEEDED, Claim, JobStore,
                       new_job_id, public_job)
from workers.task_messages import TaskMessage

INPUT = {"model": "builtin:tiny-gpt2", "prompt": "hi"}


@pytest.fixture
def store(redis_client) -> JobStore:
    return JobStore(redis_client)


def make_job(store: JobStore, owner: str = "alice", kind: str = "text.generate", **kw) -> dict:
    job, created = store.create(owner, kind, INPUT, **kw)
    assert created
    return job


def claim_one(store: JobStore, job_id: str, ttl_s: float = 30) -> Claim:
    """Claim one job as a worker does, a batch of one."""
    return store.claim_batch(job_id, "", 1, ttl_s)[0][0]


def running_job(store: JobStore) -> tuple[dict, str]:
    job = make_job(store)
    claim = claim_one(store, job["id"])
    assert claim.outcome == "claimed"
    return job, claim.token


# -- create and read ---------------------------------------------------------------------------

def test_create_writes_a_queued_job_with_a_status_event(store):
    job = make_job(store, metadata={"tag": "x"})
    assert job["id"].startswith("job_") and len(job["id"]) > 20
    assert job["status"] == QUEUED
    assert job["input"] == INPUT and job["metadata"] == {"tag": "x"}
    assert job["attempts"] == 0 and job["cancel_requested"] is False
    assert job["started_at"] is None and job["finished_at"] is None
    assert job["created_at"].endswith("Z")

    stored = store.get(job["id"], "alice")
    assert stored["status"] == QUEUED and stored["input"] == INPUT and stored["output"] is None
    events = store.events(job["id"])
    assert [(e["type"], e["status"], e["seq"]) for e in events] == [("status", QUEUED, 0)]


def test_job_ids_are_unique(store):
    ids = {make_job(store)["id"] for _ in range(20)}
    assert len(ids) == 20


def test_get_with_another_owner_is_not_found(store):
    job = make_job(store, owner="alice")
    with pytest.raises(NotFound) as exc:
        store.get(job["id"], "bob")
    assert exc.value.param == "id"
    assert store.get(job["id"])["owner"] == "alice"  # no owner: internal read


@pytest.mark.parametrize("job_id", ["", "job_doesnotexist"])
def test_get_unknown_is_not_found(store, job_id):
    with pytest.raises(NotFound):
        store.get(job_id)


def test_public_job_hides_internals(store):
    view = public_job(make_job(store))
    assert view["object"] == "job"
    assert "owner" not in view and "epoch" not in view
    assert view["status"] == QUEUED and view["attempts"] == 0


# -- transitions -------------------------------------------------------------------------------

def test_allowed_transitions_run_to_success(store):
    job, token = running_job(store)
    assert store.transition(job["id"], SUCCEEDED, token, output={"ok": 1}) == ("ok", RUNNING)
    done = store.get(job["id"])
    assert done["status"] == SUCCEEDED and done["output"] == {"ok": 1}
    assert done["finished_at"] is not None
    assert [e["status"] for e in store.events(job["id"]) if e["type"] == "status"] == [
        QUEUED, RUNNING, SUCCEEDED]


def test_queued_job_can_fail_directly(store):
    job = make_job(store)
    outcome, previous = store.transition(job["id"], FAILED, error={"code": "x", "message": "y"})
    assert (outcome, previous) == ("ok", QUEUED)
    assert store.get(job["id"])["error"] == {"code": "x", "message": "y"}


def test_queued_job_cannot_succeed_without_running(store):
    job = make_job(store)
    assert store.transition(job["id"], SUCCEEDED) == ("denied", QUEUED)
    assert store.get(job["id"])["status"] == QUEUED


@pytest.mark.parametrize("terminal, target", [
    (SUCCEEDED, RUNNING), (SUCCEEDED, FAILED), (SUCCEEDED, CANCELING),
    (CANCELED, SUCCEEDED), (CANCELED, RUNNING), (FAILED, SUCCEEDED), (FAILED, CANCELED),
])
def test_terminal_statuses_are_never_left(store, terminal, target):
    job, token = running_job(store)
    assert store.transition(job["id"], terminal, token)[0] == "ok"
    events_before = len(store.events(job["id"]))
    assert store.transition(job["id"], target, output={"late": True}) == ("denied", terminal)
    after = store.get(job["id"])
    assert after["status"] == terminal and after["output"] is None
    assert len(store.events(job["id"])) == events_before


def test_update_on_a_terminal_job_is_denied(store):
    job = make_job(store)
    store.transition(job["id"], CANCELED)
    assert store.update(job["id"], progress={"completed": 9}) == "denied"
    assert store.get(job["id"])["progress"]["completed"] == 0


def test_write_to_missing_job_reports_missing(store):
    assert store.update("job_nope", progress={"completed": 1}) == "missing"
    assert store.transition("job_nope", FAILED)[0] == "missing"
    assert not store.r.exists(store.job_key("job_nope"))


# -- claims and leases -------------------------------------------------------------------------

def test_claim_starts_an_attempt_and_a_second_claim_is_busy(store):
    job = make_job(store)
    first = claim_one(store, job["id"])
    assert (first.outcome, first.status, first.attempts) == ("claimed", RUNNING, 1)
    assert first.token
    record = store.get(job["id"])
    assert record["status"] == RUNNING and record["attempts"] == 1 and record["started_at"]
    assert store.lease_alive(job["id"])

    second = claim_one(store, job["id"])
    assert second.outcome == "busy" and second.token == ""
    assert store.get(job["id"])["attempts"] == 1

    store.release(job["id"], first.token)
    assert not store.lease_alive(job["id"])
    third = claim_one(store, job["id"])
    assert (third.outcome, third.attempts) == ("claimed", 2)
    assert third.token != first.token
    assert store.get(job["id"])["epoch"] == 2


def test_claim_event_records_the_attempt(store):
    job, _ = running_job(store)
    last = store.events(job["id"])[-1]
    assert (last["type"], last["status"], last["attempt"]) == ("status", RUNNING, 1)


def test_release_and_renew_with_a_wrong_token_do_nothing(store):
    job, token = running_job(store)
    store.release(job["id"], "not-the-token")
    assert store.lease_alive(job["id"])
    assert store.renew_many([(job["id"], "not-the-token")], 30) == [(False, False, False)]
    assert store.renew_many([(job["id"], token)], 30) == [(True, False, False)]


def test_claim_on_terminal_job_is_terminal(store):
    job = make_job(store)
    store.transition(job["id"], CANCELED)
    claim = claim_one(store, job["id"])
    assert (claim.outcome, claim.status) == ("terminal", CANCELED)
    assert not store.lease_alive(job["id"])
    assert store.get(job["id"])["attempts"] == 0


def test_claim_on_missing_job_is_missing(store):
    assert claim_one(store, "job_missing").outcome == "missing"
    assert not store.lease_alive("job_missing")


def test_writes_with_a_wrong_token_are_fenced(store):
    job, token = running_job(store)
    events_before = len(store.events(job["id"]))
    assert store.update(job["id"], "stale-token", event={"type": "log", "message": "x"},
                        progress={"completed": 5}) == "fenced"
    assert store.transition(job["id"], SUCCEEDED, "stale-token", output={"x": 1}) == ("fenced", RUNNING)
    after = store.get(job["id"])
    assert after["status"] == RUNNING and after["output"] is None
    assert after["progress"]["completed"] == 0
    assert len(store.events(job["id"])) == events_before

    assert store.update(job["id"], token, progress={"completed": 5}) == "ok"
    assert store.get(job["id"])["progress"]["completed"] == 5


def test_a_stale_worker_is_fenced_after_another_claims(store):
    job, old_token = running_job(store)
    store.r.delete(store.lease_key(job["id"]))  # the first worker's lease lapsed
    new = claim_one(store, job["id"])
    assert new.outcome == "claimed"
    assert store.transition(job["id"], SUCCEEDED, old_token)[0] == "fenced"
    assert store.transition(job["id"], SUCCEEDED, new.token)[0] == "ok"


def test_update_appends_its_event(store):
    job, token = running_job(store)
    store.update(job["id"], token, event={"type": "progress", "completed": 3}, progress={"completed": 3})
    last = store.events(job["id"])[-1]
    assert last["type"] == "progress" and last["completed"] == 3


# -- cancel ------------------------------------------------------------------------------------

def test_cancel_of_a_queued_job_is_immediate(store):
    job = make_job(store)
    canceled = store.request_cancel(job["id"])
    assert canceled["status"] == CANCELED
    assert canceled["cancel_requested"] is True and canceled["finished_at"]
    assert claim_one(store, job["id"]).outcome == "terminal"


def test_cancel_of_a_running_job_sets_canceling_and_the_flag(store):
    job, _ = running_job(store)
    after = store.request_cancel(job["id"])
    assert after["status"] == CANCELING
    assert after["cancel_requested"] is True
    assert store.get(job["id"])["cancel_requested"] is True


def test_cancel_of_a_running_job_raises_the_flag_the_loop_checks(store):
    job, token = running_job(store)
    assert store.renew_many([(job["id"], token)], 30) == [(True, False, False)]
    store.request_cancel(job["id"])
    assert store.renew_many([(job["id"], token)], 30) == [(True, True, False)]  # the heartbeat's read


def test_cancel_of_a_finished_job_changes_nothing(store):
    job, token = running_job(store)
    store.transition(job["id"], SUCCEEDED, token, output={"done": True})
    after = store.request_cancel(job["id"])
    assert after["status"] == SUCCEEDED and after["cancel_requested"] is False
    assert after["output"] == {"done": True}


def test_canceling_job_may_finish_as_canceled_or_succeeded(store):
    job, token = running_job(store)
    assert store.transition(job["id"], CANCELING, cancel_requested=1)[0] == "ok"
    assert store.get(job["id"])["status"] == CANCELING
    assert store.transition(job["id"], RUNNING)[0] == "denied"
    assert store.transition(job["id"], CANCELED, token) == ("ok", CANCELING)


# -- idempotency -------------------------------------------------------------------------------

def test_same_idempotency_key_and_body_returns_the_same_job(store):
    first, created = store.create("alice", "text.generate", INPUT, idempotency=("k1", "hash-a"))
    again, created_again = store.create("alice", "text.generate", INPUT, idempotency=("k1", "hash-a"))
    assert created is True and created_again is False
    assert again["id"] == first["id"]
    jobs, _ = store.list("alice")
    assert [j["id"] for j in jobs] == [first["id"]]


def test_same_idempotency_key_with_another_body_conflicts(store):
    store.create("alice", "text.generate", INPUT, idempotency=("k1", "hash-a"))
    with pytest.raises(Conflict) as exc:
        store.create("alice", "text.generate", INPUT, idempotency=("k1", "hash-b"))
    assert exc.value.param == "Idempotency-Key"
    assert exc.value.code == "idempotency_key_reused"
    assert len(store.list("alice")[0]) == 1


def test_idempotency_keys_are_per_owner(store):
    a, _ = store.create("alice", "text.generate", INPUT, idempotency=("k1", "hash-a"))
    b, created = store.create("bob", "text.generate", INPUT, idempotency=("k1", "hash-a"))
    assert created is True and b["id"] != a["id"]


def test_create_pushes_messages_with_the_record_and_an_idempotent_repeat_pushes_none(store):
    msg, job_id = TaskMessage("q-test", "payload"), new_job_id()
    job, _ = store.create("alice", "text.generate", INPUT, idempotency=("k1", "h"), job_id=job_id,
                          messages=[msg, TaskMessage("q-other", job_id)])
    assert store.r.lrange("q-test", 0, -1) == ["payload"]
    assert job["id"] == job_id and store.r.lrange("q-other", 0, -1) == [job_id]
    _, created = store.create("alice", "text.generate", INPUT, idempotency=("k1", "h"), messages=[msg])
    assert created is False and store.r.llen("q-test") == 1


def test_a_batch_list_wakes_a_worker_only_when_it_was_empty(store):
    msg = TaskMessage("q-test", "wake")
    ids = [store.create("alice", "text.generate", INPUT, messages=[msg], batch_list="b-test")[0]["id"]
           for _ in range(3)]
    assert store.r.lrange("b-test", 0, -1) == ids
    assert store.r.llen("q-test") == 1


def test_claim_batch_takes_the_lead_and_its_batchmates_and_leaves_a_message_for_the_rest(store):
    start = {"completed": 0, "total": 8, "unit": "tokens", "eta_s": None}
    ids = [store.create("alice", "text.generate", INPUT, batch_list="b-test", progress=start)[0]["id"]
           for _ in range(5)]
    store.transition(ids[2], CANCELED)  # canceled while queued: looked at, not taken
    more = TaskMessage("q-test", "continue")
    claimed = store.claim_batch(ids[1], "b-test", 4, 30, more)
    assert [c.outcome for c, _ in claimed] == ["claimed", "claimed", "terminal", "claimed"]
    assert [job["id"] for _, job in claimed if job] == [ids[1], ids[0], ids[3]]
    assert all(job["status"] == "running" and job["progress"] == start for _, job in claimed if job)
    assert store.r.lrange("b-test", 0, -1) == [ids[4]] and store.r.lrange("q-test", 0, -1) == ["continue"]
    # Claimed jobs hold leases: a second look finds them busy.
    assert store.claim_batch(ids[0], "", 1, 30)[0][0].outcome == "busy"
    # The continuation takes the rest and leaves no message behind.
    [(claim, job)] = store.claim_batch(None, "b-test", 4, 30, more)
    assert job["id"] == ids[4] and store.r.llen("b-test") == 0 and store.r.llen("q-test") == 1


def test_finish_many_fences_each_job_by_its_own_lease(store):
    ids = [store.create("alice", "text.generate", INPUT, batch_list="b-test")[0]["id"] for _ in range(2)]
    claims = store.claim_batch(None, "b-test", 2, 30)
    (c0, _), (c1, _) = claims
    progress = {"completed": 4, "total": 4, "unit": "tokens", "eta_s": None}
    out = store.finish_many([(ids[0], c0.token, SUCCEEDED, {"output": {"x": 1}}, progress),
                             (ids[1], "not-the-token", SUCCEEDED, {"output": {"x": 2}}, progress)])
    assert out[0][0] == "ok" and out[0][1]["status"] == SUCCEEDED and out[0][1]["output"] == {"x": 1}
    assert out[0][1]["progress"]["completed"] == 4 and out[0][1]["finished_at"]
    assert out[1] == ("fenced", None) and store.get(ids[1])["status"] == "running"
    assert [e["type"] for e in store.events(ids[0])][-2:] == ["progress", "status"]
    assert not store.lease_alive(ids[0]) and store.lease_alive(ids[1])


# -- listing -----------------------------------------------------------------------------------

def test_list_paginates_newest_first_with_a_cursor(store):
    ids = [make_job(store)["id"] for _ in range(5)]
    make_job(store, owner="bob")
    page1, cursor1 = store.list("alice", limit=2)
    page2, cursor2 = store.list("alice", limit=2, after=cursor1)
    page3, cursor3 = store.list("alice", limit=2, after=cursor2)
    assert [j["id"] for j in page1 + page2 + page3] == ids[::-1]
    assert cursor1 == ids[3] and cursor2 == ids[1]
    assert cursor3 is None and len(page3) == 1


def test_list_exact_last_page_has_no_cursor(store):
    for _ in range(2):
        make_job(store)
    jobs, cursor = store.list("alice", limit=2)
    assert len(jobs) == 2 and cursor is None


def test_list_filters_by_kind_and_status(store):
    a = make_job(store, kind="text.generate")
    b = make_job(store, kind="gan.sample")
    c = make_job(store, kind="text.generate")
    store.transition(c["id"], CANCELED)
    assert [j["id"] for j in store.list("alice", kind="gan.sample")[0]] == [b["id"]]
    assert [j["id"] for j in store.list("alice", status=CANCELED)[0]] == [c["id"]]
    assert [j["id"] for j in store.list("alice", kind="text.generate", status=QUEUED)[0]] == [a["id"]]
    assert store.list("alice", status=SUCCEEDED) == ([], None)


def test_filtered_list_paginates(store):
    wanted = []
    for i in range(6):
        job = make_job(store, kind="gan.sample" if i % 2 else "text.generate")
        if i % 2:
            wanted.append(job["id"])
    page1, cursor = store.list("alice", kind="gan.sample", limit=2)
    page2, _ = store.list("alice", kind="gan.sample", limit=2, after=cursor)
    assert [j["id"] for j in page1 + page2] == wanted[::-1][:4]


def test_list_with_an_unknown_cursor_is_invalid_input(store):
    make_job(store)
    with pytest.raises(InvalidInput) as exc:
        store.list("alice", after="job_bogus")
    assert exc.value.param == "after"


def test_list_does_not_accept_another_owners_job_as_cursor(store):
    other = make_job(store, owner="bob")
    make_job(store, owner="alice")
    with pytest.raises(InvalidInput):
        store.list("alice", after=other["id"])


# -- events ------------------------------------------------------------------------------------

def test_events_after_returns_only_later_events_with_seq(store):
    job = make_job(store)
    for i in range(4):
        store.add_event(job["id"], "log", message=f"line {i}")
    all_events = store.events(job["id"])
    assert [e["seq"] for e in all_events] == [0, 1, 2, 3, 4]
    later = store.events(job["id"], after=2)
    assert [e["seq"] for e in later] == [3, 4]
    assert [e["message"] for e in later] == ["line 2", "line 3"]
    assert store.events(job["id"], after=4) == []
    limited = store.events(job["id"], after=0, limit=2)
    assert [e["seq"] for e in limited] == [1, 2]


# -- active set --------------------------------------------------------------------------------

def test_active_set_gains_on_claim_and_loses_on_terminal(store):
    job = make_job(store)
    assert store.active_ids() == []
    claim = claim_one(store, job["id"])
    assert store.active_ids() == [job["id"]]
    store.transition(job["id"], FAILED, claim.token, error={"code": "x", "message": "y"})
    assert store.active_ids() == []
    assert not store.lease_alive(job["id"])  # a terminal write with the token drops the lease


def test_non_terminal_transition_keeps_the_job_active(store):
    job, _ = running_job(store)
    store.transition(job["id"], CANCELING)
    assert store.active_ids() == [job["id"]]

