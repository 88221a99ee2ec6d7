"""What the benchmarks share: the real stack in subprocesses, signed webhooks, and the numbers.

`Stack` starts, in this order: the database (a fresh SQLite file, or a dedicated PostgreSQL
database created here and dropped afterwards), Redis (the embedded one, as `make run` does when
REDIS_URL is unset, or REDIS_URL), the loopback fake of Twilio (`python -m tests.fake_twilio`),
migrate + the demo brokerage (offices opened around the clock so calls ring), the worker
(`manage.py qcluster`) and one daphne. Everything it started is stopped when the `with` block
ends, however it ends; a watchdog interrupts a run that outlives its time budget.
"""

from __future__ import annotations

import _thread
import concurrent.futures
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from twilio.request_validator import RequestValidator

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PYTHON = sys.executable

BENCH_DB_NAME = os.environ.get("BENCH_DB_NAME", "textback_bench")
ACCOUNT_SID = "AC" + "b3" * 16
AUTH_TOKEN = "bench-" + uuid.uuid4().hex
SECRET_KEY = "bench-" + uuid.uuid4().hex + uuid.uuid4().hex

# The demo brokerage's lines (demo/brokerage.json): callers are spread over all three.
LINES = ["+15555550100", "+15555550110", "+15555550200"]
# Its agents' own phones: each new lead's agent gets an SMS alert there, besides the caller's text.
DEMO_AGENT_PHONES = {
    agent["phone"] for office in json.loads((REPO / "demo" / "brokerage.json").read_text())["offices"] for agent in office["agents"]
}

OPEN_AROUND_THE_CLOCK = (
    "import datetime as dt; from routing.models import Office; "
    "Office.objects.update(business_days=list(range(7)), opens_at=dt.time(0, 0), closes_at=dt.time(23, 59, 59))"
)


def caller_number(i: int) -> str:
    """A distinct, valid-looking US number per caller (not one of the demo agents' numbers)."""
    return f"+1555{7000000 + i:07d}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was actually observed."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary(values_ms: list[float]) -> dict:
    return {
        "n": len(values_ms),
        "min": round(min(values_ms), 2) if values_ms else None,
        "p50": round(percentile(values_ms, 50), 2),
        "p90": round(percentile(values_ms, 90), 2),
        "p99": round(percentile(values_ms, 99), 2),
        "max": round(max(values_ms), 2) if values_ms else None,
        "mean": round(sum(values_ms) / len(values_ms), 2) if values_ms else None,
    }


def write_result(name: str, db_label: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{db_label}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def code_version() -> str:
    """The commit measured, with "+dirty" when tracked files had uncommitted changes."""
    if os.environ.get("BENCH_CODE_VERSION"):
        return os.environ["BENCH_CODE_VERSION"]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if commit.returncode != 0:
        return "unknown"
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine_info() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpus": os.cpu_count(), "loadavg_at_start": load, "python": sys.version.split()[0], "code": code_version()}


# --- signed webhooks -------------------------------------------------------------------------


class Webhooks:
    """Builds webhook requests exactly as Twilio sends them: form-encoded, signed over the public URL."""

    def __init__(self, base_url: str, token: str = AUTH_TOKEN):
        self.base_url, self.validator = base_url, RequestValidator(token)

    def signed(self, path: str, params: dict) -> tuple[str, bytes, dict]:
        url = self.base_url + path
        headers = {
            "X-Twilio-Signature": self.validator.compute_signature(url, params),
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
        }
        return url, urlencode(params).encode(), headers

    @staticmethod
    def _call_params(call_sid: str, caller: str, line: str) -> dict:
        return {
            "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": call_sid, "CallStatus": "ringing",
            "Called": line, "CalledCity": "", "CalledCountry": "US", "CalledState": "NY", "CalledZip": "",
            "Caller": caller, "CallerCity": "", "CallerCountry": "US", "CallerState": "NY", "CallerZip": "",
            "Direction": "inbound", "From": caller, "FromCity": "", "FromCountry": "US", "FromState": "NY",
            "FromZip": "", "To": line, "ToCity": "", "ToCountry": "US", "ToState": "NY", "ToZip": "",
        }

    def incoming(self, *, call_sid: str, caller: str, line: str) -> tuple[str, bytes, dict]:
        return self.signed("/twilio/voice/incoming/", self._call_params(call_sid, caller, line))

    def dial_status(self, *, call_sid: str, caller: str, line: str, status: str = "no-answer") -> tuple[str, bytes, dict]:
        params = {
            **self._call_params(call_sid, caller, line), "CallStatus": "in-progress",
            "DialCallStatus": status, "DialCallSid": "CA" + uuid.uuid4().hex, "DialCallDuration": "0", "DialBridged": "false",
        }
        return self.signed("/twilio/voice/dial-status/", params)

    def sms(self, *, message_sid: str, caller: str, line: str, body: str) -> tuple[str, bytes, dict]:
        """An inbound SMS as Twilio posts it (no Messaging Service)."""
        return self.signed("/twilio/sms/incoming/", {
            "ToCountry": "US", "ToState": "NY", "SmsMessageSid": message_sid, "NumMedia": "0", "ToCity": "",
            "FromZip": "", "SmsSid": message_sid, "FromState": "NY", "SmsStatus": "received", "FromCity": "",
            "Body": body, "FromCountry": "US", "To": line, "ToZip": "", "NumSegments": "1", "MessageSid": message_sid,
            "AccountSid": ACCOUNT_SID, "From": caller, "ApiVersion": "2010-04-01",
        })

    def floor(self, *, call_sid: str, caller: str, line: str) -> tuple[str, bytes, dict]:
        """A request shaped like dial-status, for the trivial view (same size, same headers)."""
        params = {**self._call_params(call_sid, caller, line), "DialCallStatus": "no-answer", "DialCallSid": "CA" + uuid.uuid4().hex}
        return self.signed("/bench/floor/", params)


def new_call_sid() -> str:
    return "CA" + uuid.uuid4().hex


def closed_loops(count: int, concurrency: int, work) -> list:
    """`work(i, web, fake)` for i in 0..count-1, from `concurrency` closed loops: each loop takes
    the next index once its previous one is done (latency, not saturation). Each loop keeps its
    own HTTP sessions to the app (`web`) and to the fake (`fake`). Results in finishing order."""
    results: list = []
    lock = threading.Lock()
    next_index = iter(range(count))

    def loop() -> None:
        with requests.Session() as web, requests.Session() as fake:
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                result = work(i, web, fake)
                with lock:
                    results.append(result)

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(loop) for _ in range(concurrency)]:
            future.result()
    return results


# --- the stack -------------------------------------------------------------------------------


def run_benchmark(main) -> None:
    """Exit 0 when every check passed and the goal was met, 1 when not, 2 when the stack could not start."""
    try:
        sys.exit(main())
    except StackError as exc:
        print(f"benchmark could not run: {exc}", file=sys.stderr)
        sys.exit(2)


class StackError(RuntimeError):
    pass


class Stack:
    """The product's processes plus the fake, started for one benchmark run."""

    def __init__(
        self, *, name: str, asgi: str = "textback_site.asgi:application", callbacks: str = "auto",
        max_seconds: float = 900, keep: bool = False,
    ):
        self.name, self.asgi, self.callbacks, self.keep = name, asgi, callbacks, keep
        self.max_seconds = max_seconds
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self._logs: list = []
        self._pg_admin_url: str | None = None
        self._watchdog: threading.Timer | None = None
        self.failed = False

        url = os.environ.get("DATABASE_URL", "")
        if url and not url.startswith(("postgres://", "postgresql://", "sqlite:")):
            raise StackError(f"DATABASE_URL must be sqlite:/// or postgres://, not {url!r}")
        self.tmp = Path(tempfile.mkdtemp(prefix=f"textback-{name}-"))
        if not url.startswith(("postgres://", "postgresql://")):
            # Always a fresh file: a storm must not land in someone's working database.
            self.db_label = "sqlite"
            self.database_url = f"sqlite:///{self.tmp / 'bench.sqlite3'}"
        else:
            self.db_label = "postgres"
            parts = urlsplit(url)
            self.database_url = urlunsplit(parts._replace(path=f"/{BENCH_DB_NAME}"))
            admin_db = parts.path.lstrip("/") or "postgres"
            if admin_db == BENCH_DB_NAME:
                admin_db = "postgres"
            self._pg_admin_url = urlunsplit(parts._replace(path=f"/{admin_db}", scheme="postgresql"))
        self.redis_url = os.environ.get("REDIS_URL", "")
        self.redis_label = "redis" if self.redis_url else "embedded-redis"
        self.port = free_port()
        self.fake_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.fake_url = f"http://127.0.0.1:{self.fake_port}"
        self.env = self._env()

    # --- context ----------------------------------------------------------------------------

    def __enter__(self) -> "Stack":
        self._arm_watchdog()
        try:
            self.start()
        except BaseException:
            self.failed = True
            self.stop()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.failed = True
        self.stop()

    def _arm_watchdog(self) -> None:
        """Bound the whole run: past max_seconds, interrupt the main thread so `finally` cleans up."""

        def expire():
            print(f"\n!! {self.name}: time budget of {self.max_seconds:.0f} s exceeded; stopping", file=sys.stderr, flush=True)
            _thread.interrupt_main()

        self._watchdog = threading.Timer(self.max_seconds, expire)
        self._watchdog.daemon = True
        self._watchdog.start()
        # SIGTERM (e.g. a CI timeout) takes the same way out as Ctrl-C.
        signal.signal(signal.SIGTERM, lambda *_: _thread.interrupt_main())

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in {"SMS_BACKEND", "DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL"}}
        env.update({
            "DATABASE_URL": self.database_url,
            "TEXTBACK_VAR_DIR": str(self.tmp),
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_API_BASE_URL": self.fake_url,
            "PUBLIC_BASE_URL": self.base_url,
            "SECRET_KEY": SECRET_KEY,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "DEBUG": "false",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
        })
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url  # else settings derive the embedded socket under TEXTBACK_VAR_DIR
        return env

    # --- start ------------------------------------------------------------------------------

    def log(self, text: str) -> None:
        print(f"[{self.name}] {text}", flush=True)

    def start(self) -> None:
        self.log(f"work dir {self.tmp}; db={self.db_label} redis={self.redis_label}")
        self._database_create()
        self._redis_start()
        self._spawn("fake-twilio", [
            PYTHON, "-m", "tests.fake_twilio", "--port", str(self.fake_port), "--callbacks", self.callbacks,
            "--auth-token", AUTH_TOKEN, "--callback-threads", "4",
        ])
        self._wait_http(self.fake_url + "/_fake/health", "fake twilio", 30)
        self.manage("migrate", "--noinput", "-v", "0", timeout=300)
        self.manage("import_brokerage", "demo/brokerage.json", timeout=120)
        self.manage("shell", "-c", OPEN_AROUND_THE_CLOCK, timeout=120)
        self._spawn("qcluster", [PYTHON, "manage.py", "qcluster"])
        self._spawn("daphne", [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), self.asgi])
        self._wait_http(self.base_url + "/twilio/voice/incoming/", "daphne", 60)

    def _database_create(self) -> None:
        if not self._pg_admin_url:
            return
        import psycopg

        with psycopg.connect(self._pg_admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB_NAME}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{BENCH_DB_NAME}"')
        self.log(f"created PostgreSQL database {BENCH_DB_NAME}")

    def _database_drop(self) -> None:
        if not self._pg_admin_url:
            return
        import psycopg

        try:
            with psycopg.connect(self._pg_admin_url, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB_NAME}" WITH (FORCE)')
            self.log(f"dropped PostgreSQL database {BENCH_DB_NAME}")
        except Exception as exc:  # cleanup must go on to the other resources
            self.log(f"could not drop {BENCH_DB_NAME}: {exc}")

    def _redis_start(self) -> None:
        if self.redis_url:
            self._redis_clear()
            return
        from textback_site.embedded_redis import embedded_redis_start

        process = embedded_redis_start(self.tmp / "redis.sock")
        if process is None:
            raise StackError(f"something already answers on {self.tmp / 'redis.sock'}")
        self.procs.append(("embedded-redis", process))

    def _redis_clear(self) -> None:
        """Drop only what this product keeps in Redis (queue, stats, channel layer), nothing else."""
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
        try:
            for pattern in ("django_q:textback:*", "textback:*"):
                keys = list(client.scan_iter(match=pattern, count=500))
                if keys:
                    client.delete(*keys)
        finally:
            client.close()

    def _spawn(self, label: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.tmp / f"{label}.log", "ab")
        self._logs.append(log)
        process = subprocess.Popen(
            argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopping it stops its children too
        )
        self.procs.append((label, process))
        return process

    def manage(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout,
        )
        if result.returncode != 0:
            raise StackError(f"manage.py {args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def _wait_http(self, url: str, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                requests.get(url, timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise StackError(f"{what} did not answer on {url} within {timeout:.0f} s")

    def _check_alive(self) -> None:
        for label, process in self.procs:
            if process.poll() is not None:
                raise StackError(f"{label} exited with {process.returncode}; see {self.tmp / (label + '.log')}")

    def check_alive(self) -> None:
        self._check_alive()

    # --- CPU accounting -----------------------------------------------------------------------

    def cpu_snapshot(self) -> dict:
        """CPU seconds (user + system) used so far, per process: those in the process groups this
        harness started, the postgres and redis-server processes (the servers we talk to; shared
        with anyone else using them), this client, and the whole machine's busy vs. capacity."""
        groups = {process.pid: label for label, process in self.procs}
        tick = os.sysconf("SC_CLK_TCK")
        per_pid: dict[int, tuple[str, float]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            pid, pgrp, utime, stime = int(entry.name), int(fields[2]), int(fields[11]), int(fields[12])
            label = groups.get(pgrp)
            if label is None and comm.startswith("postgres") and self.db_label == "postgres":
                label = "postgres"
            elif label is None and comm.startswith("redis-server") and self.redis_url:
                label = "redis"
            elif label is None and pid == os.getpid():
                label = "client"
            if label:
                per_pid[pid] = (label, (utime + stime) / tick)
        with open("/proc/stat") as f:
            cpu = [int(x) for x in f.readline().split()[1:]]
        idle = cpu[3] + cpu[4]  # idle + iowait
        return {"per_pid": per_pid, "machine_busy": (sum(cpu[:8]) - idle) / tick, "machine_capacity": sum(cpu[:8]) / tick}

    @staticmethod
    def cpu_delta(before: dict, after: dict) -> dict[str, float]:
        """CPU seconds per label between two snapshots (a process that exited in between is not counted)."""
        totals: dict[str, float] = {}
        for pid, (label, seconds) in after["per_pid"].items():
            previous = before["per_pid"].get(pid)
            used = seconds - (previous[1] if previous and previous[0] == label else 0.0)
            totals[label] = totals.get(label, 0.0) + used
        totals = {k: round(v, 2) for k, v in sorted(totals.items())}
        # Whole machine, all cores: other users' load shows here too.
        totals["machine_busy"] = round(after["machine_busy"] - before["machine_busy"], 2)
        totals["machine_capacity"] = round(after["machine_capacity"] - before["machine_capacity"], 2)
        return totals

    # --- profiling ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def profile(self, phase: str):
        """With BENCH_PY_SPY=/path/to/py-spy, sample daphne and the worker (all its processes) during
        the block; collapsed stacks go to bench/results/profile/<run>-<db>-<phase>-<process>.txt.
        BENCH_PY_SPY_MODE=gil (default) samples the thread holding the GIL (CPU); =all, every
        non-idle thread (where requests wait)."""
        py_spy = os.environ.get("BENCH_PY_SPY")
        if not py_spy:
            yield
            return
        out_dir = RESULTS / "profile"
        out_dir.mkdir(parents=True, exist_ok=True)
        samplers = []
        for label, process in self.procs:
            if label not in {"daphne", "qcluster"}:
                continue
            out = out_dir / f"{self.name}-{self.db_label}-{phase}-{label}.txt"
            argv = [py_spy, "record", "--pid", str(process.pid), "--format", "raw", "--rate", "200", "--nonblocking", "-o", str(out)]
            if label == "qcluster":
                argv.append("--subprocesses")
            if os.environ.get("BENCH_PY_SPY_MODE", "gil") == "gil":
                argv.append("--gil")  # only the thread holding the GIL: where the CPU goes
            samplers.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        try:
            yield
        finally:
            for sampler in samplers:
                sampler.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
            for sampler in samplers:
                try:
                    sampler.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    sampler.kill()
            if samplers:
                self.log(f"profiles written to {out_dir}")

    # --- the fake's control API -------------------------------------------------------------

    def fake(self, method: str, path: str, timeout: float = 30, **kwargs):
        response = requests.request(method, self.fake_url + path, timeout=timeout, **kwargs)
        if response.status_code >= 500:
            response.raise_for_status()
        return response.json()

    def warm_up(self, count: int = 5, timeout: float = 60) -> None:
        """A few missed calls (not measured) until a text comes out: the worker is up and every
        process has imported, connected and built its Twilio client."""
        hooks = Webhooks(self.base_url)
        session = requests.Session()
        deadline = time.monotonic() + timeout
        for i in range(count):
            caller, line, sid = f"+1555{6000000 + i:07d}", LINES[i % len(LINES)], new_call_sid()
            for url, body, headers in (hooks.incoming(call_sid=sid, caller=caller, line=line),
                                        hooks.dial_status(call_sid=sid, caller=caller, line=line)):
                response = session.post(url, data=body, headers=headers, timeout=15)
                if response.status_code != 200:
                    raise StackError(f"warm-up webhook answered {response.status_code}: {response.text[:300]}")
            while True:
                self._check_alive()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StackError(f"warm-up text to {caller} never reached the fake; see {self.tmp}/qcluster.log")
                if self.fake("GET", "/_fake/wait", params={"to": caller, "timeout": min(remaining, 5)}).get("message"):
                    break
        session.close()
        self.fake_settle()
        self.fake("POST", "/_fake/reset")

    def fake_settle(self, timeout: float = 30) -> dict:
        """Wait until the fake has no status callbacks still to post."""
        deadline = time.monotonic() + timeout
        stats = self.fake("GET", "/_fake/stats")
        while stats["callbacks_pending"] and time.monotonic() < deadline:
            time.sleep(0.1)
            stats = self.fake("GET", "/_fake/stats")
        return stats

    def db_query(self, script: str, timeout: float = 120) -> dict:
        """Run a read-only ORM script in a fresh process; it prints one JSON document."""
        out = self.manage("shell", "-c", script, timeout=timeout)
        return json.loads(out.strip().splitlines()[-1])

    # --- stop -------------------------------------------------------------------------------

    def stop(self) -> None:
        if self._watchdog:
            self._watchdog.cancel()
        for label, process in reversed(self.procs):
            self._terminate(label, process)
        self.procs.clear()
        for log in self._logs:
            log.close()
        if self.redis_url:
            try:
                self._redis_clear()
            except Exception as exc:
                self.log(f"could not clean Redis: {exc}")
        self._database_drop()
        if self.failed or self.keep:
            self.log(f"logs kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _terminate(self, label: str, process: subprocess.Popen) -> None:
        if process.poll() is not None:
            return
        process.terminate()  # the leader only: qcluster stops its own workers when asked nicely
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.log(f"{label} ignored SIGTERM for 15 s; killing it")
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the group this harness created for it
            except ProcessLookupError:
                pass
            process.wait(timeout=5)
        # Children of the group that outlived their parent (qcluster's workers, say).
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
