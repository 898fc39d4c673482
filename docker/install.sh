#!/bin/sh
# Installs the Flotilla agent on a Debian, Raspberry Pi OS or Ubuntu device
# (amd64, arm64), registers it with a hub and starts it; docs/install.md.
#
#   curl -fsSL http://hub:7070/install.sh | sudo sh -s -- --token <registration token>
#
# Served by the hub at GET /install.sh, which fills in served_hub and
# served_version below (broker/http/install.ts), so the device installs the
# release its hub runs from the hub it was fetched from.
#
# Every check runs before anything is changed, and the one step that can be
# refused remotely (registration) runs before anything is moved into place:
# a failure is one line naming the fix, a non-zero exit, and nothing left
# behind. A second run changes nothing that is already as it should be, and
# restarts the service only when its release, unit or config changed.
#
# Knobs for tests and odd devices (environment): FLOTILLA_INSTALL_ARCH (instead
# of `uname -m`), FLOTILLA_DOCKER_SOCKET (default /var/run/docker.sock).
# shellcheck disable=SC2015  # `check && check || die` is meant: die when either check fails
set -eu
# The rest is one brace group, closed on the last line: sh reads all of it before it runs any
# of it, so a download cut short (curl … | sh) runs nothing, and a refusal does not close the
# pipe while curl is still writing the script into it ("curl: (23) Failed writing body").
{

served_hub=''
served_version=''

PREFIX=/opt/flotilla
BIN_LINK=/usr/local/bin/flotilla
UNIT_NAME=flotilla-agent.service
UNIT_PATH=/etc/systemd/system/$UNIT_NAME
CONTAINER=flotilla-agent
# Unpacked, a release is about 130 MB; room for it, its tarball, and the old release during an upgrade.
RELEASE_FREE_MB=400
# The agent's SQLite state and outbox stay small, but must never fill up first.
DATA_FREE_MB=64

usage() {
  cat <<'EOF'
usage: install.sh --token TOKEN [options]     install, register and start the Flotilla agent
       install.sh --uninstall [--keep-data]   remove what install added (apps' containers stay)

  --token TOKEN       registration token, from `flotilla token create` on the hub
  --hub URL           the hub's HTTP API (default: the hub this script was fetched from)
  --hub-mqtt URL      the MQTT URL the agent connects to (default: the one the hub announces)
  --label KEY=VALUE   a label this device reports (repeatable)
  --device-id ID      the device id to ask for (default: the hub chooses)
  --mode bundle|image bundle: the release under /opt/flotilla run by systemd (default);
                      image: the agent image run by Docker (--restart always)
  --image NAME        the agent image for --mode image (default: flotilla/agent:<version>)
  --version VERSION   the release to install (default: the hub's own)
  --data-dir DIR      the agent's state (default: /var/lib/flotilla-agent)
  --uninstall         remove the agent; --keep-data keeps its data dir (and so its identity)
EOF
}

say() { printf '%s\n' "$*"; }
die() {
  printf 'flotilla install: %s\n' "$*" >&2
  exit 1
}

token=''
hub="$served_hub"
hub_mqtt=''
labels=''
device_id=''
mode=bundle
image=''
version="$served_version"
data_dir=/var/lib/flotilla-agent
uninstall=''
keep_data=''

value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (--help for usage)"; }
while [ $# -gt 0 ]; do
  case "$1" in
  --token) value "$@"; token="$2"; shift 2 ;;
  --hub) value "$@"; hub="$2"; shift 2 ;;
  --hub-mqtt) value "$@"; hub_mqtt="$2"; shift 2 ;;
  --label)
    value "$@"
    case "$2" in *=*) ;; *) die "--label wants KEY=VALUE, got \"$2\"" ;; esac
    labels="$labels$2
"
    shift 2
    ;;
  --device-id) value "$@"; device_id="$2"; shift 2 ;;
  --mode) value "$@"; mode="$2"; shift 2 ;;
  --image) value "$@"; image="$2"; shift 2 ;;
  --version) value "$@"; version="$2"; shift 2 ;;
  --data-dir) value "$@"; data_dir="$2"; shift 2 ;;
  --uninstall) uninstall=1; shift ;;
  --keep-data) keep_data=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) die "unknown option \"$1\" (--help for usage)" ;;
  esac
done
case "$mode" in bundle | image) ;; *) die "--mode must be bundle or image, got \"$mode\"" ;; esac
case "$data_dir" in /*) ;; *) die "--data-dir must be an absolute path, got \"$data_dir\"" ;; esac
hub="${hub%/}"
sock="${FLOTILLA_DOCKER_SOCKET:-/var/run/docker.sock}"

# --- helpers -------------------------------------------------------------------------

# The deepest existing directory on the way to $1: where a new directory would be made.
existing_parent() {
  p="$1"
  while [ ! -d "$p" ]; do p="$(dirname "$p")"; done
  printf '%s\n' "$p"
}

# Fails unless $1 (a directory, made if missing) can be written, without leaving anything.
check_writable() {
  parent="$(existing_parent "$1")"
  probe="$(mktemp -d "$parent/.flotilla-install-probe.XXXXXX" 2>/dev/null)" ||
    die "data dir $1 is not writable ($parent: read-only or no permission); make it writable or choose another with --data-dir"
  rmdir "$probe"
}

check_free() { # dir, MB, what
  parent="$(existing_parent "$1")"
  free_kb="$(df -Pk "$parent" | awk 'NR == 2 { print $4 }')"
  [ "${free_kb:-0}" -ge $(($2 * 1024)) ] ||
    die "not enough disk for $3: $((${free_kb:-0} / 1024)) MB free under $parent, $2 MB needed; free some space (docker system prune, apt-get clean)"
}

check_docker() {
  [ -e "$sock" ] || die "no Docker Engine: $sock not found; install and start it: apt-get install docker.io && systemctl enable --now docker"
  [ -S "$sock" ] || die "$sock is not a socket; is the Docker Engine installed (apt-get install docker.io)?"
  curl -sS --max-time 10 --unix-socket "$sock" -o /dev/null http://localhost/_ping 2>/dev/null || {
    # Connecting needs write access to the socket file: without it, the engine may well be up.
    { [ -r "$sock" ] && [ -w "$sock" ]; } || die "no permission on $sock ($(stat -c '%U:%G %a' "$sock")): the agent runs as root and needs read-write access; give root access to it (Debian's is root:docker 660)"
    die "the Docker Engine does not answer on $sock; start it: systemctl start docker"
  }
}

check_hub() {
  [ -n "$hub" ] || die "no hub given: --hub http://HUB:7070 (or fetch this script from the hub: curl -fsSL http://HUB:7070/install.sh)"
  err="$(curl -fsS --max-time 10 -o /dev/null "$hub/healthz" 2>&1)" ||
    die "hub $hub unreachable (${err#curl: }); check --hub and that this device can reach it"
}

agent_config="$data_dir/agent.json"

# Prints a string field of the agent's config ("" when there is none).
config_field() {
  [ -f "$agent_config" ] || return 0
  sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" "$agent_config" | head -n 1
}
registered_id() { config_field deviceId; }

# The unit: one place, so install and docs/install.md describe the same file.
# Each hardening line says why it is there in docs/install.md.
unit_text() {
  cat <<EOF
# Written by the Flotilla install script (docs/install.md); --uninstall removes it.
[Unit]
Description=Flotilla agent: runs this device's apps as its hub desires
# Wants, not Requires: the agent outlives a Docker restart (it waits and adopts
# what runs), so stopping Docker must not stop it.
Wants=docker.service network-online.target
After=docker.service network-online.target
# Never give up restarting: nobody is at the device to reset a start limit.
StartLimitIntervalSec=0

[Service]
Type=simple
# The launcher starts current/bin/flotilla, and goes back to the previous release by
# itself when a new one fails its trial (docs/agent-upgrades.md).
ExecStart=$PREFIX/launch agent --data-dir $data_dir
Restart=always
RestartSec=5
# TERM to the main process only: the launcher, while it watches an agent on trial, passes
# it on (a second TERM would make the agent skip its graceful stop); the rest get KILL if
# they outlive it.
KillMode=mixed
Environment=NODE_ENV=production
UMask=0077
ProtectSystem=strict
# The prefix too: the agent upgrades itself there.
ReadWritePaths=$data_dir $PREFIX
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
SystemCallArchitectures=native
SystemCallFilter=@system-service @pkey
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
EOF
}

# --- uninstall -----------------------------------------------------------------------

if [ -n "$uninstall" ]; then
  [ "$(id -u)" = 0 ] || die "must run as root: curl -fsSL …/install.sh | sudo sh -s -- --uninstall"
  id="$(registered_id)"
  if [ -f "$UNIT_PATH" ]; then
    systemctl disable --now "$UNIT_NAME" >/dev/null 2>&1 || true
    rm -f "$UNIT_PATH"
    systemctl daemon-reload 2>/dev/null || true
    say "removed $UNIT_NAME"
  else
    say "$UNIT_NAME: not installed"
  fi
  if command -v docker >/dev/null 2>&1 && [ -n "$(docker ps -aq --filter "name=^/$CONTAINER\$" --filter label=org.flotilla.install 2>/dev/null)" ]; then
    docker rm -f "$CONTAINER" >/dev/null
    say "removed container $CONTAINER"
  fi
  # What an upgrade of the agent's image may have left: its swap container and the agent it replaced.
  if command -v docker >/dev/null 2>&1; then
    for leftover in "$CONTAINER-swap" "$CONTAINER-previous"; do
      if docker rm -f "$leftover" >/dev/null 2>&1; then say "removed container $leftover"; fi
    done
  fi
  if [ -L "$BIN_LINK" ] && case "$(readlink "$BIN_LINK")" in "$PREFIX"/*) true ;; *) false ;; esac then
    rm -f "$BIN_LINK"
    say "removed $BIN_LINK"
  fi
  if [ -d "$PREFIX" ]; then
    rm -rf "$PREFIX"
    say "removed $PREFIX"
  fi
  if [ -n "$keep_data" ]; then
    [ -d "$data_dir" ] && say "kept $data_dir (--keep-data)"
  elif [ -d "$data_dir" ]; then
    rm -rf "$data_dir"
    say "removed $data_dir"
  fi
  say "the containers of the apps it ran are left as they are (docker ps --filter label=flotilla.app)"
  [ -n "$id" ] && [ -z "$keep_data" ] && say "the hub still knows device $id: flotilla device revoke $id"
  exit 0
fi

# --- checks: nothing is changed until all of these pass ----------------------------------

[ "$(id -u)" = 0 ] || die "must run as root: curl -fsSL …/install.sh | sudo sh -s -- --token …"

machine="${FLOTILLA_INSTALL_ARCH:-$(uname -m)}"
case "$machine" in
x86_64 | amd64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) die "no release for $machine; supported: amd64, arm64" ;;
esac

for tool in curl tar gzip sha256sum df awk; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: apt-get install $tool"
done
if [ "$mode" = bundle ]; then
  command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ] ||
    die "systemd is not running here, and --mode bundle installs a systemd service; use --mode image (Docker restarts the agent)"
else
  command -v docker >/dev/null 2>&1 || die "--mode image needs the docker command: apt-get install docker.io"
fi

check_docker
check_writable "$data_dir"
check_free "$data_dir" "$DATA_FREE_MB" "the agent's data dir"
if [ "$mode" = bundle ]; then
  check_writable "$PREFIX"
  check_free "$PREFIX" "$RELEASE_FREE_MB" "the release"
fi

already_registered="$(registered_id)"
[ -n "$already_registered" ] || [ -n "$token" ] ||
  die "--token is required: make one on the hub with \`flotilla token create\`"
check_hub
[ -n "$version" ] || die "which release? --version X.Y.Z (a script fetched from the hub knows its version)"

staging=''
made=''
for dir in "$PREFIX" "$(dirname "$data_dir")"; do [ -d "$dir" ] || made="$made $dir"; done
# On a failure, what this run made goes again: the staging dir, and the folders made to hold it.
cleanup() {
  rc=$?
  [ -z "$staging" ] || rm -rf "$staging"
  if [ "$rc" -ne 0 ]; then
    for dir in $made; do rmdir "$dir" 2>/dev/null || true; done
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the release, or the image: fetched and checked, not yet in place ---------------------

bundle="flotilla-$version-linux-$arch.tar.gz"
release_dir="$PREFIX/$version"
release_new=''
if [ "$mode" = bundle ]; then
  sum="$(curl -fsS --max-time 30 "$hub/releases/$bundle.sha256" 2>/dev/null | awk '{ print $1 }')"
  [ -n "$sum" ] || die "the hub has no release $bundle; build it (docker/release-bundle.sh $arch) and start the hub with --releases-dir"
  mkdir -p "$PREFIX"
  staging="$(mktemp -d "$PREFIX/.staging.XXXXXX")"
  if [ -f "$release_dir/.sha256" ] && [ "$(cat "$release_dir/.sha256")" = "$sum" ]; then
    say "release $version ($arch): already installed"
  else
    say "downloading $bundle"
    curl -fsS --max-time 600 -o "$staging/$bundle" "$hub/releases/$bundle" ||
      die "could not download $hub/releases/$bundle; check the hub's --releases-dir and try again"
    printf '%s  %s\n' "$sum" "$staging/$bundle" | sha256sum -c --status ||
      die "$bundle does not match its checksum (a broken download?); run the script again"
    tar -xzf "$staging/$bundle" -C "$staging" || die "could not unpack $bundle; check the disk and run again"
    rm -f "$staging/$bundle"
    "$staging/flotilla/bin/flotilla" --version >/dev/null 2>&1 ||
      die "the $arch release does not run on this device ($(uname -m), $(uname -r)); is it the right architecture?"
    printf '%s\n' "$sum" >"$staging/flotilla/.sha256"
    release_new=1
  fi
  if [ -n "$release_new" ]; then release_src="$staging/flotilla"; else release_src="$release_dir"; fi
  flotilla_cmd="$release_src/bin/flotilla"
  # systemd starts the launcher, which rolls a bad agent back by itself (docs/agent-upgrades.md).
  [ -f "$release_src/docker/agent-launch.sh" ] ||
    die "release $version has no launcher (docker/agent-launch.sh): it is older than this script; install a newer one with --version"
else
  image="${image:-flotilla/agent:$version}"
  docker image inspect "$image" >/dev/null 2>&1 || docker pull -q "$image" >/dev/null 2>&1 ||
    die "cannot pull $image; push it to a registry this device reaches, or load it (docker load), or name another with --image"
  # An image that runs as a user of its own (USER uid:gid) gets its data dir and the socket's group.
  image_user="$(docker image inspect --format '{{.Config.User}}' "$image")"
  sock_group="$(stat -c %g "$sock")"
  mkdir -p "$(dirname "$data_dir")"
  staging="$(mktemp -d "$(dirname "$data_dir")/.flotilla-staging.XXXXXX")"
  [ -z "$image_user" ] || chown "$image_user" "$staging"
fi

# --- registration: the last step that can be refused, so a refusal leaves nothing ---------

registered=''
reason=''
if [ -n "$already_registered" ]; then
  say "device $already_registered: already registered ($agent_config)"
else
  # Everything register writes goes to the staging dir (the CLI may make its --data-dir), moved in only once it succeeded.
  set -- agent register --hub "$hub" --token "$token"
  [ -z "$device_id" ] || set -- "$@" --device-id "$device_id"
  [ -z "$hub_mqtt" ] || set -- "$@" --mqtt-url "$hub_mqtt"
  while IFS= read -r label; do
    [ -z "$label" ] || set -- "$@" --label "$label"
  done <<EOF
$labels
EOF
  if [ "$mode" = bundle ]; then
    out="$("$flotilla_cmd" "$@" --data-dir "$staging" --config "$staging/agent.json" 2>&1)" || reason="$out"
  else
    out="$(docker run --rm --network host --group-add "$sock_group" -v "$sock:/var/run/docker.sock" -v "$staging:/staging" "$image" "$@" --data-dir /staging --config /staging/agent.json 2>&1)" || reason="$out"
  fi
  if [ -n "$reason" ]; then
    line="$(printf '%s\n' "$reason" | grep -m 1 -v '^[[:space:]]*$' | sed 's/^error: //')"
    case "$line" in
    *token*) die "$line; make a new one on the hub: flotilla token create" ;;
    *) die "registration failed: $line" ;;
    esac
  fi
  registered=1
fi

# --- into place: only local steps from here on -------------------------------------------

changed=''
if [ -n "$release_new" ]; then
  rm -rf "$release_dir"
  mv "$staging/flotilla" "$release_dir"
  changed=1
fi
if [ "$mode" = bundle ]; then
  old="$(readlink "$PREFIX/current" 2>/dev/null || true)"
  if [ "$old" != "$version" ]; then
    # The release left becomes `previous`, the one the launcher goes back to if the agent's
    # next self-upgrade fails. Not when it is itself on trial (the agent upgraded to it and has
    # not confirmed it yet): `previous` stays the release last known good, and the trial ends
    # as a rollback would, recorded in upgrade/rolled-back, so the agent reports it and does not
    # try that revision again by itself. (Installing the release on trial changes nothing here:
    # the trial goes on.)
    on_trial="$(sed -n 's/^version=//p' "$PREFIX/upgrade/trial" 2>/dev/null | head -n 1)"
    if [ -n "$old" ] && [ -d "$PREFIX/$old" ] && [ "$old" != "$on_trial" ]; then
      ln -sfn "$old" "$PREFIX/.previous.new"
      mv -T "$PREFIX/.previous.new" "$PREFIX/previous"
    fi
    if [ -n "$on_trial" ] && [ "$old" = "$on_trial" ]; then
      trial_revision="$(sed -n 's/^revision=//p' "$PREFIX/upgrade/trial" | head -n 1)"
      printf 'version=%s\nrevision=%s\nreason=%s\nat=%s\nreported=0\n' "$on_trial" "$trial_revision" \
        "replaced by install.sh with $version while on trial" "$(date +%s)" >"$PREFIX/upgrade/rolled-back.tmp"
      mv -f "$PREFIX/upgrade/rolled-back.tmp" "$PREFIX/upgrade/rolled-back"
      rm -f "$PREFIX/upgrade/trial"
      say "release $on_trial was on trial: ended, recorded in $PREFIX/upgrade/rolled-back"
    fi
    # A rename over the old link: the switch to the new release is atomic.
    ln -sfn "$version" "$PREFIX/.current.new"
    mv -T "$PREFIX/.current.new" "$PREFIX/current"
    changed=1
    say "release $version: installed in $release_dir"
  fi
  # The launcher of the release installed, replaced by rename: a launcher running reads on from its old file.
  if cmp -s "$release_dir/docker/agent-launch.sh" "$PREFIX/launch"; then
    say "$PREFIX/launch: already installed"
  else
    install -m 0755 "$release_dir/docker/agent-launch.sh" "$PREFIX/.launch.new"
    mv -f "$PREFIX/.launch.new" "$PREFIX/launch"
    say "installed $PREFIX/launch"
  fi
  if [ "$(readlink "$BIN_LINK" 2>/dev/null)" = "$PREFIX/current/bin/flotilla" ]; then
    say "$BIN_LINK: already installed"
  else
    mkdir -p "$(dirname "$BIN_LINK")"
    ln -sfn "$PREFIX/current/bin/flotilla" "$BIN_LINK"
    say "linked $BIN_LINK"
  fi
fi

mkdir -p "$data_dir"
chmod 0700 "$data_dir"
[ "$mode" = bundle ] || [ -z "$image_user" ] || chown -R "$image_user" "$data_dir"
if [ -n "$registered" ]; then
  mv "$staging/agent.json" "$agent_config"
  changed=1
  say "device $(registered_id): registered with $hub"
fi

if [ "$mode" = bundle ]; then
  unit_text >"$staging/unit"
  if cmp -s "$staging/unit" "$UNIT_PATH"; then
    say "$UNIT_NAME: already installed"
  else
    install -m 0644 "$staging/unit" "$UNIT_PATH"
    systemctl daemon-reload
    changed=1
    say "wrote $UNIT_PATH"
  fi
  if systemctl is-enabled --quiet "$UNIT_NAME" 2>/dev/null; then :; else systemctl enable --quiet "$UNIT_NAME"; fi
  if ! systemctl is-active --quiet "$UNIT_NAME"; then
    systemctl start "$UNIT_NAME"
    say "started $UNIT_NAME"
  elif [ -n "$changed" ]; then
    systemctl restart "$UNIT_NAME"
    say "restarted $UNIT_NAME"
  else
    say "$UNIT_NAME: already running"
  fi
  # Type=simple returns at once: a release that cannot run shows as a restart loop, so watch it a
  # moment. Counted from here: restarts of a release that crashed before this run do not count.
  restarts="$(systemctl show -p NRestarts --value "$UNIT_NAME")"
  sleep 3
  systemctl is-active --quiet "$UNIT_NAME" && [ "$(systemctl show -p NRestarts --value "$UNIT_NAME")" = "$restarts" ] ||
    die "$UNIT_NAME does not stay up; see why: journalctl -u $UNIT_NAME"
  # Older releases: kept until the new one is running, then dropped, but for the ones `current`
  # and `previous` name (the links, the launcher and upgrade/ are not releases).
  keep_previous="$(readlink "$PREFIX/previous" 2>/dev/null || true)"
  for dir in "$PREFIX"/*; do
    case "${dir##*/}" in "$version" | "$keep_previous" | current | previous | launch | upgrade) continue ;; esac
    [ -d "$dir" ] && [ ! -L "$dir" ] && rm -rf "$dir"
  done
else
  # The image's own FLOTILLA_HUB_URL would win over the config's, so the registered URL is passed as a flag.
  hub_url="$(config_field hubUrl)"
  spec="$(docker image inspect --format '{{.Id}}' "$image") $data_dir $sock $hub_url"
  if [ -z "$changed" ] && [ "$(docker inspect --format '{{index .Config.Labels "org.flotilla.install"}} {{.State.Running}}' "$CONTAINER" 2>/dev/null)" = "$spec true" ]; then
    say "container $CONTAINER: already running"
  else
    docker rm -f "$CONTAINER" >/dev/null 2>&1 || true
    # Host network: the agent reaches the hub as the device does, and reports the device's addresses.
    # The host's /dev/shm: the agent's log ledger lives there and must outlive a restart of this container.
    docker run -d --name "$CONTAINER" --restart always --network host \
      --label "org.flotilla.install=$spec" --group-add "$sock_group" \
      -v "$sock:/var/run/docker.sock" -v "$data_dir:/var/lib/flotilla-agent" -v /dev/shm:/dev/shm \
      -e "FLOTILLA_AGENT_CONTAINER=$CONTAINER" \
      "$image" agent --data-dir /var/lib/flotilla-agent --hub-url "$hub_url" >/dev/null
    say "started container $CONTAINER ($image)"
  fi
fi
say "done: device $(registered_id) runs the Flotilla agent ($mode)"
}
