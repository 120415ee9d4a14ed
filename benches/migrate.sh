#!/usr/bin/env bash
# Project-migration benchmark, run by hand (never in CI, never as a timed test):
#
#   benches/migrate.sh [case...]        cases: live whole offline large (default: live large)
#
#   live     group `bench` of forge-sim's `medium` dataset (20 projects, 20,000 issues, 5,000
#            merge requests, 100,000 notes nested in them) migrated live into an `empty` simulator:
#            `appliance migrate --group bench --to imported`.
#   whole    `live` from a source that refuses the relation export (404 on POST .../export_relations,
#            as a GitLab before 16.2): each project is read from its whole export instead.
#   offline  the same through a bundle: `appliance export` then `appliance replay`.
#   large    one project (`bench/service-00`) whose repository is LARGE_MIB MiB of incompressible
#            blobs (forge-sim --large-repository-mib) with LARGE_LFS_MIB MiB of LFS objects
#            (--large-lfs-mib), migrated live.
#
# Environment: RUNS (default 3), LATENCY_MS (default 50, added by both simulators to every request),
# LARGE_MIB (default 2048), LARGE_LFS_MIB (default 1024), BENCH_TMP (where data, bundles and
# repositories go; default $TMPDIR or /tmp; the large case needs about 6 x (LARGE_MIB + LARGE_LFS_MIB)
# free there), CARGO_TARGET_DIR, APPLIANCE_BIN (an appliance binary to measure instead of this tree's,
# e.g. a build of an earlier commit to compare),
# NO_BUILD=1 (use the binaries already built).
#
# Each run starts fresh simulators and an empty data directory and runs the appliance under
# `/usr/bin/time -v`. Printed per run and as medians over the runs: wall time, peak RSS of the
# appliance itself and of the largest process of the run (the appliance or a git it runs), records imported per second for each relation (the `--json` report's `imported` over the
# run's wall time; notes travel inside their issues and merge requests and the report does not count
# them), and requests per 1,000 records (every request both simulators answered, from
# `GET /-/sim/requests`, over the records the report counts as imported, and over those plus the notes
# the destination holds, read from it after the counters). The requests that dominate are listed with their
# ids folded to `:id`. Tokens go to the appliance in its environment, never on a command line.
set -euo pipefail

RUNS=${RUNS:-3}
LATENCY_MS=${LATENCY_MS:-50}
LARGE_MIB=${LARGE_MIB:-2048}
LARGE_LFS_MIB=${LARGE_LFS_MIB:-1024}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(live large)

for tool in jq curl git /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "benches/migrate.sh needs $tool" >&2; exit 1; }
done

if [ "${NO_BUILD:-0}" != 1 ]; then
    echo "building release binaries..." >&2
    (cd "$ROOT" && cargo build --release --quiet -p appliance --bin appliance -p forge-sim --bin forge-sim)
fi
APPLIANCE=${APPLIANCE_BIN:-$TARGET/release/appliance}
SIM=$TARGET/release/forge-sim

WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/appliance-bench.XXXXXX")
SIM_PIDS=()
cleanup() {
    for pid in "${SIM_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${SIM_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# start_sim NAME ARGS...: starts forge-sim, waits for its JSON line; sets NAME_url and NAME_token.
start_sim() {
    local name=$1
    shift
    rm -f "$WORK/$name.json"
    "$SIM" --latency-ms "$LATENCY_MS" "$@" >"$WORK/$name.json" 2>"$WORK/$name.log" &
    SIM_PIDS+=($!)
    local pid=$! waited=0
    until [ -s "$WORK/$name.json" ]; do
        kill -0 "$pid" 2>/dev/null || { echo "forge-sim ($name) died:" >&2; cat "$WORK/$name.log" >&2; exit 1; }
        sleep 0.2
        waited=$((waited + 1))
        # Seeding a large repository takes minutes on a busy machine.
        [ $waited -lt 18000 ] || { echo "forge-sim ($name) did not start within an hour" >&2; exit 1; }
    done
    printf -v "${name}_url" '%s' "$(jq -r .url "$WORK/$name.json")"
    printf -v "${name}_token" '%s' "$(jq -r .owner_token "$WORK/$name.json")"
}

stop_sims() {
    for pid in "${SIM_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${SIM_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    SIM_PIDS=()
}

# timed LABEL ARGS...: runs the appliance under /usr/bin/time -v; its report in $WORK/LABEL.json.
# /usr/bin/time's peak RSS is the largest of the appliance and the git processes it runs; the
# appliance's own peak (VmHWM of its /proc status, sampled twice a second) goes to $WORK/LABEL.hwm.
timed() {
    local label=$1
    shift
    /usr/bin/time -v -o "$WORK/$label.time" "$APPLIANCE" "$@" >"$WORK/$label.json" 2>"$WORK/$label.err" &
    local timer=$! own="" hwm=0
    while kill -0 "$timer" 2>/dev/null; do
        [ -n "$own" ] || own=$(pgrep -P "$timer" | head -n 1 || true)
        if [ -n "$own" ]; then
            local now
            now=$(awk '/^VmHWM:/ {print $2}' "/proc/$own/status" 2>/dev/null || true)
            [ -z "$now" ] || [ "$now" -le "$hwm" ] || hwm=$now
        fi
        sleep 0.5
    done
    echo "$hwm" >"$WORK/$label.hwm"
    if ! wait "$timer"; then
        echo "appliance $1 failed:" >&2
        tail -n 20 "$WORK/$label.err" >&2
        exit 1
    fi
}

# Seconds of wall time and peak RSS (KiB) from a /usr/bin/time -v file.
wall_s() {
    awk -F': ' '/Elapsed \(wall clock\)/ {
        n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$1"
}
rss_kib() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

requests() { curl -fsS "$1/-/sim/requests"; }

# notes_at URL TOKEN: the notes on the issues and merge requests of every project under `imported`
# (their `user_notes_count`), read after the request counters so they do not count. The token goes
# to curl in a header file, never on its command line.
notes_at() {
    local base=$1/api/v4 header=$WORK/notes.header
    (umask 077 && printf 'PRIVATE-TOKEN: %s\n' "$2" >"$header")
    local projects
    projects=$(curl -fsS -H @"$header" "$base/groups/imported/projects?include_subgroups=true&per_page=100" | jq -r '.[].id')
    for id in $projects; do
        for kind in issues merge_requests; do
            local page=1
            while :; do
                local got
                got=$(curl -fsS -H @"$header" "$base/projects/$id/$kind?state=all&per_page=100&page=$page" |
                    jq '[length, (map(.user_notes_count // 0) | add // 0)] | @tsv' -r)
                echo "${got#*$'\t'}"
                [ "${got%%$'\t'*}" -eq 100 ] || break
                page=$((page + 1))
            done
        done
    done | awk '{s += $1} END {print s + 0}'
    rm -f "$header"
}

# The run's numbers as one JSON object: case, wall, rss, requests, records, per relation, top requests.
summarize() {
    local case=$1 wall=$2 rss=$3 own=$4 notes=$5 report=$6
    shift 6
    jq -s --arg case "$case" --argjson wall "$wall" --argjson rss "$rss" --argjson own "$own" --argjson notes "$notes" '
        (.[0]) as $report | (.[1:]) as $counts |
        ([$report.entities[].stats[] | select(.imported > 0) | {relation, imported}]
            | group_by(.relation) | map({key: .[0].relation, value: (map(.imported) | add)})
            | from_entries) as $rel |
        ([$counts[].total] | add) as $req |
        ([$rel[]] | add) as $records |
        {case: $case, wall_s: $wall, rss_mib: ($rss / 1024), own_rss_mib: ($own / 1024), requests: $req, records: $records,
         req_per_1000: (if $records > 0 then $req * 1000 / $records else null end),
         notes: $notes,
         req_per_1000_with_notes: (if $records + $notes > 0 then $req * 1000 / ($records + $notes) else null end),
         per_s: ($rel | map_values(. / $wall)),
         failures: ([$report.entities[].failures | length] | add),
         top: ([$counts[].by_request | to_entries[]
                | {key: (.key | gsub("/[0-9]+"; "/:id")), value}]
               | group_by(.key) | map({key: .[0].key, value: (map(.value) | add)})
               | sort_by(-.value) | .[:8] | from_entries)}
    ' "$report" "$@"
}

run_live() {
    local n=$1 case=${2:-live}
    start_sim src --dataset medium
    start_sim dst --dataset empty
    if [ "$case" = whole ]; then
        curl -fsS -X PUT -H 'Content-Type: application/json' "$src_url/-/sim/faults" \
            -d '{"latency_ms": '"$LATENCY_MS"', "reject": [{"method": "POST", "path_contains": "/export_relations", "status": 404, "message": "404 Not Found"}]}' >/dev/null
    fi
    APPLIANCE_SOURCE_TOKEN=$src_token APPLIANCE_DESTINATION_TOKEN=$dst_token \
        timed "live$n" migrate --json --group bench --to imported \
        --source-url "$src_url" --destination-url "$dst_url" --data "$WORK/data-live$n"
    requests "$src_url" >"$WORK/live$n.src-req"
    requests "$dst_url" >"$WORK/live$n.dst-req"
    local notes
    notes=$(notes_at "$dst_url" "$dst_token")
    stop_sims
    summarize "$case" "$(wall_s "$WORK/live$n.time")" "$(rss_kib "$WORK/live$n.time")" \
        "$(cat "$WORK/live$n.hwm")" "$notes" \
        "$WORK/live$n.json" "$WORK/live$n.src-req" "$WORK/live$n.dst-req" >"$WORK/result-$case-$n.json"
    rm -rf "$WORK/data-live$n"
}

run_whole() { run_live "$1" whole; }

run_offline() {
    local n=$1
    start_sim src --dataset medium
    start_sim dst --dataset empty
    APPLIANCE_SOURCE_TOKEN=$src_token \
        timed "export$n" export --json --group bench --out "$WORK/bench$n.bundle" \
        --source-url "$src_url" --data "$WORK/data-export$n"
    APPLIANCE_DESTINATION_TOKEN=$dst_token \
        timed "replay$n" replay --json "$WORK/bench$n.bundle" --to imported \
        --destination-url "$dst_url" --data "$WORK/data-replay$n"
    requests "$src_url" >"$WORK/export$n.src-req"
    requests "$dst_url" >"$WORK/replay$n.dst-req"
    local notes
    notes=$(notes_at "$dst_url" "$dst_token")
    stop_sims
    summarize export "$(wall_s "$WORK/export$n.time")" "$(rss_kib "$WORK/export$n.time")" \
        "$(cat "$WORK/export$n.hwm")" "$notes" \
        "$WORK/export$n.json" "$WORK/export$n.src-req" >"$WORK/result-export-$n.json"
    summarize replay "$(wall_s "$WORK/replay$n.time")" "$(rss_kib "$WORK/replay$n.time")" \
        "$(cat "$WORK/replay$n.hwm")" "$notes" \
        "$WORK/replay$n.json" "$WORK/replay$n.dst-req" >"$WORK/result-replay-$n.json"
    echo "bundle: $(du -m "$WORK/bench$n.bundle" | cut -f1) MiB" >&2
    rm -rf "$WORK/data-export$n" "$WORK/data-replay$n" "$WORK/bench$n.bundle"
}

run_large() {
    local n=$1
    echo "seeding a ${LARGE_MIB} MiB repository..." >&2
    start_sim src --dataset medium --large-repository-mib "$LARGE_MIB" --large-lfs-mib "$LARGE_LFS_MIB"
    start_sim dst --dataset empty
    APPLIANCE_SOURCE_TOKEN=$src_token APPLIANCE_DESTINATION_TOKEN=$dst_token \
        timed "large$n" migrate --json --project bench/service-00 --to imported \
        --source-url "$src_url" --destination-url "$dst_url" --data "$WORK/data-large$n"
    requests "$src_url" >"$WORK/large$n.src-req"
    requests "$dst_url" >"$WORK/large$n.dst-req"
    local notes
    notes=$(notes_at "$dst_url" "$dst_token")
    stop_sims
    summarize large "$(wall_s "$WORK/large$n.time")" "$(rss_kib "$WORK/large$n.time")" \
        "$(cat "$WORK/large$n.hwm")" "$notes" \
        "$WORK/large$n.json" "$WORK/large$n.src-req" "$WORK/large$n.dst-req" >"$WORK/result-large-$n.json"
    rm -rf "$WORK/data-large$n"
}

for case in "${CASES[@]}"; do
    case $case in
    live | whole | offline | large) ;;
    *) echo "unknown case $case (live, whole, offline, large)" >&2; exit 2 ;;
    esac
    for n in $(seq 1 "$RUNS"); do
        echo "== $case run $n/$RUNS" >&2
        "run_$case" "$n"
        for r in "$WORK"/result-*-"$n".json; do
            jq -c 'del(.top)' "$r" >&2
        done
    done
done

echo
echo "Medians over $RUNS runs (latency ${LATENCY_MS} ms per request on both simulators):"
for result in live whole export replay large; do
    files=("$WORK"/result-"$result"-*.json)
    [ -e "${files[0]}" ] || continue
    jq -s -r '
        def median: sort | if length == 0 then null
            elif length % 2 == 1 then .[length / 2 | floor]
            else (.[length / 2 - 1] + .[length / 2]) / 2 end;
        def r: . * 10 | round / 10;
        "\n[\(.[0].case)] runs: \(length)",
        "  wall time           \(map(.wall_s) | median | r) s   (runs: \(map(.wall_s | r) | join(", ")))",
        "  peak RSS, appliance \(map(.own_rss_mib) | median | r) MiB   (runs: \(map(.own_rss_mib | r) | join(", ")))",
        "  peak RSS, any child \(map(.rss_mib) | median | r) MiB   (largest of the appliance and its git processes, /usr/bin/time)",
        "  records imported    \(map(.records) | median)   failures: \(map(.failures) | median)",
        "  requests            \(map(.requests) | median)",
        "  requests/1000 rec.  \(map(.req_per_1000 // 0) | median | r)   (records the report counts)",
        "  notes at the dest.  \(map(.notes) | median)",
        "  requests/1000 rec.  \(map(.req_per_1000_with_notes // 0) | median | r)   (notes counted as records too)",
        "  records/s per relation:",
        ((.[0].per_s | keys_unsorted) as $k | $k[] as $rel
            | "    \($rel | . + " " * (28 - length))\(map(.per_s[$rel] // 0) | median | r)"),
        "  most frequent requests (last run):",
        (.[-1].top | to_entries[] | "    \(.value)\t\(.key)")
    ' "${files[@]}"
done
