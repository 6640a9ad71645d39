"""A throw-away Apicurio Registry 3 for the tests: its Confluent-compatible API
(`/apis/ccompat/v7`) is what `kafka.schema_registry.url` points at.

Apicurio publishes the registry ready to run on Maven Central
(`io.apicurio:apicurio-registry-app:<VERSION>:tar.gz:all`, the Quarkus app its container
image copies); Maven fetches and unpacks it once into .services/apicurio-<VERSION> (a lock
keeps two test workers from doing it at once). It runs on free 127.0.0.1 ports with its
default in-memory storage, and is stopped by PID (SIGTERM, then SIGKILL). It needs Java 21+:
the first of $APICURIO_JAVA_HOME, $JAVA_HOME, /usr/lib/jvm/* that is.

`SCHEMA_REGISTRY_URL` points the tests at an existing Confluent-compatible registry instead.

    python -m tests.schema_registry fetch     # fetch it now (the tests do it lazily)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.processes import free_port
from tests.processes import stop as stop_process

VERSION = "3.3.3"
"""Apicurio Registry of the tests and of docker-compose.yml (a test checks they agree)."""
MIN_JAVA = 21
ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / ".services" / f"apicurio-{VERSION}"
JAR = HOME / "target" / "quarkus-app" / "quarkus-run.jar"
JVM_ARGS = ("-XX:TieredStopAtLevel=1", "-Xmx384m")
"""C1 only: ready in ≈ 5 s instead of ≈ 9 s on two busy cores (measured)."""

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.synchub</groupId>
  <artifactId>apicurio-registry-dist</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>3.8.1</version>
        <executions>
          <execution>
            <id>unpack-registry</id>
            <phase>package</phase>
            <goals><goal>unpack</goal></goals>
            <configuration>
              <artifactItems>
                <artifactItem>
                  <groupId>io.apicurio</groupId>
                  <artifactId>apicurio-registry-app</artifactId>
                  <version>{version}</version>
                  <type>tar.gz</type>
                  <classifier>all</classifier>
                  <outputDirectory>${{project.build.directory}}/quarkus-app</outputDirectory>
                </artifactItem>
              </artifactItems>
            </configuration>
          </execution>
        </executions>
      </plugin>
    </plugins>
  </build>
</project>
"""


def fetch() -> Path:
    """The registry's app, fetched with Maven on first use."""
    done = HOME / "COMPLETE"
    if done.exists() and JAR.exists():
        return HOME
    HOME.mkdir(parents=True, exist_ok=True)
    with open(HOME.parent / f"apicurio-{VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists() and JAR.exists():
            return HOME
        if shutil.which("mvn") is None:
            raise RuntimeError("the test schema registry needs Maven (mvn) and Java 21+")
        shutil.rmtree(HOME / "target", ignore_errors=True)
        (HOME / "pom.xml").write_text(_POM.format(version=VERSION))
        result = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(HOME / "pom.xml"), "package"],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(
                f"could not fetch apicurio-registry-app {VERSION} from Maven Central:\n"
                + (result.stdout + result.stderr)[-3000:]
            )
        done.write_text(VERSION + "\n")
    return HOME


def java() -> str:
    """A `java` of version MIN_JAVA or later."""
    homes = [os.environ.get("APICURIO_JAVA_HOME"), os.environ.get("JAVA_HOME")]
    homes += sorted(map(str, Path("/usr/lib/jvm").glob("*")), reverse=True)
    for home in filter(None, homes):
        release = Path(home) / "release"
        if (Path(home) / "bin" / "java").exists() and release.exists():
            for line in release.read_text().splitlines():
                if line.startswith("JAVA_VERSION="):
                    major = line.split("=", 1)[1].strip('"').split(".")[0]
                    if major.isdigit() and int(major) >= MIN_JAVA:
                        return str(Path(home) / "bin" / "java")
    raise RuntimeError(f"the test schema registry needs Java {MIN_JAVA}+ (APICURIO_JAVA_HOME)")


class Registry:
    """A running registry: its Confluent-compatible URL, and (when we started it) its PID."""

    def __init__(self, url: str, pid: int | None = None, log: Path | None = None) -> None:
        self.url = url
        self.pid = pid
        self.log = log

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 15 s."""
        if self.pid is None:
            return
        stop_process(self.pid, 15)
        self.pid = None


def start(timeout: float = 180.0) -> Registry:
    """The registry `SCHEMA_REGISTRY_URL` names, or a new one, ready (/health/ready UP)."""
    if url := os.environ.get("SCHEMA_REGISTRY_URL"):
        return Registry(url)
    home = fetch()
    port, management = free_port(), free_port()
    log = HOME / "logs" / f"registry-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [
        java(), *JVM_ARGS,
        "-Djava.util.logging.manager=org.jboss.logmanager.LogManager",
        "-Dquarkus.http.host=127.0.0.1", f"-Dquarkus.http.port={port}",
        "-Dquarkus.management.host=127.0.0.1", f"-Dquarkus.management.port={management}",
        "-jar", str(JAR),
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=home, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    registry = Registry(f"http://127.0.0.1:{port}/apis/ccompat/v7", process.pid, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the schema registry exited ({process.returncode}):\n{_tail(log)}")
        with contextlib.suppress(OSError):
            ready = f"http://127.0.0.1:{management}/health/ready"
            with urllib.request.urlopen(ready, timeout=2) as r:
                if r.status == 200:
                    return registry
        time.sleep(0.25)
    registry.stop()
    raise RuntimeError(f"the schema registry was not ready in {timeout:.0f} s:\n{_tail(log)}")


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


if __name__ == "__main__" and sys.argv[1:] == ["fetch"]:
    print(fetch())
