#!/usr/bin/env bash
# schemathesis (from PyPI) against a running `appliance serve`: every operation of
# /api/v4/openapi.json is called with generated valid and invalid requests, and none may answer a
# server error (5xx): a user's mistake is a 4xx, never a 500.
#
# It all runs in a network namespace of its own (`unshare --net`, loopback only): generated bodies
# name arbitrary source URLs, and the appliance must not reach any of them. A forge-sim `empty`
# instance is the destination, so that a create request is checked as it would be in production.
#
# Usage: scripts/schemathesis.sh   (after `cargo build --workspace --bins`, which it runs too)
# Env:   SCHEMATHESIS_MAX_EXAMPLES (default 40), SCHEMATHESIS_SEED (default 1, so that CI repeats
#        itself; change it to explore), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${APPLIANCE_SCHEMATHESIS_NETNS:-}" ]; then
  if ! command -v schemathesis >/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check schemathesis
  fi
  cargo build --quiet --workspace --bins
  exec unshare --net -- env APPLIANCE_SCHEMATHESIS_NETNS=1 bash "$0" "$@"
fi

ip link set lo up
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug"
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# Waits until FILE has a line starting with PREFIX, and prints that line.
wait_for_line() {
  local file="$1" prefix="$2"
  for _ in $(seq 1 100); do
    if line="$(grep -m1 "^$prefix" "$file" 2>/dev/null)"; then
      echo "$line"
      return 0
    fi
    sleep 0.1
  done
  echo "no line starting with '$prefix' in $file:" >&2
  cat "$file" "$file.err" >&2 || true
  return 1
}

# Starts a forge-sim with DATASET and sets <NAME>_url and <NAME>_token.
start_sim() {
  local name="$1" dataset="$2" line
  "$bin/forge-sim" --dataset "$dataset" >"$tmp/$name.out" 2>"$tmp/$name.out.err" &
  pids+=($!)
  line="$(wait_for_line "$tmp/$name.out" '{')"
  printf -v "${name}_url" '%s' "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["url"])' "$line")"
  printf -v "${name}_token" '%s' "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["owner_token"])' "$line")"
}
start_sim sim empty
start_sim src small

# The API token is generated into the data directory; no retries, so that a create naming a
# source that cannot be reached is refused at once.
APPLIANCE_DESTINATION_TOKEN="$sim_token" APPLIANCE_LOG=warn \
  "$bin/appliance" serve --listen 127.0.0.1:0 --data "$tmp/data" --destination-url "$sim_url" \
  --http-retries 0 >"$tmp/serve.out" 2>"$tmp/serve.out.err" &
pids+=($!)
api="$(wait_for_line "$tmp/serve.out" 'listening on ')"
api="${api#listening on }"
token="$(cat "$tmp/data/api-token")"

# One real migration first, so that bulk import 1 and entity 1 (the document's examples) exist and
# the operations that read them get past their 404.
curl -sf -o /dev/null -H "PRIVATE-TOKEN: $token" -H 'Content-Type: application/json' \
  --data "{\"configuration\": {\"url\": \"$src_url\", \"access_token\": \"$src_token\"},
           \"entities\": [{\"source_type\": \"group_entity\", \"source_full_path\": \"acme\",
                           \"destination_slug\": \"acme\", \"destination_namespace\": \"imported\"}]}" \
  "$api/api/v4/bulk_imports"

cd "$tmp"
# One worker: with several, hypothesis describing its filters in threads trips a CPython 3.11 bug
# ("AST constructor recursion depth mismatch") that ends the run with a runtime error.
status=0
schemathesis run "$api/api/v4/openapi.json" \
  --header "PRIVATE-TOKEN: $token" \
  --checks not_a_server_error \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-40}" \
  --seed "${SCHEMATHESIS_SEED:-1}" \
  --workers 1 \
  --request-timeout 20 \
  --output-sanitize true \
  --suppress-health-check all || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- appliance serve stderr ---" >&2
  tail -n 50 "$tmp/serve.out.err" >&2 || true
fi
exit "$status"
