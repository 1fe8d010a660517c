"""Child programs for the job-layer contenders: the same code for plams-cli and PLAMS.

Each template takes ``pkg`` (``plams_cli`` or ``scm.plams``). The job class lives in a module
(``benchjobs.py``, on ``PYTHONPATH``) rather than in the script, because PLAMS cannot pickle a
class its launcher script defines ("logger cannot be pickled"): with a module, both save and
restore the jobs by reference, as a real project with its own job classes would.
"""

from __future__ import annotations

JOB_MODULE = '''
from {pkg} import SingleJob


class EchoJob(SingleJob):
    """A trivial job: one input line; the runscript writes a file and ticks a counter."""

    def get_input(self):
        return self.settings.input.value

    def get_runscript(self):
        return "echo x > out\\necho . >> {counter}\\n"
'''

# serial | parallel | reuse: N jobs after a few untimed warm-up jobs; the timed part only.
JOBS = '''
import json, sys, time
from {pkg} import JobRunner, config, init, finish
from benchjobs import EchoJob

mode, n, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
config.log.stdout = 0
init(path=folder, folder="w")
config.log.stdout = 0  # PLAMS's init resets config
runner = JobRunner(parallel=True, maxjobs=2) if mode == "parallel" else JobRunner()


def job(name, value):
    j = EchoJob(name=name)
    j.settings.input.value = value
    j.run(jobrunner=runner)
    return j


for i in range(5):  # one-time costs (first save, first hash) are not per job
    job(f"warm{{i}}", f"warm {{i}}").results.wait()
if mode == "reuse":
    job("orig", "same").results.wait()
start = time.perf_counter()
jobs = [job(f"job{{i}}", "same" if mode == "reuse" else f"value {{i}}") for i in range(n)]
for j in jobs:
    j.results.wait()
elapsed = time.perf_counter() - start
statuses = sorted({{str(getattr(j.status, "value", j.status)) for j in jobs}})
finish()
print(json.dumps({{"elapsed": elapsed, "statuses": statuses}}))
'''

# The job script of the -r / -l workloads, run by each contender's own `plams` launcher.
SCRIPT = '''
from benchjobs import EchoJob

config.log.stdout = 0
for i in range({n}):
    job = EchoJob(name=f"job{{i}}")
    job.settings.input.value = f"value {{i}}"
    job.run()
'''

LOAD_ALL = '''
import json, sys, time
from {pkg} import config, finish, init, load_all

folder, scratch = sys.argv[1], sys.argv[2]
config.log.stdout = 0
init(path=scratch, folder="la")
config.log.stdout = 0
start = time.perf_counter()
jobs = load_all(folder)
elapsed = time.perf_counter() - start
count = len(jobs)
finish()
print(json.dumps({{"elapsed": elapsed, "count": count}}))
'''

STARTUP = "import {pkg} as p; p.config.log.stdout = 0; p.init(); p.config.log.stdout = 0; p.finish()"

GRID_LATENCY = '''
import json, os, sys, time
from {pkg} import GridRunner, SingleJob, config, finish, init


class OneSecond(SingleJob):
    def get_input(self):
        return ""

    def get_runscript(self):
        return "sleep 1\\ndate +%s.%N > end.txt\\n"


config.log.stdout = 0
init(path=sys.argv[1], folder="grid")
config.log.stdout = 0
job = OneSecond(name="latency")
job.run(jobrunner=GridRunner(grid="slurm"))
job.results.wait()
seen = time.time()
ok = job.ok()
with open(os.path.join(job.path, "end.txt")) as handle:
    end = float(handle.read())
finish()
print(json.dumps({{"latency": seen - end, "ok": ok}}))
'''
