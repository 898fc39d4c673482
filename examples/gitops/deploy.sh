#!/usr/bin/env bash
# Deploys the app specs of this repository to a Flotilla hub: what CI runs
# (docs/gitops.md).
#
#   on a pull request:    flotilla diff — prints what merging would change; fails
#                         only when the diff itself fails (exit 2+: invalid spec,
#                         hub unreachable, key refused), never because something changes.
#                         A viewer key is enough: the hub plans the apply, storing nothing.
#   on the main branch:   flotilla apply --prune — the hub's apps of this scope become
#                         the folder: new and edited specs applied as one unit, apps
#                         whose spec was deleted removed, and every new revision
#                         records the commit (git:<sha>, shown by `flotilla rollout history`).
#                         Needs an operator key.
#
# Environment (the flotilla CLI reads the first three itself):
#   FLOTILLA_HUB           the hub's HTTP API, e.g. https://hub.example:7070 (required)
#   FLOTILLA_TOKEN         a service account's key (required): for diff a viewer key
#                          (flotilla serviceaccount create ci-shop-diff --role viewer), so a
#                          pull request's job holds no key that can deploy; for apply an
#                          operator key (flotilla serviceaccount create ci-shop --role operator)
#   FLOTILLA_CA            a CA certificate file, for an https hub whose certificate the system does not trust
#   FLOTILLA_PRUNE_SCOPE   the name this folder's apps are recorded under; prune deletes only
#                          apps of this scope, never another team's or ones made by hand (required)
#   FLOTILLA_SPECS         the folder of specs, relative to this script's folder (default: apps)
#   DEPLOY_MODE            diff or apply; by default diff on a pull request and on every branch
#                          but MAIN_BRANCH (default main), apply on MAIN_BRANCH
#
# Usage: deploy.sh [diff|apply]   (an argument wins over DEPLOY_MODE)
set -euo pipefail

fail() {
  echo "deploy: $*" >&2
  exit 2
}

# From the script's folder, so messages name files as the repository does (apps/web.yaml).
cd "$(dirname "${BASH_SOURCE[0]}")"
specs=${FLOTILLA_SPECS:-apps}
scope=${FLOTILLA_PRUNE_SCOPE:-}
main_branch=${MAIN_BRANCH:-main}

command -v flotilla >/dev/null || fail "no flotilla command on PATH: npm install -g the release (docs/gitops.md, section CI, 'The CLI')"
command -v git >/dev/null || fail "no git command on PATH"
[ -n "${FLOTILLA_HUB:-}" ] || fail "FLOTILLA_HUB is not set: the hub's HTTP API, e.g. https://hub.example:7070"
[ -n "$scope" ] || fail "FLOTILLA_PRUNE_SCOPE is not set: the name this folder's apps are recorded under, e.g. the repository's name"
[ -d "$specs" ] || fail "no folder of specs at $specs (set FLOTILLA_SPECS)"

# The branch CI built, or the checkout's own when run by hand. A pull request
# is never the main branch, whatever its head branch is called.
branch() {
  if [ "${GITHUB_EVENT_NAME:-}" = pull_request ] || [ -n "${CI_MERGE_REQUEST_IID:-}" ]; then
    echo "(pull request)"
  elif [ -n "${GITHUB_REF_NAME:-}" ]; then
    echo "$GITHUB_REF_NAME"
  elif [ -n "${CI_COMMIT_BRANCH:-}" ]; then
    echo "$CI_COMMIT_BRANCH"
  else
    git -C "$specs" symbolic-ref --short -q HEAD || echo "(detached)"
  fi
}

mode=${1:-${DEPLOY_MODE:-}}
if [ -z "$mode" ]; then
  current=$(branch)
  if [ "$current" = "$main_branch" ]; then mode='apply'; else mode='diff'; fi
  echo "deploy: $current: $mode"
fi

# The key each mode needs, for the messages: diff only asks for the hub's plan.
case $mode in
  diff) key='a viewer key (flotilla serviceaccount create ci-shop-diff --role viewer)' ;;
  apply) key='an operator key (flotilla serviceaccount create ci-shop --role operator)' ;;
  *) fail "unknown mode '$mode': diff or apply" ;;
esac
[ -n "${FLOTILLA_TOKEN:-}" ] || fail "FLOTILLA_TOKEN is not set: $mode needs $key, kept as a CI secret"

case $mode in
  diff)
    # diff exits 0 for no change, 1 for changes and 2 or more for errors (as kubectl diff).
    status=0
    flotilla diff -f "$specs" --prune --prune-scope "$scope" || status=$?
    case $status in
      0) echo "deploy: the hub already matches $specs" ;;
      1) echo "deploy: the changes above are applied when this reaches $main_branch" ;;
      4)
        # Every role may diff: a refusal here is a key that is not valid (revoked, mistyped).
        echo "deploy: flotilla diff failed (exit 4): the hub refused FLOTILLA_TOKEN; diff needs a valid key of any role, $key is enough" >&2
        exit 4
        ;;
      *)
        echo "deploy: flotilla diff failed (exit $status): nothing can be applied until this is fixed" >&2
        exit "$status"
        ;;
    esac
    ;;
  apply)
    # The revisions will name this commit, so it must be exactly what is applied.
    if [ -n "$(git -C "$specs" status --porcelain -- .)" ]; then
      fail "$specs has uncommitted changes: commit them first, so the revisions name the commit that holds them"
    fi
    commit=$(git -C "$specs" rev-parse HEAD)
    status=0
    flotilla apply -f "$specs" --prune --prune-scope "$scope" --source "git:$commit" || status=$?
    case $status in
      0) echo "deploy: applied $specs at $commit (scope $scope)" ;;
      4)
        # A viewer key gets as far as the plan (and its prune list) and no further.
        echo "deploy: flotilla apply failed (exit 4): the hub refused FLOTILLA_TOKEN; apply needs $key; a viewer key only diffs" >&2
        exit 4
        ;;
      *)
        echo "deploy: flotilla apply failed (exit $status): see the error above" >&2
        exit "$status"
        ;;
    esac
    ;;
esac
