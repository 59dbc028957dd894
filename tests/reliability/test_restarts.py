"""An API restarted while a job trains loses nothing: the job goes on, and the new API shows it to the end."""

from pathlib import Path

from tests.support import JobSystem


def test_an_api_restart_mid_job_loses_nothing(tmp_path: Path):
    system = JobSystem(tmp_path, broker_url=None)
    try:
        worker = system.start_worker("solo", wait=False)  # loads TensorFlow while the API starts
        system.start_api()
        system.wait_ready(worker)
        job = system.launch(steps=60, checkpoint_every=20, export_every=60)
        system.wait_for_job(job["id"], lambda record: record["progress"]["step"] >= 4, "training past step 4")
        system.api.stop()  # the API goes away mid-job ...
        system.start_api()  # ... and comes back on another port, same data folder
        finished = system.wait_for_job(
            job["id"], lambda record: record["state"] in ("succeeded", "failed"), "end"
        )
        assert finished["state"] == "succeeded", system.diagnostics(finished)
        assert len(finished["attempts"]) == 1, "the worker never noticed: one attempt"
        with system.client() as client:
            assert client.get("/models").json()["active_version"] in (None, finished["progress"]["version"])
            assert [record["id"] for record in client.get("/jobs").json()] == [job["id"]]
    finally:
        system.close()


def test_a_broker_restart_mid_job_without_persistence_loses_nothing(tmp_path: Path):
    """Redis goes away while a job trains and comes back empty: the job finishes (its state is in files), the
    worker reconnects, and a job launched afterwards runs too."""
    import signal

    from tests.support import start_redis_server

    redis_server, port = start_redis_server(tmp_path)
    system = JobSystem(tmp_path / "system", broker_url=f"redis://127.0.0.1:{port}/0")
    try:
        worker = system.start_worker("solo", wait=False)  # loads TensorFlow while the API starts
        system.start_api()
        system.wait_ready(worker)
        job = system.launch(steps=60, checkpoint_every=20, export_every=60)
        system.wait_for_job(job["id"], lambda record: record["progress"]["step"] >= 4, "training past step 4")
        redis_server.stop(signal.SIGTERM)
        redis_server, _ = start_redis_server(tmp_path, port)  # back, with nothing in it
        finished = system.wait_for_job(
            job["id"], lambda record: record["state"] in ("succeeded", "failed"), "end"
        )
        assert finished["state"] == "succeeded", system.diagnostics(finished)
        after = system.launch(steps=4, checkpoint_every=4)
        done = system.wait_for_job(
            after["id"], lambda record: record["state"] in ("succeeded", "failed"), "end"
        )
        assert done["state"] == "succeeded", system.diagnostics(done)
    finally:
        system.close()
        redis_server.stop()
