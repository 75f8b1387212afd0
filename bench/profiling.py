"""--profile: where a server's time goes, from perf and py-spy, as buckets.

While a load run hits the server, ``perf record -g`` (hardware cycles where
the machine has them, else the cpu-clock software event) samples it, then
``py-spy record --native`` does the same from Python's side during a second
run (py-spy pauses the process to sample, so the two never overlap). Both
artifacts are kept (``perf report`` text, speedscope JSON: open it at
https://www.speedscope.app) and summarised into named buckets for the report:
kernel (syscalls and TCP), the cffi boundary, fastnet's C engine, C and
Python parsing/framing, the Python handler, the rest of the interpreter.
"""
from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Callable, Optional

from .harness import CLIENT_CPU, RunningServer, pinned

PERF_LINE = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.+?)\s*$")
PARSING = ("framer", "resp", "varint", "frame", "decode", "encode", "codec")


@cache
def perf_event() -> Optional[str]:
    """The perf event to sample on: "cycles" if the CPU exposes hardware
    counters (``perf stat -e instructions true`` works), "cpu-clock" if only
    software events work (VMs), None without a usable perf."""
    if not shutil.which("perf"):
        return None
    for probe, event in (("instructions", "cycles"), ("cpu-clock", "cpu-clock")):
        r = subprocess.run(["perf", "stat", "-e", probe, "true"], capture_output=True, text=True)
        if r.returncode == 0 and "not supported" not in r.stderr and "<not counted>" not in r.stderr:
            return event
    return None


def perf_bucket(dso: str, kind: str, symbol: str) -> str:
    """Name the part of the server a perf sample (dso, [k]/[.], symbol) belongs to."""
    if kind == "k" or dso.startswith("[kernel"):
        return "kernel: syscalls, TCP, epoll"
    if "_cffi_backend" in dso or symbol.startswith("_cffi") or "cdata" in symbol:
        return "cffi boundary"
    if "_native" in dso:
        if any(p in symbol for p in PARSING):
            return "C framing/parsing"
        return "fastnet C engine"
    if dso.startswith("libc") or dso.startswith("ld-linux"):
        return "libc (memcpy, malloc, syscall stubs)"
    if "python" in dso or dso.endswith(".so") and "cpython" in dso:
        return "Python interpreter (handler, engine glue, control plane)"
    return "other: " + dso


def summarise_perf(report: str) -> dict:
    """Buckets (percent of samples) and the top symbols of a ``perf report
    --stdio --no-children --sort dso,sym -g none`` text."""
    buckets: Counter[str] = Counter()
    top = []
    for line in report.splitlines():
        m = PERF_LINE.match(line)
        if not m:
            continue
        pct, dso, kind, symbol = float(m.group(1)), m.group(2), m.group(3), m.group(4)
        buckets[perf_bucket(dso, kind, symbol)] += pct
        top.append([round(pct, 2), symbol, dso])
    if top:
        buckets["(symbols under 0.3% each)"] = max(0.0, 100.0 - sum(buckets.values()))
    return {"buckets": {k: round(v, 1) for k, v in buckets.most_common()}, "top": top[:12]}


def pyspy_bucket(stack: list[dict]) -> str:
    """Name the part of the server a py-spy sample (frames, leaf last) is in."""
    files = [f.get("file") or "" for f in stack]
    if any(f.endswith("bench/handlers.py") for f in files):
        return "Python handler"
    leaf = stack[-1] if stack else {"name": "", "file": ""}
    name, file = leaf.get("name") or "", leaf.get("file") or ""
    if file.endswith(".py") or file.startswith("<"):
        if "/codec/" in file:
            return "Python parsing/framing (codec)"
        if "/engine/" in file:
            return "Python engine glue"
        if "/server/" in file or "/resp/" in file:
            return "Python control plane / protocol"
        return "other Python"
    if "_cffi_backend" in file or "cffi" in name:
        return "cffi boundary"
    if "_native" in file:
        return "C framing/parsing" if any(p in name for p in PARSING) else "fastnet C engine"
    if "libc" in file or name.startswith(("epoll", "recv", "send", "write", "read")):
        return "syscalls (libc wrappers, kernel time)"
    return "Python interpreter (C)"


def summarise_speedscope(doc: dict) -> dict:
    """Buckets (percent of samples) and the top leaf frames of a py-spy
    speedscope profile, over every thread."""
    frames = doc["shared"]["frames"]
    buckets: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0.0
    for prof in doc["profiles"]:
        for sample, weight in zip(prof["samples"], prof["weights"]):
            stack = [frames[i] for i in sample]
            buckets[pyspy_bucket(stack)] += weight
            if stack:
                leaf = stack[-1]
                leaves[f"{leaf['name']} ({Path(leaf.get('file') or '?').name})"] += weight
            total += weight
    if not total:
        return {"buckets": {}, "top": []}
    return {"buckets": {k: round(100 * v / total, 1) for k, v in buckets.most_common()},
            "top": [[round(100 * v / total, 2), k] for k, v in leaves.most_common(12)]}


def _record(argv: list[str], run: Callable[[], object]) -> tuple[int, str]:
    """Start a profiler, load the server with run(), then stop it with SIGINT."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, preexec_fn=pinned(CLIENT_CPU))
    try:
        time.sleep(0.5)
        run()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    return proc.returncode, out


def profile(server: RunningServer, run: Callable[[], object], prefix: Path) -> dict:
    """Profile ``server`` under perf, then py-spy, each during one run();
    write PREFIX.perf.txt and PREFIX.speedscope.json; return the summaries."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    out: dict = {}
    event = perf_event()
    if event is None:
        out["perf"] = {"error": "perf unavailable (perf stat -e instructions/cpu-clock failed)"}
    else:
        data = prefix.with_name(prefix.name + ".perf.data")
        status, text = _record(["perf", "record", "-g", "-e", event, "-p", str(server.proc.pid),
                                "-o", str(data)], run)
        report = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children",
                                 "--sort", "dso,sym", "-g", "none", "--percent-limit", "0.3"],
                                capture_output=True, text=True, timeout=300)
        txt = prefix.with_name(prefix.name + ".perf.txt")
        txt.write_text(report.stdout)
        data.unlink(missing_ok=True)
        out["perf"] = summarise_perf(report.stdout) if report.returncode == 0 else {
            "error": f"perf record {status}: {text.strip()[-200:]} {report.stderr[-200:]}"}
        out["perf"].update(event=event, file=txt.name)
    if not shutil.which("py-spy"):
        out["py-spy"] = {"error": "py-spy not installed (pip install -e '.[bench]')"}
    else:
        js = prefix.with_name(prefix.name + ".speedscope.json")
        status, text = _record(["py-spy", "record", "--pid", str(server.proc.pid), "--native",
                                "-r", "250", "-f", "speedscope", "-o", str(js)], run)
        if js.exists():
            out["py-spy"] = summarise_speedscope(json.loads(js.read_text()))
            out["py-spy"]["file"] = js.name
        else:
            out["py-spy"] = {"error": f"py-spy exited {status}: {text.strip()[-300:]}"}
    return out


def markdown(profiles: dict[str, dict]) -> str:
    """The report's "where the time goes" section, from profile() results."""
    lines = ["### Where the time goes (--profile)", ""]
    for server, prof in profiles.items():
        lines.append(f"**{server}** at {prof.get('cell', '?')}:")
        lines.append("")
        for tool in ("perf", "py-spy"):
            p = prof.get(tool, {})
            if "error" in p:
                lines.append(f"- {tool}: {p['error']}")
                continue
            buckets = ", ".join(f"{k} {v:.1f}%" for k, v in p["buckets"].items())
            extra = f" (event {p['event']})" if tool == "perf" else ""
            lines.append(f"- {tool}{extra}, `{p['file']}`: {buckets}")
            top = "; ".join(f"{row[1]} {row[0]:.1f}%" for row in p["top"][:6])
            lines.append(f"  - top: {top}")
        verdict = _verdict(prof)
        if verdict:
            lines.append(f"- biggest share: {verdict}")
        lines.append("")
    return "\n".join(lines)


def _verdict(prof: dict) -> str:
    shares = [(v, k, tool) for tool in ("perf", "py-spy")
              for k, v in prof.get(tool, {}).get("buckets", {}).items()]
    if not shares:
        return ""
    v, k, tool = max(shares)
    return f"{k} ({v:.0f}% of {tool} samples)"
