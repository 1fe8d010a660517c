#!/usr/bin/env bash
# slurm_localhost.sh — a real one-node SLURM cluster on 127.0.0.1 for plams-cli's grid tests.
#
# Debian 12 (bookworm) packages: slurm-wlm 22.05 + munge, optionally the slurm-wlm-torque
# PBS-style wrappers (qsub/qstat/qdel over the same SLURM). No systemd is needed: the daemons
# are started directly and stopped by their PID files, never by name. Run as root.
#
#   bash tests/schedulers/slurm_localhost.sh start    # install if needed, configure, start, probe; idempotent
#   bash tests/schedulers/slurm_localhost.sh status   # exit 0 when slurmctld+slurmd+munged run
#   bash tests/schedulers/slurm_localhost.sh stop     # cancel all jobs, stop the daemons by PID file
#   bash tests/schedulers/slurm_localhost.sh restart
#
# Environment:
#   SLURM_LOCAL_DIR      state, spool, logs, PID files        (default /tmp/slurm-localhost)
#   SLURM_LOCAL_CPUS     job slots advertised                   (default 32; more than the real
#                        CPUs is fine: SlurmdParameters=config_overrides. The controller starts
#                        queued jobs about once a second, so slots = jobs started per second.)
#   SLURM_LOCAL_PBS      1: also install slurm-wlm-torque and enable spank_pbs      (default 0)
#   SLURM_LOCAL_TIMEOUT  seconds per readiness wait              (default 60)
#   SLURM_LOCAL_PROBE    1: after starting a daemon, run one batch job and check it (default 1)
#
# Pitfalls this script handles (each met on a one-node, no-systemd machine):
#   * no cgroups: the default proctrack/cgroup lets the node look idle while every job fails
#     to launch and is still reported COMPLETED 0:0 -> proctrack/linuxproc, task/none;
#   * batch_sched_delay=3 (default) starts jobs in 3-s steps -> 0;
#   * CR_Core_Memory without DefMemPerCPU gives each job the whole node -> CR_Core;
#   * `sinfo` says idle before slurmd re-registered -> a probe job proves readiness;
#   * munged needs /run/munge (systemd would create it) and a munge-owned 0600 key;
#   * slurmstepd outlives slurmd -> `stop` cancels the jobs first;
#   * an exited daemon stays a zombie for a while where PID 1 reaps late -> state Z = stopped;
#   * the node is called localhost (slurmd -N localhost), so `hostname` does not matter.
set -euo pipefail

ACTION=${1:-start}
BASE=${SLURM_LOCAL_DIR:-/tmp/slurm-localhost}
CPUS=${SLURM_LOCAL_CPUS:-32}
PBS=${SLURM_LOCAL_PBS:-0}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}
PROBE=${SLURM_LOCAL_PROBE:-1}
CONF=/etc/slurm/slurm.conf
MUNGE_PID=/run/munge/munged.pid
CTLD_PID=$BASE/run/slurmctld.pid
SLURMD_PID=$BASE/run/slurmd.pid

say() { echo "[slurm_localhost] $*" >&2; }

alive() {                 # alive PID: exists and is not a zombie
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

pidfile_alive() {         # pidfile_alive FILE COMM: FILE names a live process called COMM
  local p
  [ -s "$1" ] || return 1
  p=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$p" ] && alive "$p" || return 1
  # a stale PID file whose number now belongs to another program does not count
  [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ]
}

stop_by_pidfile() {       # stop_by_pidfile COMM FILE: TERM, up to 15 s, then KILL
  local p
  if ! pidfile_alive "$2" "$1"; then rm -f "$2"; return 0; fi
  p=$(cat "$2")
  say "stopping $1 (pid $p)"
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 1 150); do alive "$p" || break; sleep 0.1; done
  if alive "$p"; then say "$1 ignored SIGTERM: SIGKILL"; kill -KILL "$p" 2>/dev/null || true; fi
  rm -f "$2"
}

retry() {                 # retry SECONDS CMD...: every 0.1 s until CMD succeeds
  local n=$(( $1 * 10 )); shift
  for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

install_packages() {
  local pkgs=()
  command -v slurmctld >/dev/null || pkgs+=(slurmctld)
  command -v slurmd >/dev/null || pkgs+=(slurmd)
  command -v sbatch >/dev/null || pkgs+=(slurm-client)
  command -v munged >/dev/null || pkgs+=(munge)
  if [ "$PBS" = 1 ] && ! dpkg -s slurm-wlm-torque >/dev/null 2>&1; then pkgs+=(slurm-wlm-torque); fi
  [ ${#pkgs[@]} -eq 0 ] && return 0
  say "installing ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # --no-install-recommends: 8-13 packages instead of the 43 of the slurm-wlm metapackage.
  # The postinsts try to start the services; without systemd they only warn.
  apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null
}

start_munge() {
  [ -s /etc/munge/munge.key ] || { say "creating munge key"; mungekey --create --keyfile=/etc/munge/munge.key; }
  chown munge:munge /etc/munge /etc/munge/munge.key
  chmod 0700 /etc/munge
  chmod 0600 /etc/munge/munge.key
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge
  chmod 0755 /run/munge            # every client must reach the socket
  if pidfile_alive "$MUNGE_PID" munged && munge -n >/dev/null 2>&1; then return 0; fi
  say "starting munged"
  rm -f "$MUNGE_PID"
  runuser -u munge -- /usr/sbin/munged
  retry "$TIMEOUT" munge -n || { say "munged did not come up"; tail -n 20 /var/log/munge/munged.log >&2 || true; return 1; }
}

write_config() {          # returns 0 when slurm.conf changed, 1 when it was already right
  local tmp mem
  tmp=$(mktemp)
  mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n 1)
  cat >"$tmp" <<CONF
# Written by plams-cli tests/schedulers/slurm_localhost.sh: one node on 127.0.0.1.
ClusterName=plamslocal
SlurmctldHost=localhost
SlurmctldPort=6817
SlurmdPort=6818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
# No cgroups on this machine: proctrack/cgroup would make every job fail silently.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
# CR_Core, not CR_Core_Memory: otherwise each job takes all memory and jobs run one by one.
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
# Refuse impossible requests at submit time instead of leaving them pending forever.
EnforcePartLimits=ALL
# Keep finished jobs visible to squeue/scontrol for an hour (no slurmdbd here).
MinJobAge=3600
KillWait=5
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No accounting database: sacct says "accounting storage is disabled"; scontrol answers.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$BASE/log/jobcomp.txt
# Advertise CPUS slots whatever the hardware has.
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=$CPUS RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=plamstest Nodes=ALL Default=NO MaxTime=INFINITE State=UP
CONF
  mkdir -p "$(dirname "$CONF")"
  if [ -f "$CONF" ] && cmp -s "$tmp" "$CONF"; then rm -f "$tmp"; return 1; fi
  [ -f "$CONF" ] && cp -f "$CONF" "$CONF.bak"
  install -m 0644 "$tmp" "$CONF"; rm -f "$tmp"
  return 0
}

wait_node() {
  local state=""
  for _ in $(seq 1 $((TIMEOUT * 5))); do
    state=$(sinfo -h -n localhost -o '%T' 2>/dev/null | head -n 1 || true)
    case "$state" in
      idle|mixed|allocated|completing) return 0 ;;
      down*|drain*|inval*|fail*) scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.2
  done
  say "node not ready after ${TIMEOUT}s (state: ${state:-none})"
  tail -n 20 "$BASE/log/slurmctld.log" "$BASE/log/slurmd.log" >&2 || true
  return 1
}

probe() {
  local out="$BASE/probe.out" id
  rm -f "$out"
  id=$(sbatch --parsable -J plams-probe -D "$BASE" -o "$out" -e "$out" --wrap 'echo probe-ok') || return 1
  for _ in $(seq 1 $((TIMEOUT * 10))); do
    squeue -h -j "$id" -t PD,R,CG,CF 2>/dev/null | grep -q . || break
    sleep 0.1
  done
  if grep -q probe-ok "$out" 2>/dev/null; then say "probe job $id ran"; return 0; fi
  say "probe job $id did not run"; scontrol show job "$id" >&2 || true
  return 1
}

do_start() {
  [ "$(id -u)" = 0 ] || { say "run me as root"; exit 1; }
  install_packages
  mkdir -p "$BASE"/{state,spool,log,run}
  chmod 0755 "$BASE" "$BASE"/{state,spool,log,run}
  local changed=0 started=0
  write_config && changed=1
  if [ "$PBS" = 1 ]; then
    # spank_pbs gives jobs PBS_JOBID, PBS_O_WORKDIR...; read at each job start, no restart
    mkdir -p /etc/slurm/plugstack.conf.d
    echo "optional $(dpkg -L slurm-wlm-basic-plugins | grep '/spank_pbs\.so$')" >/etc/slurm/plugstack.conf.d/pbs.conf
  fi
  start_munge
  if [ "$changed" = 1 ] && { pidfile_alive "$CTLD_PID" slurmctld || pidfile_alive "$SLURMD_PID" slurmd; }; then
    say "slurm.conf changed: restarting the daemons"
    stop_by_pidfile slurmd "$SLURMD_PID"
    stop_by_pidfile slurmctld "$CTLD_PID"
  fi
  if ! pidfile_alive "$CTLD_PID" slurmctld; then
    started=1; say "starting slurmctld"
    /usr/sbin/slurmctld || { tail -n 20 "$BASE/log/slurmctld.log" >&2; exit 1; }
  fi
  retry "$TIMEOUT" sh -c 'scontrol ping | grep -q "is UP"' || { say "slurmctld not answering"; tail -n 20 "$BASE/log/slurmctld.log" >&2; exit 1; }
  if ! pidfile_alive "$SLURMD_PID" slurmd; then
    started=1; say "starting slurmd"
    /usr/sbin/slurmd -N localhost || { tail -n 20 "$BASE/log/slurmd.log" >&2; exit 1; }
  fi
  wait_node
  if [ "$started" = 1 ] && [ "$PROBE" = 1 ]; then probe; fi
  say "up: $CPUS slots, partitions debug (default) and plamstest$( [ "$PBS" = 1 ] && echo ', PBS wrappers')"
}

do_stop() {
  if pidfile_alive "$CTLD_PID" slurmctld; then
    local ids
    ids=$(squeue -h -o '%A' 2>/dev/null || true)
    if [ -n "$ids" ]; then
      say "cancelling jobs: $(tr '\n' ' ' <<<"$ids")"
      # shellcheck disable=SC2086
      scancel $ids 2>/dev/null || true
      for _ in $(seq 1 150); do [ -z "$(squeue -h -t R,CG 2>/dev/null)" ] && break; sleep 0.1; done
    fi
  fi
  stop_by_pidfile slurmd "$SLURMD_PID"
  stop_by_pidfile slurmctld "$CTLD_PID"
  stop_by_pidfile munged "$MUNGE_PID"
}

do_status() {
  local rc=0 n
  for n in "munged:$MUNGE_PID" "slurmctld:$CTLD_PID" "slurmd:$SLURMD_PID"; do
    if pidfile_alive "${n#*:}" "${n%%:*}"; then echo "${n%%:*}: running (pid $(cat "${n#*:}"))"
    else echo "${n%%:*}: stopped"; rc=1; fi
  done
  if command -v qsub >/dev/null && dpkg -s slurm-wlm-torque >/dev/null 2>&1; then echo "PBS wrappers: installed"; fi
  sinfo 2>/dev/null || true
  return $rc
}

case "$ACTION" in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop; do_start ;;
  status) do_status ;;
  *) echo "usage: $0 {start|stop|restart|status}" >&2; exit 2 ;;
esac
