# tests/bench/fleet.sh: the fleet benchmark, sourced by tests/bench/run (which has parsed the
# arguments, built kefu-broker, the four workers and kefuctl, and set up the run directory, its
# cleanup and the helpers: log, free_ports, wait_until, pids, forget).
# Starts a private redis-server (no persistence) and writes the config; the phases (a fresh
# kefu-broker each, the sim published, the workers' catch-ups, memory by key family, the SET
# reference) are tests/bench/fleet_bench.py. Figures: see `tests/bench/run --help`.
# shellcheck shell=bash disable=SC2034,SC2154 # variables shared with tests/bench/run

# a python3 with the redis module (the pyenv one may lack it)
py=
for cand in /usr/bin/python3 python3; do
    if "$cand" -c 'import redis' 2>/dev/null; then
        py=$cand
        break
    fi
done
[[ -n $py ]] || { echo "tests/bench/run: fleet needs a python3 with the redis module" >&2; exit 2; }

read -r p_redis p_pub p_confirm p_sub p_http < <(free_ports 5)

redis-server --port "$p_redis" --bind 127.0.0.1 --dir "$run" --save '' --appendonly no \
    --daemonize no >"$run/redis.log" 2>&1 &
pids+=($!)
redis_port=$p_redis
wait_until 10 redis-cli -p "$p_redis" ping || { echo "tests/bench/run: redis-server did not start" >&2; exit 1; }

# the shipped defaults but the simulated clock and a journal that holds the whole stream
cat >"$run/kefu.conf" <<CONF
[redis]
url = redis://127.0.0.1:$p_redis/0
[bus]
publish = tcp://127.0.0.1:$p_pub
confirm = tcp://127.0.0.1:$p_confirm
subscribe = tcp://127.0.0.1:$p_sub
[http]
listen = 127.0.0.1:$p_http
[clock]
mode = simulated
[log]
level = info
[broker]
journal_maxlen = $((events * 2 > 1000000 ? events * 2 : 1000000))
CONF

log "fleet: about $events events, $(nproc) CPUs, run dir $run"
"$py" "$repo/tests/bench/fleet_bench.py" --bin "$bin" --conf "$run/kefu.conf" --run "$run" \
    --redis-port "$p_redis" --events "$events" &
bench_pid=$!
pids+=("$bench_pid")
rc=0
wait "$bench_pid" || rc=$?
forget "$bench_pid"
((rc == 0)) || { echo "tests/bench/run: fleet_bench.py failed (exit $rc)" >&2; exit 1; }
