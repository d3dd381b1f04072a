# tests/bench/dispatch.sh: the dispatch benchmark, sourced by tests/bench/run (which has parsed
# the arguments, built kefu-broker, kefu-dispatch, kefuctl and kefu-bench, and set up the run
# directory, its cleanup and the helpers: log, free_ports, wait_until,
# pids, forget, start_redis, write_conf, redis_python).
# Starts a private redis-server and kefu-broker (shop.config reaches kefu-dispatch through it);
# the phases are tests/bench/dispatch_bench.py. Figures: see `tests/bench/run --help`.
# shellcheck shell=bash disable=SC2034,SC2154 # variables shared with tests/bench/run

redis_python
start_redis
write_conf "[log]
level = info"

"$bin/kefu-broker" -c "$run/kefu.conf" >"$run/broker.log" 2>&1 &
pids+=($!)
wait_until 15 curl -fsS "http://127.0.0.1:$p_http/healthz" ||
    { echo "tests/bench/run: kefu-broker did not become healthy:" >&2; tail -20 "$run/broker.log" >&2; exit 1; }

log "dispatch: $events actions, $(nproc) CPUs, run dir $run"
"$py" "$repo/tests/bench/dispatch_bench.py" --bin "$bin" --conf "$run/kefu.conf" --run "$run" \
    --redis-port "$p_redis" --events "$events" &
bench_pid=$!
pids+=("$bench_pid")
rc=0
wait "$bench_pid" || rc=$?
forget "$bench_pid"
((rc == 0)) || { echo "tests/bench/run: dispatch_bench.py failed (exit $rc)" >&2; exit 1; }
