"""Ctrl-C while a serial runner waits stops the runscript instead of orphaning it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import python_env

SCRIPT = textwrap.dedent("""
    import os, signal, sys, threading, time
    import psutil
    from plams_cli import ShellJob, config, init

    config.log.stdout = 0
    init(path=sys.argv[1], folder="w")
    job = ShellJob(name="sleepy", runscript="echo $$ > pid; exec sleep 30")
    def interrupt():
        while not os.path.exists(os.path.join(sys.argv[1], "w", "sleepy", "pid")):
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=interrupt, daemon=True).start()
    try:
        job.run()
    except KeyboardInterrupt:
        pid = int(open(os.path.join(job.path, "pid")).read())
        for _ in range(200):
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.01)
        else:
            print("runscript still running")
            sys.exit(3)
        print("|".join(map(str, config.default_jobrunner.cancel())))
        sys.exit(0)
    print("the job was not interrupted")
    sys.exit(4)
""")


def test_ctrl_c_in_serial_wait_stops_runscript(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                            env=python_env(), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("stopped runscript ") and "sleepy.run" in result.stdout
