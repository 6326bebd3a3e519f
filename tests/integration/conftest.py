"""Shared set-up for the integration tests: the loopspy binary, the interpreters to test
against, and helpers to run loopspy and read what it wrote."""
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORKLOADS = ROOT / "tests" / "workloads"
LOOPSPY = os.path.abspath(os.environ.get("LOOPSPY_BIN", str(ROOT / "build" / "loopspy")))
PYTHONS_DIR = pathlib.Path(os.environ.get("LOOPSPY_PYTHONS_DIR", pathlib.Path.home() / ".cache/loopspy/pythons"))

# Every interpreter the project promises to support. CI fails when one is missing.
INTERPRETERS = {
    "pyenv-3.8": "/root/.pyenv/versions/3.8.18/bin/python3",
    "pyenv-3.9": "/root/.pyenv/versions/3.9.18/bin/python3",
    "pyenv-3.10": "/root/.pyenv/versions/3.10.13/bin/python3",
    "pyenv-3.11": "/root/.pyenv/versions/3.11.7/bin/python3",
    "pyenv-3.12": "/root/.pyenv/versions/3.12.1/bin/python3",
    "pyenv-3.13": "/root/.pyenv/versions/3.13.0/bin/python3",
    "debian-3.11": "/usr/bin/python3.11",
    "sid-3.14": str(PYTHONS_DIR / "3.14" / "python"),
    "sid-3.15": str(PYTHONS_DIR / "3.15" / "python"),
}

# Interpreters 3.8-3.10 have no Py_Version: loopspy reads their version string.
FRAME_OBJECT_PYTHONS = ["pyenv-3.8", "pyenv-3.9", "pyenv-3.10"]

# What loopspy refuses with exit code 5 (a version it does not support, or cannot tell, or
# that its own memory contradicts). No such interpreter comes with the machine, so these are
# processes that look like one from outside: tests/workloads/not_a_python.c built per kind.
UNSUPPORTED_PYTHONS = {
    "3.16": (["-DPY_VERSION_HEX_VALUE=0x031000f0"], "unsupported Python version 3.16.0"),
    "3.7": (['-DVERSION_STRING="3.7.17"'], "unsupported Python version 3.7.17"),
    "no-version": ([], "cannot tell which Python version"),
    "contradicted-3.9": (['-DVERSION_STRING="3.9.18"', "-DCONTRADICTED"], "does not read as that version"),
}

_covered = set()
_skipped = []


@pytest.fixture(autouse=True, scope="session")
def _run_in_a_scratch_directory(tmp_path_factory):
    """loopspy writes a recording into the current directory when not told where: keep those
    out of the source tree."""
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(old)


def python_param(name):
    return pytest.param(name, id=name)


ALL_PYTHONS = [python_param(n) for n in INTERPRETERS]


@pytest.fixture
def python(request):
    """The interpreter path for a test parametrized with `py`."""
    name = request.param if hasattr(request, "param") else request.getfixturevalue("py")
    return interpreter(name)


def named(py, qualname):
    """How loopspy names a function on interpreter `py`: by its qualified name, or before 3.11
    (code objects have no co_qualname) by its bare name, as tracebacks there do."""
    return qualname.rsplit(".", 1)[-1] if py in FRAME_OBJECT_PYTHONS else qualname


def unsupported_python(kind, directory):
    """(argv prefix, the refusal's words) of a process that looks like the `kind` of
    UNSUPPORTED_PYTHONS; it takes a ready file's path as its one argument."""
    flags, words = UNSUPPORTED_PYTHONS[kind]
    exe = pathlib.Path(directory) / f"python-{kind}"
    if not exe.exists():
        subprocess.run([os.environ.get("CC", "cc"), "-O1", "-rdynamic", *flags, "-o", str(exe),
                        str(WORKLOADS / "not_a_python.c")], check=True)
    return [str(exe)], words


def interpreter(name):
    path = INTERPRETERS[name]
    if not os.access(path, os.X_OK):
        pytest.fail(f"interpreter {name} is missing: {path} (run scripts/setup.sh --test)")
    _covered.add(name)
    return path


def pytest_terminal_summary(terminalreporter):
    lines = []
    if _covered:
        lines.append("interpreters covered: " + ", ".join(sorted(_covered)))
    missing = [n for n, p in INTERPRETERS.items() if not os.access(p, os.X_OK)]
    if missing:
        lines.append("interpreters MISSING: " + ", ".join(missing))
    # Every skip is shown, even when the run passes (ctest shows a passing run's output only on
    # request, so scripts/test.sh prints this file).
    skipped = terminalreporter.stats.get("skipped", [])
    lines.append(f"skipped tests: {len(skipped)}")
    for rep in skipped:
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        lines.append(f"  SKIPPED {rep.nodeid}: {reason}")
    for line in lines:
        terminalreporter.write_line(line)
    # ctest shows a passing test's output only on request: leave the lines for scripts/test.sh.
    report = os.environ.get("LOOPSPY_COVERAGE_FILE")
    if report:
        pathlib.Path(report).write_text("".join(l + "\n" for l in lines))


def run_loopspy(*args, timeout=120, check=True, **kw):
    """Runs the real binary; returns the CompletedProcess (text mode)."""
    cmd = [LOOPSPY, *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    # Every recording a test makes accounts for most of the target's CPU time: none may say it lost it.
    if check and "this profile is missing" in proc.stderr:
        raise AssertionError(f"{cmd} lost the target's time:\n{proc.stderr}")
    return proc


def assert_one_line_error(proc, code, *fragments):
    """loopspy failed with exit code `code` and exactly one `loopspy: error:` line holding every
    fragment; returns that line."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    errors = [l for l in proc.stderr.splitlines() if l.startswith("loopspy: error: ")]
    assert len(errors) == 1, proc.stderr
    for frag in fragments:
        assert frag in errors[0], errors[0]
    return errors[0]


def wait_for_exec(proc, name, timeout=10):
    """Waits until proc has exec'd the program called name (its /proc/PID/exe)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.path.basename(os.readlink(f"/proc/{proc.pid}/exe")) == name:
                return
        except OSError:
            pass
        time.sleep(0.01)
    raise AssertionError(f"pid {proc.pid} did not exec {name}")


def wait_for_file(path, timeout=30, proc=None):
    deadline = time.monotonic() + timeout
    path = pathlib.Path(path)
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size > 0:
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"workload exited early with {proc.returncode}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {path}")


def parse_collapsed(path):
    """[(frames, weight_us)] from a collapsed-stacks file."""
    out = []
    for line in pathlib.Path(path).read_text(encoding="utf-8").splitlines():
        stack, _, weight = line.rpartition(" ")
        out.append((stack.split(";"), int(weight)))
    return out


def frame_name(frame):
    """'qualname (file:line)' -> 'qualname'."""
    return frame.rsplit(" (", 1)[0] if frame.endswith(")") and " (" in frame else frame


def summary_line(stderr):
    for line in stderr.splitlines():
        if "fully symbolized" in line:
            return line
    raise AssertionError("no summary line in:\n" + stderr)


def fully_symbolized_percent(stderr):
    line = summary_line(stderr)
    return float(line.split("(")[1].split("%")[0])


def stolen_ms():
    """The machine's steal time so far, in ms, over all CPUs (/proc/stat). On a virtual machine a
    vCPU the hypervisor ran something else on still takes its timer sample when it resumes, while
    the kernel's CPU time of the task leaves the stolen time out: up to one sample per stolen ms
    more than the task's own clock accounts for."""
    fields = pathlib.Path("/proc/stat").read_text().splitlines()[0].split()
    return int(fields[8]) * 1000 // os.sysconf("SC_CLK_TCK")


@pytest.fixture
def spawn():
    """Starts workloads and makes sure none outlives its test."""
    procs = []

    def start(argv, **kw):
        p = subprocess.Popen(argv, **kw)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
