"""The durable job store on a real SQLite file and on a real PostgreSQL server: claiming, recovery after a
crash, idempotency, batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.jobs.files import JobFiles, read_manifest
from app.jobs.store import IdempotencyConflict, JobStore


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind the store supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def store(db_url: str) -> Iterator[JobStore]:
    s = JobStore(db_url)
    yield s
    s.close()


def add(store: JobStore, job_id: str, **kw) -> None:
    store.create_job(job_id=job_id, options={"preset": "tiny"}, image_names=["a.png"], **kw)


def test_claim_order_and_exclusivity(store: JobStore, db_url: str) -> None:
    for name in ("old", "mid", "new"):
        add(store, name)
    add(store, "urgent", priority=1)
    first = store.claim(2)
    assert [j.id for j in first] == ["urgent", "old"]
    assert all(j.status == "running" and j.attempts == 1 for j in first)
    # A second store on the same file (another process) cannot claim them again.
    other = JobStore(db_url)
    assert [j.id for j in other.claim(10)] == ["mid", "new"]
    assert store.claim(10) == []
    other.close()


def test_recover_requeues_then_fails_after_max_attempts(store: JobStore) -> None:
    add(store, "a")
    for attempt in (1, 2):
        assert [j.id for j in store.claim(1)] == ["a"]  # started, then the process "dies"
        requeued, failed = store.recover(max_attempts=3)
        assert requeued == ["a"] and failed == []
        job = store.get_job("a")
        assert job.status == "queued" and job.attempts == attempt and job.progress == 0.0
    store.claim(1)
    requeued, failed = store.recover(max_attempts=3)
    assert requeued == [] and failed == ["a"]
    job = store.get_job("a")
    assert job.status == "failed" and job.attempts == 3
    assert "3 times" in job.error and "ONEPASS_MAX_ATTEMPTS=3" in job.error


def test_finished_jobs_are_not_touched_by_recover_or_progress(store: JobStore) -> None:
    add(store, "a")
    store.claim(1)
    assert store.set_progress("a", stage="reconstructing", progress=0.5)
    assert store.succeed("a", {"total_s": 1.0})
    assert not store.set_progress("a", stage="late", progress=0.9)
    assert not store.fail("a", "too late")
    assert store.recover(3) == ([], [])
    job = store.get_job("a")
    assert (job.status, job.progress, job.timings) == ("succeeded", 1.0, {"total_s": 1.0})


def test_cancel_stops_a_running_job(store: JobStore) -> None:
    add(store, "a")
    store.claim(1)
    assert store.cancel("a").status == "cancelled"
    assert not store.set_progress("a", stage="writing", progress=0.7)  # the worker sees it and stops
    assert not store.succeed("a", {})
    assert store.get_job("a").status == "cancelled"


def test_idempotency_key_is_unique(store: JobStore) -> None:
    add(store, "a", idempotency_key="k", fingerprint="f1")
    with pytest.raises(IdempotencyConflict):
        add(store, "b", idempotency_key="k", fingerprint="f2")
    assert store.find_by_idempotency_key("k").id == "a"
    assert store.get_job("b") is None


def test_counts_list_and_batches(store: JobStore) -> None:
    store.create_batch(batch_id="B", source="zip", options={})
    add(store, "x", batch_id="B", scene="s2")
    add(store, "y", batch_id="B", scene="s1")
    add(store, "z")
    store.claim(1)
    store.fail("x", "boom", kind="input")
    assert store.counts_by_status() == {
        "queued": 2,
        "running": 0,
        "succeeded": 0,
        "failed": 1,
        "cancelled": 0,
    }
    assert store.batch_counts("B")["failed"] == 1 and store.batch_counts("B")["queued"] == 1
    jobs, total = store.list_jobs(batch_id="B")
    assert total == 2 and [j.scene for j in jobs] == ["s1", "s2"]
    assert store.get_job("x").error_kind == "input"
    page, total = store.list_jobs(limit=1, offset=1)
    assert total == 3 and len(page) == 1
    assert store.delete("z") and not store.delete("z")


def test_artifacts_appear_in_one_rename(tmp_path: Path) -> None:
    files = JobFiles(tmp_path / "data")
    tmp = files.new_artifacts_tmp("j1")
    (tmp / "cameras.json").write_text("{}")
    (tmp / "depth").mkdir()
    (tmp / "depth" / "a.npy").write_bytes(b"x" * 10)
    assert not files.artifacts_dir("j1").exists()
    files.publish_artifacts("j1", tmp)
    manifest = read_manifest(files.artifacts_dir("j1"))
    assert sorted(manifest) == ["cameras.json", "depth/a.npy"] and manifest["depth/a.npy"]["size"] == 10
    assert not tmp.exists()
    # A crash mid-write leaves a hidden temp folder and an upload folder: the next start removes them.
    files.new_artifacts_tmp("j2")
    files.new_upload_dir()
    assert files.sweep() == 2
    assert list(files.uploads.iterdir()) == [] and list(files.job_dir("j2").iterdir()) == []


def test_progress_never_goes_back(store: JobStore) -> None:
    add(store, "a")
    store.claim(1)
    assert store.set_progress("a", stage="writing", progress=0.7)
    assert store.set_progress(
        "a", stage="reconstructing", progress=0.2
    )  # late update: ignored, still running
    job = store.get_job("a")
    assert (job.stage, job.progress) == ("writing", 0.7)
    store.cancel("a")
    assert not store.set_progress("a", stage="publishing", progress=0.95)
    assert not store.set_progress("missing", stage="x", progress=0.1)


def test_release_returns_running_jobs_without_using_an_attempt(store: JobStore) -> None:
    add(store, "a")
    add(store, "b")
    store.claim(2)
    store.succeed("b", {})
    assert store.release(["a", "b"]) == ["a"]
    job = store.get_job("a")
    assert (job.status, job.attempts, job.progress) == ("queued", 0, 0.0)
    assert store.get_job("b").status == "succeeded"
