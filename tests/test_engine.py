import sys
import threading

import numpy as np
import pytest

from studio.core.engine import Engine, Job, JobError, JobState, resolve_device
from studio.core.registry import Registry
from studio.core.store import Project


@pytest.fixture
def slow(slow_plugin):
    registry = Registry(builtins=("plugins.ppca", slow_plugin))
    module = __import__(f"{slow_plugin}.actions", fromlist=["GATE"])
    return registry, module


def wait_for(engine, predicate, timeout=10.0):
    """Block until ``predicate`` holds, re-checking it at every engine event (no polling)."""
    condition = threading.Condition()

    def wake(*_):
        with condition:
            condition.notify_all()

    engine.subscribe(wake)
    try:
        with condition:
            assert condition.wait_for(predicate, timeout), "condition not met in time"
    finally:
        engine.unsubscribe(wake)


def test_job_runs_to_completion_and_is_recorded(slow, tmp_path):
    registry, module = slow
    project = Project(tmp_path / "p")
    engine = Engine(registry, project)
    events = []
    engine.subscribe(lambda event, job: events.append(event))
    for _ in range(3):
        module.GATE.release()
    job = engine.execute(Job("test.slow", "count", params={"steps": 3}, seed=5))
    assert job.state == JobState.DONE, job.error
    assert events[:2] == ["started", "progress"] and events[-1] == "done"
    assert events.count("progress") == 3
    [record] = project.records()
    assert record.seed == 5 and record.params == {"steps": 3, "fail": False} and record.file.exists()


def test_cancel_stops_within_one_step(slow):
    registry, module = slow
    engine = Engine(registry)
    job = engine.submit(Job("test.slow", "count", params={"steps": 1000}))
    module.GATE.release()
    module.GATE.release()
    wait_for(engine, lambda: job.step == 2)
    engine.cancel(job)
    module.GATE.release()  # the action may take at most this one more step
    wait_for(engine, lambda: job.state.finished)
    assert job.state == JobState.CANCELLED
    assert len(module.STEPS_TAKEN) <= 3
    engine.shutdown()


def test_queued_jobs_run_in_order_and_queued_cancel_never_runs(slow):
    registry, module = slow
    engine = Engine(registry)
    first = engine.submit(Job("test.slow", "count", params={"steps": 1}))
    second = engine.submit(Job("test.slow", "count", params={"steps": 1}))
    third = engine.submit(Job("test.slow", "count", params={"steps": 1}))
    engine.cancel(second)
    module.GATE.release()
    module.GATE.release()
    wait_for(engine, lambda: third.state.finished)
    assert (first.state, second.state, third.state) == (JobState.DONE, JobState.CANCELLED, JobState.DONE)
    assert first.finished <= third.started
    engine.shutdown()


def test_pause_holds_between_steps(slow):
    registry, module = slow
    engine = Engine(registry)
    job = engine.submit(Job("test.slow", "count", params={"steps": 3}))
    module.GATE.release()
    wait_for(engine, lambda: job.step == 1)
    job.pause()
    module.GATE.release()
    wait_for(engine, lambda: len(module.STEPS_TAKEN) == 2)
    module.GATE.release()
    wait_for(engine, lambda: job.paused and job.step == 2)
    assert not job.state.finished
    job.resume()
    wait_for(engine, lambda: job.state.finished)
    assert job.state == JobState.DONE
    engine.shutdown()


def test_failure_is_one_readable_line_with_details(slow):
    registry, module = slow
    module.GATE.release()
    job = Engine(registry).execute(Job("test.slow", "count", params={"fail": True}))
    assert job.state == JobState.FAILED
    assert job.error == "RuntimeError: the plugin broke on purpose"
    assert "Traceback" in job.details


def test_bad_input_fails_before_running(slow):
    registry, _ = slow
    engine = Engine(registry)
    job = engine.execute(Job("test.slow", "count", params={"steps": 0}))
    assert job.error_kind == "input" and job.error == "steps must be at least 1, not 0"
    job = engine.execute(Job("studio.ppca", "edit", "ppca-mnist", {"image": "/no/such.png"}))
    assert job.error_kind == "input" and "no such file" in job.error
    job = engine.execute(Job("studio.ppca", "generate", "not-a-model"))
    assert job.error_kind == "model"


def test_same_seed_reproduces_exactly():
    engine = Engine(Registry())
    a = engine.execute(Job("studio.ppca", "generate", "ppca-mnist", {"count": 3}, seed=42))
    b = engine.execute(Job("studio.ppca", "generate", "ppca-mnist", {"count": 3}, seed=42))
    c = engine.execute(Job("studio.ppca", "generate", "ppca-mnist", {"count": 3}, seed=43))
    assert all(np.array_equal(x, y) for x, y in zip(a.result.images, b.result.images))
    assert not np.array_equal(a.result.images[0], c.result.images[0])


def test_out_of_memory_becomes_a_clear_message(slow, monkeypatch):
    registry, module = slow
    module.GATE.release()

    def oom(ctx):
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")
        yield

    monkeypatch.setattr(module, "count", oom)
    job = Engine(registry).execute(Job("test.slow", "count"))
    assert job.error_kind == "oom"
    assert "ran out of memory" in job.error and "CPU" in job.error


def test_device_resolution():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cuda", "mps", "cpu")
    assert resolve_device("auto", supported=("cpu",)) == "cpu"
    with pytest.raises(JobError, match="unknown device"):
        resolve_device("tpu")
    if "torch" in sys.modules and not sys.modules["torch"].cuda.is_available():
        with pytest.raises(JobError, match="not available"):
            resolve_device("cuda")
    with pytest.raises(JobError, match="runs only on cpu"):
        resolve_device("cuda", supported=("cpu",))
