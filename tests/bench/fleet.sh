# tests/bench/fleet.sh: the fleet benchmark, sourced by tests/bench/run (which has parsed the
# arguments, built kefu-broker, the four workers and kefuctl, and set up the run directory, its
# cleanup and the helpers: log, free_ports, wait_until, pids, forget, start_redis, write_conf,
# redis_python).
# Starts a private redis-server (no persistence) and writes the config; the phases (a fresh
# kefu-broker each, the sim published, the workers' catch-ups, memory by key family, the SET
# reference) are tests/bench/fleet_bench.py. Figures: see `tests/bench/run --help`.
# shellcheck shell=bash disable=SC2034,SC2154 # variables shared with tests/bench/run

redis_python
start_redis
# the shipped defaults but the simulated clock and a journal that holds the whole stream
write_conf "[clock]
mode = simulated
[log]
level = info
[broker]
journal_maxlen = $((events * 2 > 1000000 ? events * 2 : 1000000))"

log "fleet: about $events events, $(nproc) CPUs, run dir $run"
"$py" "$repo/tests/bench/fleet_bench.py" --bin "$bin" --conf "$run/kefu.conf" --run "$run" \
    --redis-port "$p_redis" --events "$events" &
bench_pid=$!
pids+=("$bench_pid")
rc=0
wait "$bench_pid" || rc=$?
forget "$bench_pid"
((rc == 0)) || { echo "tests/bench/run: fleet_bench.py failed (exit $rc)" >&2; exit 1; }
