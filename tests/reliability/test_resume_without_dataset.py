"""A job whose dataset was deleted cannot resume: `POST /jobs/{id}/resume` answers 404 at once, naming the
dataset, as POST /jobs answers for a missing dataset, and leaves the record as it was (it used to answer 202,
queue the job, and let the worker fail it). In process: the app over the embedded broker (nothing consumes it)."""

from collections.abc import Iterator

import pytest

from tests.app.conftest import InProcessApp, in_process_app

TOKEN = "resume-token"


@pytest.fixture(scope="module")
def resume_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    from model.synthetic import make_synthetic_dataset

    data_dir = tmp_path_factory.mktemp("resume-without-dataset") / "data"
    for name in ("soon-gone", "empty-later"):
        make_synthetic_dataset(data_dir / "datasets" / name, train=4, val=2, seed=0)
    with in_process_app(data_dir, api_token=TOKEN) as running:
        yield running


def cancelled_job(client, dataset: str) -> dict:
    launched = client.post("/jobs", json={"dataset": dataset, "steps": 4, "batch_size": 1})
    assert launched.status_code == 202, launched.text
    cancelled = client.post(f"/jobs/{launched.json()['id']}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["state"] == "cancelled", cancelled.text
    return cancelled.json()


def test_resume_after_the_dataset_was_deleted_is_refused_and_changes_nothing(
    resume_app: InProcessApp,
) -> None:
    with resume_app.client() as client:
        job = cancelled_job(client, "soon-gone")
        assert client.delete("/datasets/soon-gone").status_code == 200
        launch = client.post("/jobs", json={"dataset": "soon-gone", "steps": 4})
        resumed = client.post(f"/jobs/{job['id']}/resume")
        after = client.get(f"/jobs/{job['id']}").json()
    assert launch.status_code == 404, launch.text
    assert resumed.status_code == launch.status_code, f"resume should refuse like POST /jobs: {resumed.text}"
    assert "'soon-gone'" in resumed.json()["detail"] and job["id"] in resumed.json()["detail"], resumed.text
    assert record_of(after) == record_of(job), "a refused resume changed the job's record"


def test_resume_of_a_dataset_without_pairs_is_refused_like_a_launch(resume_app: InProcessApp) -> None:
    with resume_app.client() as client:
        job = cancelled_job(client, "empty-later")
        for pair in (resume_app.data_dir / "datasets" / "empty-later" / "val").iterdir():
            pair.unlink()
        launch = client.post("/jobs", json={"dataset": "empty-later", "steps": 4})
        resumed = client.post(f"/jobs/{job['id']}/resume")
        after = client.get(f"/jobs/{job['id']}").json()
    assert launch.status_code == 422, launch.text
    assert resumed.status_code == 422 and "'empty-later'" in resumed.json()["detail"], resumed.text
    assert record_of(after) == record_of(job), "a refused resume changed the job's record"


def test_a_job_in_another_state_still_gets_409_and_a_present_dataset_resumes(
    resume_app: InProcessApp,
) -> None:
    from model.synthetic import make_synthetic_dataset

    make_synthetic_dataset(resume_app.data_dir / "datasets" / "present", train=4, val=2, seed=1)
    with resume_app.client() as client:
        queued = client.post("/jobs", json={"dataset": "present", "steps": 4, "batch_size": 1}).json()
        assert client.post(f"/jobs/{queued['id']}/resume").status_code == 409, "a queued job cannot resume"
        client.post(f"/jobs/{queued['id']}/cancel")
        resumed = client.post(f"/jobs/{queued['id']}/resume")
        assert resumed.status_code == 202 and resumed.json()["state"] == "queued", resumed.text
        client.post(f"/jobs/{queued['id']}/cancel")


def record_of(view: dict) -> dict:
    """The stored record in a GET /jobs/{id} answer: without what the API counts when it answers."""
    return {key: value for key, value in view.items() if key not in ("seconds_left", "queue")}
