# tests/bench/dispatch.sh: the dispatch benchmark, sourced by tests/bench/run (which has parsed
# the arguments, built kefu-broker, kefu-dispatch, kefuctl and kefu-bench, and set up the run
# directory, its cleanup and the helpers: log, free_ports, wait_until, pids, forget).
# Starts a private redis-server and kefu-broker (shop.config reaches kefu-dispatch through it);
# the phases are tests/bench/dispatch_bench.py. Figures: see `tests/bench/run --help`.
# shellcheck shell=bash disable=SC2034,SC2154 # variables shared with tests/bench/run

# a python3 with the redis module (the pyenv one may lack it)
py=
for cand in /usr/bin/python3 python3; do
    if "$cand" -c 'import redis' 2>/dev/null; then
        py=$cand
        break
    fi
done
[[ -n $py ]] || { echo "tests/bench/run: dispatch needs a python3 with the redis module" >&2; exit 2; }

read -r p_redis p_pub p_confirm p_sub p_http < <(free_ports 5)

redis-server --port "$p_redis" --bind 127.0.0.1 --dir "$run" --save '' --appendonly no \
    --daemonize no >"$run/redis.log" 2>&1 &
pids+=($!)
redis_port=$p_redis
wait_until 10 redis-cli -p "$p_redis" ping || { echo "tests/bench/run: redis-server did not start" >&2; exit 1; }

cat >"$run/kefu.conf" <<CONF
[redis]
url = redis://127.0.0.1:$p_redis/0
[bus]
publish = tcp://127.0.0.1:$p_pub
confirm = tcp://127.0.0.1:$p_confirm
subscribe = tcp://127.0.0.1:$p_sub
[http]
listen = 127.0.0.1:$p_http
[log]
level = info
CONF

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
