"""What the API, the training worker and the CLI share: the contracts between the parts, one file each.

- `settings`: the one settings class, read from S2C_* environment variables by every process;
- `jobs`: the job record `runs/<id>/job.json` and every state transition a job goes through;
- `queue`: the Celery client (broker choice, enqueue, broker checks, redacted URLs);
- `datasets`: dataset names and listing.

Arrows run downward only: `cli` imports everything; `app` and `worker` import this package and `model`, never
each other; this package imports only `model`. Importing it loads neither TensorFlow nor FastAPI.
"""
