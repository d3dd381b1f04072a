# tests/bench/pay_reminder.sh: the pay-reminder benchmark, sourced by tests/bench/run (which
# has parsed the arguments, built kefu-broker, kefu-pay-reminder and kefuctl, and set up the run
# directory, its cleanup and the helpers: log, free_ports, wait_until,
# pids, forget, start_redis, write_conf, redis_python).
# Figures: see `tests/bench/run --help`.
# shellcheck shell=bash disable=SC2034,SC2154 # variables shared with tests/bench/run

helper=$repo/tests/bench/pay_reminder_bench.py

# cpu_s PID: user + system CPU seconds of PID so far
cpu_s() {
    awk -v tck="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / tck }' "/proc/$1/stat"
}

# rcli ARGS...: redis-cli on the private redis
rcli() {
    redis-cli -p "$p_redis" "$@"
}

# cmdstats: the commands Redis spent most time in since the last CONFIG RESETSTAT (inner
# redis.call commands of the scripts are counted too), e.g. "evalsha 200000x 60.1us, ..."
cmdstats() {
    rcli info commandstats | tr -d '\r' | awk -F'[:=,]' '/^cmdstat_/ {
        sub(/^cmdstat_/, "", $1); printf "%d %s %sx %.1fus\n", $5, $1, $3, $7 }' |
        sort -rn | awk -v n="${1:-6}" 'NR <= n' | cut -d' ' -f2- | paste -sd, - | sed 's/,/, /g'
}

# evalsha_us: Redis's time per step (FCALL, or EVALSHA of an older build: the function's
# run, inner commands included, not the request's reading and parsing) since the last
# CONFIG RESETSTAT
evalsha_us() {
    rcli info commandstats | tr -d '\r' | awk -F'[:=,]' '($1 == "cmdstat_evalsha" || $1 == "cmdstat_fcall") && $3 > n { n = $3; v = $7 } END { print v + 0 }'
}

# ------------------------------------------------------------------ redis
start_redis
redis_pid=$(rcli info server | tr -d '\r' | awk -F: '$1 == "process_id" { print $2 }')

log "$events events / reference calls, $(nproc) CPUs, run dir $run"

# ------------------------------------------------------------------ a. the SET reference
# DESIGN §8: Redis CPU is counted in SET-equivalents, redis-server's CPU per SET of
# redis-benchmark -P 64 -t set on the same server in the same run
log "a. reference: redis-benchmark -P 64 -t set, $events SETs"
cpu0=$(cpu_s "$redis_pid")
redis-benchmark -p "$p_redis" -n "$events" -P 64 -r 1000000 -t set --csv >"$run/ref.csv" 2>"$run/ref.err" ||
    { echo "tests/bench/run: redis-benchmark failed:" >&2; tail -5 "$run/ref.err" >&2; exit 1; }
set_cpu=$(awk -v a="$cpu0" -v b="$(cpu_s "$redis_pid")" 'BEGIN { printf "%.3f", b - a }')
set_us=$(awk -v c="$set_cpu" -v n="$events" 'BEGIN { printf "%.3f", c * 1e6 / n }')
log "   redis-server CPU ${set_cpu}s: ${set_us} us per SET"
rcli flushall >/dev/null

# ------------------------------------------------------------------ b. the worker
write_conf "[clock]
mode = simulated
[log]
level = info
heartbeat_ms = 100
[broker]
journal_maxlen = $((events + 1000 > 1000000 ? events + 1000 : 1000000))
[pay-reminder]
ckpt_ms = 50"

"$bin/kefu-broker" -c "$run/kefu.conf" >"$run/broker.log" 2>&1 &
pids+=($!)
wait_until 15 curl -fsS "http://127.0.0.1:$p_http/healthz" ||
    { echo "tests/bench/run: kefu-broker did not become healthy:" >&2; tail -20 "$run/broker.log" >&2; exit 1; }

# the stream: kefuctl sim (about 1.94 events per order, 288 ticks a day), cut to N events
if "$bin/kefuctl" sim --help >/dev/null 2>&1; then
    days=$((events >= 400000 ? 10 : events >= 100000 ? 5 : 1))
    orders=$(((events - 288 * days - 20) * 110 / (10 * days * 194) + 1))
    ((orders > 0)) || orders=1
    sim_cmd=(sim --shops 10 --days "$days" --orders "$orders" --seed 1 --tail 0 --no-history --no-logistics --no-care)
    "$bin/kefuctl" "${sim_cmd[@]}" >"$run/sim.ndjson" 2>"$run/sim.err" ||
        { echo "tests/bench/run: kefuctl sim failed:" >&2; cat "$run/sim.err" >&2; exit 1; }
    stream="kefuctl ${sim_cmd[*]}"
else
    python3 "$helper" sim "$events" 1 >"$run/sim.ndjson"
    stream="tests/bench/pay_reminder_bench.py sim (kefuctl sim not built)"
fi
head -n "$events" "$run/sim.ndjson" >"$run/stream.ndjson"
rm -f "$run/sim.ndjson"
nstream=$(wc -l <"$run/stream.ndjson")
mix=$(python3 -c '
import collections, json, sys
c = collections.Counter(json.loads(l)["topic"] for l in open(sys.argv[1]))
print(", ".join("%s %d" % kv for kv in c.most_common()))' "$run/stream.ndjson")
log "b. kefu-pay-reminder catching up on $nstream events: $stream"
log "   $mix"
t0=$(date +%s.%N)
"$bin/kefuctl" -c "$run/kefu.conf" pub --quiet --file "$run/stream.ndjson" >"$run/pub.out" 2>&1 ||
    { echo "tests/bench/run: kefuctl pub failed:" >&2; tail -5 "$run/pub.out" >&2; exit 1; }
head_seq=$(rcli get kefu:seq)
log "   published in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s (not timed): journal head seq $head_seq, length $(rcli xlen kefu:journal)"

timeout_s=$((events / 200 > 120 ? events / 200 : 120))
rcli config resetstat >/dev/null
python3 "$helper" catchup "$p_redis" "$head_seq" "$timeout_s" -- \
    "$bin/kefu-pay-reminder" -c "$run/kefu.conf" >"$run/catchup.out" 2>"$run/worker.log" &
catchup_pid=$!
pids+=("$catchup_pid")
wait "$catchup_pid" || true
forget "$catchup_pid"
if [[ $(field caught_up "$run/catchup.out") != 1 ]]; then
    echo "tests/bench/run: kefu-pay-reminder did not catch up within ${timeout_s}s ($(tr '\n' ' ' <"$run/catchup.out"))" >&2
    tail -20 "$run/worker.log" >&2
    exit 1
fi
secs=$(field seconds "$run/catchup.out")
w_cpu=$(field worker_cpu_s "$run/catchup.out")
r_cpu=$(field redis_cpu_s "$run/catchup.out")
rss_kb=$(field worker_peak_rss_kb "$run/catchup.out")
w_cmds=$(cmdstats 8)
w_script_us=$(evalsha_us)
w_payload=$(rcli eval "local n, s, c = 0, 0, '0'
    repeat
      local r = redis.call('SCAN', c, 'MATCH', 'kefu:timer:pay-reminder:*', 'COUNT', 10000)
      c = r[1]
      for _, k in ipairs(r[2]) do n = n + 1; s = s + redis.call('STRLEN', k) end
    until c == '0' or n >= 200
    return n > 0 and math.floor(s / n) or 0" 0)
w_us=$(awk -v c="$w_cpu" -v n="$head_seq" 'BEGIN { printf "%.1f", c * 1e6 / n }')
r_us=$(awk -v c="$r_cpu" -v n="$head_seq" 'BEGIN { printf "%.1f", c * 1e6 / n }')
log "   caught up in ${secs}s: worker CPU ${w_cpu}s (${w_us} us/event), redis-server CPU ${r_cpu}s (${r_us} us/event), peak RSS ${rss_kb} kB"
log "   $(rcli xlen kefu:actions) actions, $(rcli xlen kefu:blocked) blocked, timer payload ~${w_payload} bytes, worker exit $(field worker_exit "$run/catchup.out")"
log "   redis time by command: $w_cmds"
errs=$(grep -c -i -E 'failed|unexpected reply' "$run/worker.log" || true)
((errs == 0)) || log "   warning: $errs error line(s) in the worker's log, e.g. $(grep -m1 -i -E 'failed|unexpected reply' "$run/worker.log")"

# ------------------------------------------------------------------ figures
pr_eps=$(awk -v n="$head_seq" -v s="$secs" 'BEGIN { printf "%d", (s > 0 ? n / s + 0.5 : 0) }')
set_eq=$(awk -v a="$r_us" -v b="$set_us" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')
echo "pay_reminder_eps $pr_eps"
echo "pay_reminder_redis_set_eq $set_eq"
echo "pay_reminder_redis_us_per_event $r_us"
echo "redis_set_us $set_us"
echo "pay_reminder_events $head_seq"
echo "pay_reminder_seconds $secs"
echo "pay_reminder_worker_cpu_s $w_cpu"
echo "pay_reminder_redis_cpu_s $r_cpu"
echo "pay_reminder_peak_rss_kb ${rss_kb:-0}"
awk -v r="$set_eq" 'BEGIN { exit !(r <= 5) }' || echo "missed: pay_reminder_redis_set_eq $set_eq > 5"
printf '{"bench":"pay-reminder","events":%d,"pay_reminder_eps":%d,"pay_reminder_redis_set_eq":%s,"redis_set_us":%s,"pay_reminder_seconds":%s,"worker_cpu_s":%s,"redis_cpu_s":%s,"worker_us_per_event":%s,"redis_us_per_event":%s,"worker_fcall_us":%s,"pay_reminder_peak_rss_kb":%d,"target_redis_set_eq":5}\n' \
    "$head_seq" "$pr_eps" "$set_eq" "$set_us" "$secs" "$w_cpu" "$r_cpu" "$w_us" "$r_us" "$w_script_us" \
    "${rss_kb:-0}"
