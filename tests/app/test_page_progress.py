"""The page says what it waits for, in a real Chromium against a real server (no worker: the tests write job records
as a worker would): a queued job's place in line and wait, a job publishing a version, the launch message and
a pinned version that is still loading kept true as things change, a change of result size or model colorizes
again, and the label input's pattern compiles."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.app.browser import ARTIFACTS
from tests.app.conftest import Server, run_server, wait_for_version
from tests.conftest import publish_tiny_generator

JOB = {"steps": 100, "batch_size": 2, "ngf": 16, "ndf": 16, "export_every": 50}
# The server looks for a newly pinned version only this often (after its first look, at start), so that the page
# shows the pinned version as loading for as long as the test looks.
SLOW_POLL_SECONDS = 3600
DURATION = r"(\d+ min )?\d+ s"
SCREENSHOT = "page-jobs-waiting.png"


def job_record(runs_dir: Path, state: str, **progress) -> str:
    """A job on dataset demo, put in `state` with `progress` as a worker would (contracts/jobs.py)."""
    from contracts import jobs
    from contracts.job_record import Job
    from contracts.job_states import JobState
    from contracts.train_config import TrainConfig

    job_id = jobs.new_job_id()
    jobs.create_record(runs_dir / job_id, jobs.new_record(job_id, "demo", TrainConfig(**JOB), JOB["steps"]))

    def change(record: Job) -> None:
        record.state = JobState(state)
        for name, value in progress.items():
            setattr(record.progress, name, value)

    jobs.update_record(runs_dir / job_id, change)
    return job_id


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Versions 1 and 2 (served), dataset demo, timings learned here (start-up 35 s, exports 40 s, 20 images/s),
    a job publishing its step-50 version and two queued jobs."""
    from contracts.job_record import Phase
    from contracts.job_timing import JobTimings, Speed
    from model.synthetic import make_synthetic_dataset

    data_dir = tmp_path_factory.mktemp("page-progress") / "data"
    assert publish_tiny_generator(data_dir / "models", seed=1) == 1
    assert publish_tiny_generator(data_dir / "models", seed=2) == 2
    make_synthetic_dataset(data_dir / "datasets" / "demo", train=4, val=2, seed=0)
    runs_dir = data_dir / "runs"
    JobTimings(runs_dir).add(start_seconds=35, publish_seconds=40, speed=Speed(ngf=16, images_per_second=20))
    job_record(runs_dir, "queued")
    job_record(runs_dir, "queued")
    job_record(runs_dir, "running", step=50, images_per_second=20.0, phase=Phase.PUBLISHING,
               phase_started_at=datetime.now(UTC).isoformat())  # fmt: skip
    with run_server(data_dir, model_poll_seconds=SLOW_POLL_SECONDS) as running:
        wait_for_version(running, 2)
        yield running


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.route("**/colorize*", lambda route: route.continue_())  # so that request bodies can be read
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    opened.goto(server.base_url + "/")
    expect(opened.get_by_test_id("model-status")).to_have_text("model version 2", timeout=15_000)
    yield opened
    opened.context.close()
    assert not errors, f"errors in the page's console: {errors}"


def seconds(text: str) -> int:
    """The duration in words of dom.js's formatSeconds ("1 min 5 s", "45 s") as seconds."""
    found = re.search(DURATION, text)
    assert found, f"no duration in {text!r}"
    minutes = re.search(r"(\d+) min", found.group(0))
    return (int(minutes.group(1)) * 60 if minutes else 0) + int(
        re.search(r"(\d+) s", found.group(0)).group(1)
    )


def row_of(page: Page, state: str):
    return page.locator("#jobs-body tr.job", has=page.locator(f"span.state.{state}"))


def test_the_jobs_table_says_what_each_job_waits_for(page: Page) -> None:
    publishing, queued = row_of(page, "running"), row_of(page, "queued").filter(has_text="next in line")
    expect(publishing.get_by_test_id("job-phase")).to_have_text("publishing a new version…")
    expect(publishing).to_contain_text("50 / 100")
    # The ETA column counts what is left of this export (40 s from when the server started), the 50 steps left
    # (5 s) and the last export (40 s); the queued job's, its wait and then its own 125 s (start-up 35 s, 10 s of
    # steps, two exports).
    eta = publishing.locator("td").nth(4)
    expect(eta).to_have_text(re.compile(rf"^{DURATION}$"))
    expect(queued.get_by_test_id("job-phase")).to_have_text(
        re.compile(rf"^next in line, starts in about {DURATION}$")
    )
    wait = seconds(queued.get_by_test_id("job-phase").inner_text())
    assert 45 <= seconds(eta.inner_text()) <= 85 and abs(wait - seconds(eta.inner_text())) <= 3, (
        wait,
        eta.inner_text(),
    )
    assert abs(seconds(queued.locator("td").nth(4).inner_text()) - (wait + 125)) <= 3
    second = row_of(page, "queued").filter(has_text="2nd in line")
    expect(second.get_by_test_id("job-phase")).to_have_text(
        re.compile(rf"^2nd in line, starts in about {DURATION}$")
    )
    assert abs(seconds(second.get_by_test_id("job-phase").inner_text()) - (wait + 125)) <= 3
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("#jobs").screenshot(path=str(ARTIFACTS / SCREENSHOT))


def test_the_launch_message_follows_the_job(page: Page, server: Server) -> None:
    from contracts import jobs
    from contracts.job_record import Job, Phase
    from contracts.job_states import JobState

    form = page.locator("#launch")
    form.get_by_label("Steps").fill("100")
    form.get_by_label("Batch size").fill("2")
    form.get_by_role("button", name="Launch training").click()
    message = page.locator("#launch-message")
    expect(message).to_have_text(
        re.compile(rf"^Job [0-9a-f]{{8}} is queued: 3rd in line, starts in about {DURATION}\.$")
    )
    prefix = message.inner_text().split()[1]
    [job_id] = [
        record.id for record in jobs.list_records(server.data_dir / "runs") if record.id.startswith(prefix)
    ]

    def start(record: Job) -> None:  # what a worker writes as it takes the job (contracts/jobs.py)
        record.state = JobState.RUNNING
        record.progress.phase, record.progress.phase_started_at = Phase.STARTING, jobs.utc_now()

    try:
        jobs.update_record(server.data_dir / "runs" / job_id, start)
        expect(message).to_have_text(
            re.compile(rf"^Job {job_id[:8]} is starting \(building the networks\), about {DURATION} left\.$")
        )
    finally:
        jobs.update_record(
            server.data_dir / "runs" / job_id, lambda record: setattr(record, "state", JobState.FAILED)
        )
        expect(message).to_have_text(f"Job {job_id[:8]} failed.")
        jobs.delete_run(server.data_dir / "runs" / job_id)


def test_a_pinned_version_says_it_is_loading_until_it_is_served(page: Page) -> None:
    line, pill = page.locator("#policy-line"), page.get_by_test_id("model-status")
    page.locator('#models-body tr[data-version="1"]').get_by_role("button", name="Serve").click()
    # The server takes the pin at its next look (a minute here): version 2 serves meanwhile, and the page says so.
    expect(line).to_have_text("Pinned version 1: loading it… (version 2 serves meanwhile).")
    expect(pill).to_have_text("model version 2 · loading version 1…")
    expect(page.locator('#models-body tr[data-version="1"] td').first).to_have_text("1 · loading…")
    expect(page.locator('#models-body tr[data-version="2"] td').first).to_have_text("2 · served")
    page.get_by_role("button", name="Back to latest").click()
    expect(line).to_have_text("Serving the newest version that passed the quality gate (version 2).")
    expect(pill).to_have_text("model version 2")


def test_changing_the_result_size_or_the_model_colorizes_again(page: Page) -> None:
    with page.expect_request(lambda request: "/colorize?" in request.url):
        page.get_by_role("button", name="Colorize").click()
    expect(page.locator("#result")).to_have_attribute("data-version", "2")
    with page.expect_request(lambda request: "size=original" in request.url):
        page.get_by_label("Result size").select_option("original")
    with page.expect_request(lambda request: "version=1" in request.url and "size=original" in request.url):
        page.get_by_label("Model version").select_option("1")
    # Version 1 is loaded for this request (it is not the served one): seconds on a busy machine.
    expect(page.locator("#result")).to_have_attribute("data-version", "1", timeout=60_000)


def test_the_label_pattern_compiles_and_checks_labels(page: Page) -> None:
    """The console stays free of 'invalid regular expression' (the page fixture asserts it), and labels are checked."""
    label = page.locator("#label-name")
    for text, valid in [("stable", True), ("a-b_C9", True), ("9lives", False), ("bad label", False)]:
        label.fill(text)
        assert label.evaluate("(input) => input.checkValidity()") is valid, text
