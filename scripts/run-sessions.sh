#!/usr/bin/env bash
# Runs nox sessions side by side, at most JOBS (default 2) at once, and prints each one's
# output whole when it ends, so that the logs of sessions running together do not mix.
# A session's suites keep about 0.85 of a core busy (the e2e suite: 400 s of CPU in 470 s),
# the rest is waiting on jobs and servers: on two cores, two at a time take the time of
# one. Three at once overload them: a 50 s e2e test then runs past its 120 s timeout.
# Usage: run-sessions.sh NOX SESSION [SESSION ...]; exits 1 if any session failed.
set -uo pipefail
nox=$1
shift
jobs=${JOBS:-2}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
declare -A session_of=() log_of=()
failed=()

report() {
  local pid=$1 status=$2
  local session=${session_of[$pid]}
  echo "=== $session: $([ "$status" -eq 0 ] && echo passed || echo "FAILED (exit $status)")"
  cat "${log_of[$pid]}"
  [ "$status" -eq 0 ] || failed+=("$session")
}

wait_one() {
  local pid status
  wait -n -p pid
  status=$?
  report "$pid" "$status"
  unset "session_of[$pid]"
}

index=0
for session in "$@"; do
  while [ ${#session_of[@]} -ge "$jobs" ]; do wait_one; done
  index=$((index + 1))
  log="$logs/$index.log"
  "$nox" -s "$session" >"$log" 2>&1 &
  session_of[$!]=$session
  log_of[$!]=$log
  echo "=== started $session"
done
while [ ${#session_of[@]} -gt 0 ]; do wait_one; done

if [ ${#failed[@]} -gt 0 ]; then
  echo "=== failed: ${failed[*]}"
  exit 1
fi
echo "=== all $# sessions passed"
