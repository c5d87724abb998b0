"""A bare Celery app on kombu's filesystem transport: the server-less broker candidate that
bench/latency.py measures next to Redis."""

import os
from pathlib import Path

from celery import Celery

FOLDER = Path(
    os.environ.get("FS_BROKER_DIR", Path(__file__).resolve().parent.parent / "var" / "fs-broker")
)
for sub in ("queue", "processed", "results", "control"):
    (FOLDER / sub).mkdir(parents=True, exist_ok=True)

app = Celery("fsbench", broker="filesystem://", backend=f"file://{FOLDER / 'results'}")
app.conf.broker_transport_options = {
    "data_folder_in": str(FOLDER / "queue"),
    "data_folder_out": str(FOLDER / "queue"),
    "processed_folder": str(FOLDER / "processed"),
    # kombu's exchange tables; its default is ./control, in the checkout.
    "control_folder": str(FOLDER / "control"),
    "store_processed": False,
    "polling_interval": 0.1,
}
app.conf.broker_connection_retry_on_startup = True


@app.task(name="fsbench.ping")
def ping(sent_at: float) -> float:
    return sent_at
