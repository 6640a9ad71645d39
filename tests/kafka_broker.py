"""A throw-away Apache Kafka 4 broker for the tests: KRaft, one combined broker + controller,
assembled from Maven Central jars (resolved once with `mvn dependency:copy-dependencies` into
.services/kafka-<VERSION>/, Maven's own ~/.m2 cache below it), on free 127.0.0.1 ports, with
a temp log dir. Stopped by PID (SIGTERM, then SIGKILL after a minute).

`KAFKA_BOOTSTRAP_SERVERS=host:port` points the tests at an existing broker instead (nothing is
started or stopped; topics are still made per test with unique names).

    python -m tests.kafka_broker fetch     # resolve the jars now (make test does it lazily)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.processes import alive, free_port
from tests.processes import stop as stop_process

VERSION = "4.4.0"
"""Apache Kafka (kafka_2.13) of the tests and of docker-compose.yml (a test checks they agree)."""
LOG4J_VERSION = "2.25.5"
HEAP = "-Xmx512m"
SERVER_SETTINGS = {
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    "auto.create.topics.enable": "false",
}
"""Single-broker settings, here and in docker-compose.yml (a test checks they agree)."""

ROOT = Path(__file__).resolve().parents[1]
LIBS = ROOT / ".services" / f"kafka-{VERSION}"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.synchub</groupId>
  <artifactId>kafka-broker-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
      <scope>runtime</scope>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J = """status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
"""


def fetch() -> Path:
    """The broker's jars, resolved from Maven Central on first use (a lock keeps two test
    workers from resolving at once)."""
    done = LIBS / "COMPLETE"
    if done.exists():
        return LIBS
    LIBS.parent.mkdir(parents=True, exist_ok=True)
    import fcntl

    with open(LIBS.parent / f"kafka-{VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return LIBS
        if shutil.which("mvn") is None:
            raise RuntimeError("the Kafka test broker needs Maven (mvn) and Java 17+ on PATH")
        work = Path(tempfile.mkdtemp(prefix="synchub-kafka-pom-"))
        (work / "pom.xml").write_text(_POM.format(kafka=VERSION, log4j=LOG4J_VERSION))
        shutil.rmtree(LIBS, ignore_errors=True)
        result = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(work / "pom.xml"), "dependency:copy-dependencies",
             f"-DoutputDirectory={LIBS}", "-DincludeScope=runtime"],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"could not resolve kafka_2.13 {VERSION} from Maven Central:\n"
                + (result.stdout + result.stderr)[-3000:]
            )
        done.write_text(VERSION + "\n")
    return LIBS


class Broker:
    """A running broker: its bootstrap address, and (when we started it) its dir and PID."""

    def __init__(self, bootstrap: str, root: Path | None = None, pid: int | None = None) -> None:
        self.bootstrap = bootstrap
        self.root = root
        self.pid = pid
        self._command: list[str] = []

    def topic_prefix(self) -> str:
        """A prefix no other test uses on this broker (topics are never reused)."""
        return f"t{uuid.uuid4().hex[:10]}."

    def stop(self, *, remove: bool = True) -> None:
        """SIGTERM (a clean shutdown), SIGKILL after a minute; remove its dir (`remove`)."""
        if self.pid is None:
            return
        stop_process(self.pid, 60)
        self.pid = None
        if remove and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    def restart(
        self,
        *,
        kill: bool = False,
        down: float = 0.0,
        during: Callable[[], object] | None = None,
    ) -> None:
        """Stop (SIGKILL when `kill`: a crash), call `during`, stay down `down` seconds, and
        start again on the same ports and log dir."""
        assert self.root is not None, "only a broker this harness started can be restarted"
        if kill and self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            while self.pid is not None and alive(self.pid):
                time.sleep(0.05)
            self.pid = None
        self.stop(remove=False)
        if during is not None:
            during()
        time.sleep(down)
        self.pid = _launch(self.root, self._command, self.bootstrap)


def _ready(bootstrap: str) -> bool:
    """The port accepts connections and a Metadata request lists the broker."""
    from confluent_kafka.admin import AdminClient

    host, port = bootstrap.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
        metadata = admin.list_topics(timeout=5)
    except Exception:
        return False
    return bool(metadata.brokers)


def _launch(root: Path, command: list[str], bootstrap: str) -> int:
    log = open(root / "logs" / "stdout.log", "ab")  # noqa: SIM115 - the child's, closed below
    proc = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    log.close()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (root / "logs" / "server.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the Kafka broker exited while starting (logs in {root}):\n{tail}")
        if _ready(bootstrap):
            return proc.pid
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"the Kafka broker was not ready after 120 s (logs in {root}/logs)")


def start(*, own: bool = False) -> Broker:
    """The broker for this test session: KAFKA_BOOTSTRAP_SERVERS's, or a new one (always a
    new one when `own`: a test that restarts its broker)."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given and not own:
        return Broker(given)
    libs = fetch()
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("the Kafka test broker needs Java 17+ (java) on PATH")
    root = Path(tempfile.mkdtemp(prefix="synchub-kafka-"))
    (root / "logs").mkdir()
    port, controller = free_port(), free_port()
    while controller == port:
        controller = free_port()
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(root / "data"),
        **SERVER_SETTINGS,
    }
    (root / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    (root / "log4j2.properties").write_text(_LOG4J)
    classpath = f"{libs}/*"
    jvm = [
        f"-Dlog4j2.configurationFile={root / 'log4j2.properties'}",
        "-Dlog4j2.shutdownHookEnabled=false",
        f"-Dkafka.logs.dir={root / 'logs'}",
    ]
    cluster_id = subprocess.run(
        [java, "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.strip()  # fmt: skip
    subprocess.run(
        [java, *jvm, "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id,
         "-c", str(root / "server.properties")],
        capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    command = [java, HEAP, *jvm, "-cp", classpath, "kafka.Kafka", str(root / "server.properties")]
    bootstrap = f"127.0.0.1:{port}"
    broker = Broker(bootstrap, root, _launch(root, command, bootstrap))
    broker._command = command
    return broker


if __name__ == "__main__":
    if sys.argv[1:] == ["fetch"]:
        print(fetch())
    elif sys.argv[1:] == ["try"]:
        t = time.monotonic()
        b = start(own=True)
        print(b.bootstrap, b.pid, f"{time.monotonic() - t:.1f}s")
        b.stop()
    else:
        sys.exit(__doc__)
