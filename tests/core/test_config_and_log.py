"""config from the YAML defaults, init()/finish(), and log()."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from plams_cli import config, finish, init, log
from plams_cli.core import logger
from plams_cli.errors import ConfigError
from tests.conftest import python_env

REQUIRED_KEYS = [
    ("preview",), ("sleepstep",), ("ignore_failure",), ("daemon_threads",), ("erase_workdir",),
    ("jobmanager", "counter_len"), ("jobmanager", "hashing"), ("jobmanager", "remove_empty_directories"),
    ("job", "pickle"), ("job", "pickle_protocol"), ("job", "keep"), ("job", "save"), ("job", "link_files"),
    ("job", "runscript", "shebang"), ("job", "runscript", "stdout_redirect"),
    ("log", "file"), ("log", "stdout"), ("log", "time"), ("log", "date"),
]


@pytest.mark.parametrize("keys", REQUIRED_KEYS, ids=[".".join(k) for k in REQUIRED_KEYS])
def test_config_has_required_key(keys: tuple[str, ...]) -> None:
    assert keys in config


def test_defaults_values() -> None:
    assert config.jobmanager.hashing == "input+runscript"
    assert config.job.runscript.shebang == "#!/bin/sh"
    assert config.default_jobrunner is not None


def test_user_defaults_file_wins(tmp_path: Path) -> None:
    user = tmp_path / "mine.yaml"
    user.write_text("sleepstep: 1\njob:\n  pickle: false\n")
    env = python_env() | {"PLAMS_DEFAULTS": str(user)}
    code = "from plams_cli import config; print(config.sleepstep, config.job.pickle, config.job.keep)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "False", "all"]


def test_user_defaults_in_config_dir(tmp_path: Path) -> None:
    folder = tmp_path / "xdg" / "plams"
    folder.mkdir(parents=True)
    (folder / "plams_defaults.yaml").write_text("sleepstep: 7\n")
    env = python_env() | {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    code = "from plams_cli import config; print(config.sleepstep)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "7"


@pytest.mark.parametrize(
    ("content", "message"),
    [("a: [unclosed\n", "not valid YAML"), ("- 1\n", "mapping")],
    ids=["bad-yaml", "not-a-mapping"],
)
def test_bad_user_defaults_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    user = tmp_path / "bad.yaml"
    user.write_text(content)
    env = python_env() | {"PLAMS_DEFAULTS": str(user)}
    out = subprocess.run([sys.executable, "-c", "from plams_cli import config"], env=env, capture_output=True,
                         text=True)
    assert out.returncode != 0
    assert message in out.stderr and str(user) in out.stderr


def test_missing_plams_defaults_file_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plams_cli.defaults import user_defaults_path

    monkeypatch.setenv("PLAMS_DEFAULTS", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="nope.yaml"):
        user_defaults_path()


def test_setting_made_before_init_survives_init(tmp_path: Path, fresh_config: object) -> None:
    config.sleepstep = 42
    config.job.keep = ["$JN.out"]
    init(path=str(tmp_path), quiet=True)
    assert config.sleepstep == 42
    assert config.job.keep == ["$JN.out"]


def test_init_makes_folder_and_logfile_and_jm_alias(tmp_path: Path, fresh_config: object) -> None:
    manager = init(path=str(tmp_path), folder="run", quiet=True)
    assert manager.workdir == str(tmp_path / "run")
    assert (tmp_path / "run" / "logfile").is_file()
    assert config.jm is manager and config.default_jobmanager is manager
    assert init() is manager  # a second init() during a run changes nothing


def test_init_config_settings_are_applied(tmp_path: Path, fresh_config: object) -> None:
    init(path=str(tmp_path), config_settings={"sleepstep": 3}, quiet=True)
    assert config.sleepstep == 3


def test_finish_erases_workdir_when_asked(tmp_path: Path, fresh_config: object) -> None:
    from tests.core.jobkinds import EchoJob

    config.erase_workdir = True
    manager = init(path=str(tmp_path), folder="gone", quiet=True)
    EchoJob(name="one").run()
    finish()
    assert not Path(manager.workdir).exists()


def test_finish_summary_line(tmp_path: Path, fresh_config: object) -> None:
    from tests.core.jobkinds import EchoJob

    manager = init(path=str(tmp_path), folder="sum", quiet=True)
    EchoJob(name="one").run()
    bad = EchoJob(name="two")
    bad.settings.input.exit = 2
    bad.run()
    finish()
    text = Path(manager.workdir, "logfile").read_text()
    assert re.search(r"Finished: 1 successful, 1 crashed", text)


def test_log_format_and_levels(tmp_path: Path, fresh_config: object, capsys: pytest.CaptureFixture[str]) -> None:
    config.log.stdout = 3
    config.log.file = 5
    manager = init(path=str(tmp_path), folder="logs", quiet=True)
    log("shown", 3)
    log("file only", 5)
    log("nowhere", 6)
    out = capsys.readouterr().out
    assert re.fullmatch(r"\[\d\d\.\d\d\|\d\d:\d\d:\d\d\] shown\n", out)
    finish()
    text = Path(manager.workdir, "logfile").read_text()
    assert "shown" in text and "file only" in text and "nowhere" not in text


def test_log_without_date(capsys: pytest.CaptureFixture[str], fresh_config: object) -> None:
    config.log.stdout = 3
    config.log.date = False
    log("x", 0)
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] x\n", capsys.readouterr().out)


def test_filtered_log_does_no_work(fresh_config: object) -> None:
    config.log.stdout = 0

    class Exploding:
        def __str__(self) -> str:
            raise AssertionError("a filtered message must not even be formatted")

    log(Exploding(), 7)  # filtered: never formatted


def test_log_to_stderr(capsys: pytest.CaptureFixture[str], fresh_config: object) -> None:
    config.log.stdout = 3
    logger.set_stream("stderr")
    log("to err", 1)
    captured = capsys.readouterr()
    assert "to err" in captured.err and captured.out == ""


def test_packaged_defaults_found_in_plain_install(tmp_path: Path) -> None:
    """A non-editable install must carry defaults/plams_defaults.yaml inside the package."""
    root = Path(__file__).resolve().parents[2]
    wheel_dir = tmp_path / "wheel"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir),
         str(root)],
        capture_output=True, text=True,
    )
    if build.returncode != 0:
        pytest.fail(f"building the wheel failed: {build.stderr[-2000:]}")
    import zipfile

    (wheel,) = wheel_dir.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "plams_cli/defaults/plams_defaults.yaml" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    env = dict(os.environ, PYTHONPATH=str(target))
    code = textwrap.dedent(f"""
        import plams_cli, plams_cli.defaults as d
        assert plams_cli.__file__.startswith({str(target)!r}), plams_cli.__file__
        print(d.package_defaults_path())
    """)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(target / "plams_cli" / "defaults" / "plams_defaults.yaml")


def test_ignore_failure_warns_or_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        fresh_config: object) -> None:
    from plams_cli import ShellJob, config, finish, init
    from plams_cli.errors import ResultsError

    config.log.stdout = 3
    init(path=str(tmp_path), folder="if", quiet=True)
    try:
        job = ShellJob(name="bad", runscript="echo partial; exit 2")
        job.run()
        assert job.results.read_file("$JN.out") == "partial\n"  # ignore_failure: true (default)
        job.results.read_file("$JN.out")
        warnings = [line for line in capsys.readouterr().out.splitlines() if "WARNING" in line]
        assert len(warnings) == 1 and "bad, which crashed" in warnings[0] and "exited with code 2" in warnings[0]
        config.ignore_failure = False
        with pytest.raises(ResultsError, match="bad crashed, so its results are not to be trusted"):
            job.results.read_file("$JN.out")
    finally:
        config.ignore_failure = True
        finish()


@pytest.mark.parametrize("daemon", [True, False])
def test_daemon_threads_decides_whether_exit_waits_for_jobs(tmp_path: Path, daemon: bool) -> None:
    script = tmp_path / "s.py"
    script.write_text(textwrap.dedent(f"""
        from plams_cli import JobRunner, ShellJob, config, init
        config.log.stdout = 0
        config.daemon_threads = {daemon}
        init(path={str(tmp_path)!r}, folder="w")
        ShellJob(name="slow", runscript="sleep 0.5").run(jobrunner=JobRunner(parallel=True))
        # no finish(): the script ends while the job runs
    """))
    subprocess.run([sys.executable, str(script)], check=True, env=python_env(), timeout=60)
    assert (tmp_path / "w" / "slow" / "slow.dill").exists() is (not daemon)


@pytest.mark.parametrize(
    ("text", "words"),
    [("jobmanager:\n  hashing: md5\n", ["jobmanager.hashing = 'md5'", "input+runscript"]),
     ("job: 5\n", ["job = 5", "mapping"]),
     ("log:\n  stdout: loud\n", ["log.stdout = 'loud'", "0 to 7"]),
     ("jobmanager:\n  counter_len: 0\n", ["jobmanager.counter_len = 0"]),
     ("sleepstep: -1\n", ["sleepstep = -1", "positive"])],
    ids=["hashing", "job-not-mapping", "log-level", "counter-len", "sleepstep"],
)
def test_bad_user_defaults_values_are_refused_when_read(tmp_path: Path, text: str, words: list[str]) -> None:
    user = tmp_path / "user.yaml"
    user.write_text(text)
    env = {**python_env(), "PLAMS_DEFAULTS": str(user)}
    result = subprocess.run([sys.executable, "-c", "import plams_cli; plams_cli.config"], capture_output=True,
                            text=True, env=env)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "ConfigError" in last and str(user) in last and all(word in last for word in words), last


def test_second_init_says_a_run_is_going_on(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            fresh_config: object) -> None:
    config.log.stdout = 1
    first = init(path=str(tmp_path), folder="one", quiet=True)
    assert init(path=str(tmp_path), folder="two") is first
    assert "a run is already going on in" in capsys.readouterr().out
    assert not (tmp_path / "two").exists()
    finish()


def test_a_steps_log_lines_go_out_together_and_before_anything_long(tmp_path: Path, fresh_config: object) -> None:
    """Held lines are written in one go when released, and before a job's own prerun() and its runscript."""
    from plams_cli import ShellJob, finish, init
    from plams_cli.core import logger

    manager = init(path=str(tmp_path), folder="w", quiet=True)
    logfile = Path(manager.workdir) / "logfile"
    held = logger.hold_lines()
    logger.log("first held", 3)
    logger.log("second held", 3)
    assert "held" not in logfile.read_text()  # kept back while held ...
    logger.release_lines(held)
    assert logfile.read_text().count("held") == 2  # ... and out once released
    seen: list[str] = []

    class Looking(ShellJob):
        def prerun(self) -> None:  # user code, which may take long: the lines before it are in the file
            seen.append(logfile.read_text())

    job = Looking(name="look", runscript=f"cat {logfile}\n")
    job.run()
    assert job.ok()
    assert "JOB look STARTED" in seen[0] and "Starting look.prerun()" in seen[0]
    assert "JOB look RUNNING" in job.results.read_file("look.out")  # written before the runscript started
    finish()
    text = logfile.read_text()
    assert text.index("JOB look STARTED") < text.index("JOB look RUNNING") < text.index("JOB look SUCCESSFUL")
