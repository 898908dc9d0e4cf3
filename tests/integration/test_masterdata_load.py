"""``millrace masterdata load`` publishes the sample plant to the compacted topics, keyed by
id, with CloudEvents headers, and refuses an invalid plant without publishing anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import yaml
from aiokafka import TopicPartition
from support.telemetry import TopicReader, end_offsets

from contracts.envelope import parse_headers

PLANT = Path(__file__).resolve().parents[2] / "deploy" / "local" / "plant.yaml"
TOPICS = (
    "masterdata.machines.v1",
    "masterdata.products.v1",
    "masterdata.suppliers.v1",
    "masterdata.customers.v1",
)


def cli(kafka: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MILLRACE_KAFKA_BOOTSTRAP": kafka}
    return subprocess.run(
        [sys.executable, "-m", "millrace.cli", "masterdata", "load", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_load_publishes_every_record_keyed_by_id(kafka_bootstrap: str) -> None:
    first = cli(kafka_bootstrap, str(PLANT), "--ensure-topics")
    assert first.returncode == 0, first.stderr
    start: dict[TopicPartition, int] = {}
    for topic in TOPICS:
        start |= await end_offsets(kafka_bootstrap, topic)
    done = cli(kafka_bootstrap, str(PLANT))
    assert done.returncode == 0, done.stderr
    assert "10 machines, 5 products, 3 suppliers, 3 customers" in done.stdout
    async with TopicReader(kafka_bootstrap, start) as reader:
        await reader.poll_until(lambda records: len(records) >= 21, 30)
    by_topic: dict[str, dict[str, str]] = {t: {} for t in TOPICS}
    for record in reader.records:
        envelope = parse_headers(list(record.headers))
        data = orjson.loads(record.value)
        key = record.key.decode()
        assert envelope.subject == key
        assert envelope.type == f"io.millrace.{record.topic}"
        by_topic[record.topic][key] = envelope.id
        ids = ("machine_id", "sku", "supplier_id", "customer_id")
        assert key in tuple(data.get(name) for name in ids)
    assert len(by_topic["masterdata.machines.v1"]) == 10
    assert len(by_topic["masterdata.products.v1"]) == 5
    assert len(by_topic["masterdata.suppliers.v1"]) == 3
    assert set(by_topic["masterdata.customers.v1"]) == {"acme", "globex", "initech"}


def test_invalid_plant_is_refused(kafka_bootstrap: str, tmp_path: Path) -> None:
    raw = yaml.safe_load(PLANT.read_text())
    raw["products"][0]["routing"][0]["capability"] = "levitation"
    bad = tmp_path / "plant.yaml"
    bad.write_text(yaml.safe_dump(raw))
    done = cli(kafka_bootstrap, str(bad))
    assert done.returncode == 2
    assert "no machine offers levitation" in done.stdout
