#!/bin/sh
# The Flotilla agent's launcher (bundle installs): what systemd starts, as
#
#   /opt/flotilla/launch agent --data-dir /var/lib/flotilla-agent
#
# docker/install.sh copies it there from the release it installs; a confirmed
# new agent replaces it from its own release. It starts `current/bin/flotilla`
# with its arguments, and goes back to `previous` by itself when a new release
# on trial crashes at every start or never reports healthy, with no hub and no
# network: the files it shares with the agent are described in
# docs/agent-upgrades.md ("On the device"):
#
#   current, previous   relative links to a release folder beside this file
#   upgrade/trial       key=value lines: version, previous, revision, deadline, starts
#   upgrade/rolled-back key=value lines: version, revision, reason, at, reported
#
# Invariants: a power cut at any line leaves a state from which the next start
# runs a release (every file and link is replaced by rename of a complete new
# one; the order of the rollback's writes is chosen so each step is redone or
# recognised as done); with no trial nothing of the launcher stays (exec); with
# a trial it stays as the parent only to watch the deadline, and passes
# TERM and INT on to the agent. POSIX sh (dash, busybox sh).
#
# Environment: FLOTILLA_MAX_CRASHES (default 3): starts on trial that may end
# without a confirmation before going back. FLOTILLA_LAUNCH_CUT_AT=<step>: the
# launcher SIGKILLs its process group at that step (the names of `cut` below),
# so tests can play a power cut at every point between two writes.

set -u

log() { printf 'flotilla-launch: %s\n' "$*" >&2; }
# A power cut here: the launcher and all it started die at once (its process group).
cut() { [ "${FLOTILLA_LAUNCH_CUT_AT:-}" != "$1" ] || kill -KILL 0; }

PREFIX="$(cd -P "$(dirname "$0")" && pwd)" || exit 1
TRIAL="$PREFIX/upgrade/trial"
ROLLED_BACK="$PREFIX/upgrade/rolled-back"
MAX_CRASHES="${FLOTILLA_MAX_CRASHES:-3}"
case "$MAX_CRASHES" in '' | *[!0-9]*) MAX_CRASHES=3 ;; esac
# The agent may upgrade itself only when it was started by this launcher.
FLOTILLA_RELEASES_DIR="$PREFIX"
export FLOTILLA_RELEASES_DIR

# fsync: `sync FILE` (coreutils, busybox); a whole-system sync where it is not supported.
flush() { sync "$@" 2>/dev/null || sync; }

# Replaces file $1 by the text $2: <file>.tmp, fsync, rename over it, fsync the directory.
put() {
  printf '%s\n' "$2" >"$1.tmp" || return 1
  flush "$1.tmp"
  cut "${1##*/}.tmp"
  mv -f "$1.tmp" "$1" || return 1
  flush "${1%/*}"
}

# The value of `key` ($1) in key=value file $2 ("" when either is missing).
field() { sed -n "s/^$1=//p" "$2" 2>/dev/null | head -n 1; }

is_number() { case "$1" in '' | *[!0-9]*) return 1 ;; esac; }

now() { date +%s; }

# The trial still names the release started on it: once the agent confirmed, it is gone, or names
# the next release when the confirmed agent went on to another upgrade before the next look.
still_on_trial() { [ "$(field version "$TRIAL")" = "$version" ]; }

# The release a link names (its target's last part; "" when it is missing).
link_version() {
  target="$(readlink "$PREFIX/$1" 2>/dev/null)"
  printf '%s\n' "${target##*/}"
}

run_current() {
  exec "$PREFIX/current/bin/flotilla" "$@"
}

# Goes back to `previous` because of reason $1: fails (changing nothing) when there is none.
# Order: rolled-back first, then the link, then the trial. A cut after the first write repeats
# the rollback at the next start; a cut after the switch leaves a trial for a version that
# `current` no longer names, which the next start discards (step 2), rolled-back already written.
roll_back() {
  back="$(link_version previous)"
  if [ -z "$back" ] || [ "$back" = "$version" ] || [ ! -x "$PREFIX/previous/bin/flotilla" ]; then
    log "release $version $1, but there is no previous release to go back to ($PREFIX/previous is missing or not a release)"
    return 1
  fi
  log "release $version $1: going back to $back"
  put "$ROLLED_BACK" "version=$version
revision=$(field revision "$TRIAL")
reason=$1
at=$(now)
reported=0" || return 1
  cut rolled-back-written
  # A new link renamed over `current`: never a moment without one.
  ln -sfn "$back" "$PREFIX/.current.new" || return 1
  cut link-made
  mv -fT "$PREFIX/.current.new" "$PREFIX/current" || return 1
  flush "$PREFIX"
  cut switched
  rm -f "$TRIAL"
  flush "$PREFIX/upgrade"
  cut trial-removed
}

# Starts the release on trial as a child and watches it (step 4); does not return.
run_on_trial() {
  FLOTILLA_TRIAL=1
  export FLOTILLA_TRIAL
  "$PREFIX/current/bin/flotilla" "$@" &
  child=$!
  # INT is passed on as TERM: sh starts a background child with INT ignored (POSIX), and the
  # agent stops gracefully on either. A signal ends `wait` early with 128+n: the count tells
  # that status from the child's.
  signals=0
  trap 'signals=$((signals + 1)); kill -TERM "$child" 2>/dev/null' TERM INT
  cut child-started
  # `sleep & wait`: a signal is handled at once, not after the sleep.
  while [ "$signals" = 0 ] && still_on_trial && [ "$(now)" -lt "$deadline" ] && kill -0 "$child" 2>/dev/null; do
    sleep 1 &
    wait $!
  done
  if [ "$signals" = 0 ] && still_on_trial && kill -0 "$child" 2>/dev/null; then
    log "release $version did not report healthy by its deadline: stopping it"
    stop_child
    cut child-stopped
    # Confirmed while it was being stopped: it was healthy after all, and the next start runs it.
    ! still_on_trial || roll_back "did not report healthy within the health timeout" || true
    exit 1
  fi
  # Confirmed (or ended, or told to stop): its exit status is the launcher's.
  while :; do
    seen="$signals"
    wait "$child"
    rc=$?
    [ "$seen" != "$signals" ] || break
  done
  exit "$rc"
}

# TERM, then KILL when it has not ended within 10 s.
stop_child() {
  kill -TERM "$child" 2>/dev/null
  waited=0
  while kill -0 "$child" 2>/dev/null && [ "$waited" -lt 10 ]; do
    sleep 1 &
    wait $!
    waited=$((waited + 1))
  done
  kill -KILL "$child" 2>/dev/null
  wait "$child" 2>/dev/null
}

cut start

# 1. No trial: the agent runs as the service's own process.
[ -f "$TRIAL" ] || run_current "$@"

version="$(field version "$TRIAL")"
# 2. A trial for a version `current` does not name: the power went between writing the trial
# and the switch (or after a rollback's switch). Nothing runs on trial.
if [ -z "$version" ] || [ "$version" != "$(link_version current)" ]; then
  log "discarding upgrade/trial for release ${version:-(none named)}: current is $(link_version current)"
  rm -f "$TRIAL"
  flush "$PREFIX/upgrade"
  run_current "$@"
fi

# 3. On trial. Unreadable numbers leave no way to judge it: the release last confirmed is the safe one.
starts="$(field starts "$TRIAL")"
deadline="$(field deadline "$TRIAL")"
reason=''
if ! is_number "$starts" || ! is_number "$deadline"; then
  reason='left an unreadable upgrade/trial'
elif [ "$starts" -ge "$MAX_CRASHES" ]; then
  reason="crashed $starts times in a row"
elif [ "$(now)" -ge "$deadline" ]; then
  reason='did not report healthy within the health timeout'
fi
if [ -n "$reason" ]; then
  # 5. No previous release: a doubtful agent beats none (the trial stays for it to confirm).
  roll_back "$reason" || log "starting release $version anyway"
  run_current "$@"
fi

# 4. Count this start before it happens: a start that ends without a confirmation is a crash.
starts=$((starts + 1))
put "$TRIAL" "$(grep -v '^starts=' "$TRIAL")
starts=$starts" || log "could not count start $starts of release $version in $TRIAL"
cut counted
log "release $version on trial: start $starts of $MAX_CRASHES, to report healthy within $((deadline - $(now))) s"
run_on_trial "$@"
