"""The Kafka broker's jars, resolved by Maven from Maven Central into a user cache.

``deploy/local/kafka/pom.xml`` is the single pin for the Kafka version. A marker file is
written only after a complete copy, so an interrupted download is redone, never half-used.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from millrace.infra.paths import DEPLOY_LOCAL, cache_dir
from millrace.infra.process import InfraError

KAFKA_ASSETS = DEPLOY_LOCAL / "kafka"
POM = KAFKA_ASSETS / "pom.xml"
MARKER = ".complete"

_VERSION = re.compile(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>")
_MAVEN_EVENT = re.compile(r"^\[(?:INFO|WARNING|ERROR)\] (Downloaded from|Copying|BUILD|ERROR)")


def kafka_version(pom: Path = POM) -> str:
    """The Kafka version pinned in the pom (the one place it is written down)."""
    match = _VERSION.search(pom.read_text())
    if not match:
        raise InfraError(f"no <kafka.version> in {pom}")
    return match.group(1)


def libs_dir(pom: Path = POM) -> Path:
    return cache_dir() / f"kafka-{kafka_version(pom)}" / "libs"


def _pom_digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def cached(pom: Path = POM) -> bool:
    """True when the cache holds a complete copy made from this exact pom."""
    marker = libs_dir(pom) / MARKER
    return marker.is_file() and marker.read_text().strip() == _pom_digest(pom)


def ensure_jars(pom: Path = POM, out: TextIO = sys.stderr) -> Path:
    """Return the directory of broker jars, running Maven once if the cache lacks them.

    Maven's download and copy lines are echoed (a first run fetches ~45 jars); the rest of
    its output is kept only for the error message.
    """
    target = libs_dir(pom)
    if cached(pom):
        return target
    if shutil.which("mvn") is None:
        raise InfraError("Maven (mvn) is needed once to fetch the Kafka jars; install it")
    target.parent.mkdir(parents=True, exist_ok=True)
    # A private staging dir: two test sessions may fill an empty cache at the same time.
    staging = Path(tempfile.mkdtemp(prefix="libs.partial-", dir=target.parent))
    print(f"fetching Kafka {kafka_version(pom)} jars with Maven into {target}", file=out)
    argv = [
        "mvn", "-B", "-Dstyle.color=never", "-f", str(pom),
        "dependency:copy-dependencies", "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]  # fmt: skip
    transcript = _run_maven(argv, out)
    jars = list(staging.glob("*.jar"))
    if not jars:
        raise InfraError("Maven copied no jars:\n" + "\n".join(transcript[-40:]))
    (staging / MARKER).write_text(_pom_digest(pom) + "\n")
    if cached(pom):
        shutil.rmtree(staging, ignore_errors=True)
        return target
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    print(f"Kafka jars ready ({len(jars)} jars)", file=out)
    return target


def _run_maven(argv: list[str], out: TextIO) -> list[str]:
    transcript: list[str] = []
    copied = 0
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip()
            transcript.append(line)
            event = _MAVEN_EVENT.match(line)
            if not event:
                continue
            if event.group(1) == "Copying":
                copied += 1
                if out.isatty():
                    print(f"\r  copied {copied} jars", end="", file=out, flush=True)
            elif event.group(1) == "Downloaded from":
                print(f"  {line.split('] ', 1)[1]}", file=out, flush=True)
    if copied and out.isatty():
        print(file=out)
    if proc.returncode != 0:
        tail = "\n".join(transcript[-40:])
        raise InfraError(f"Maven failed (exit {proc.returncode}):\n{tail}")
    return transcript
