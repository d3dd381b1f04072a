-- pay_reminder_ref.lua: the reference of `tests/bench/run pay-reminder` (DESIGN §8), run by
-- redis-benchmark as EVALSHA <sha> 0 <ARGV>, pipelined (-P 64), in the same run as the worker.
--
-- "Equivalent" means: the Redis work of kefu-pay-reminder's Lua step for one order.created
-- (kf_worker.lua run_event + pay_reminder.lua H['order.created'] + kf_sched.lua S.add, as of
-- "plan steps passed as raw JSON"), with the same commands on keys and values of the same
-- shape and size:
--   GET checkpoint, SET dedup NX EX, HEXISTS order, HGET buyer paid, HSET order (9 fields),
--   EXPIRE, per step (2) ZADD timer + SET payload EX (the step's JSON as passed, ~0.8 KB, the
--   payloads the worker stores), HINCRBY + EXPIRE stats, SET checkpoint, and a reply of the
--   same shape ({status, p, 0 actions, 0 blocks, 0}).
-- ARGV is laid out like the worker's (14 fixed arguments, then name/value pairs: okey, tid,
-- shop, bkey, skey, buyer, total, created, deadline, day, steps, d1, s1, d2, s2, rsteps, rd1,
-- rs1, rd2, rs2; ~3.7 KB per call); ARGV[3] (the seq) is redis-benchmark's __rand_int__ and
-- makes every key of the call unique (keys are the passed names with it appended; timers'
-- due times are spread over a day with it). A repeated __rand_int__ does the same work again
-- (the NX result is not used to skip it), so every call costs a full order.created.
--
-- Not in the reference, but in the worker's figure: reading the journal (XRANGE), decoding
-- each protobuf envelope, planning (times, channels, techniques), rendering the reminder texts
-- and writing the steps' JSON in C, the order.paid / order.closed / sys.clock steps (timer
-- cancels, stats, firing due reminders with the contact policy, kefu:actions appends), the
-- periodic checkpoint sync, the live pub/sub socket and the replies' parsing.

local call = redis.call
local N = ARGV[3]
local A = {}
for i = 15, #ARGV - 1, 2 do A[ARGV[i]] = ARGV[i + 1] end

local G = ARGV[2]
local p = tonumber(N) % 64
local ck = 'kefu:ref:ckpt:' .. G .. ':' .. p
local cur = tonumber(call('GET', ck) or '0') -- luacheck: ignore
call('SET', 'kefu:ref:dedup:' .. G .. ':' .. ARGV[4] .. N, N, 'NX', 'EX', ARGV[8])

local okey = A.okey .. N
call('HEXISTS', okey, G)
local pre = ''
if A.rsteps and tonumber(call('HGET', A.bkey .. (tonumber(N) % 5000), 'paid') or '0') >= 2 then
  pre = 'r'
end
local n = tonumber(A[pre .. 'steps'])
call('HSET', okey, G, p, 'buyer', A.buyer, 'total', A.total, 'created', A.created,
     'day', A.day, 'deadline', A.deadline, 'pr_st', 'open', 'pr_n', 0, 'pr_t', n)
call('EXPIRE', okey, 40 * 86400)

local now = tonumber(ARGV[7])
local tkey = 'kefu:ref:timers:' .. G .. ':' .. p
for i = 1, n do
  local id = A.tid .. N .. ':' .. i
  local due = tonumber(A[pre .. 'd' .. i]) + tonumber(N) % 86400000 -- spread, like real timers
  local ttl = 30 * 86400
  if due > now then ttl = ttl + math.floor((due - now) / 1000) end
  call('ZADD', tkey, string.format('%d', due), id)
  call('SET', 'kefu:ref:timer:' .. G .. ':' .. id, A[pre .. 's' .. i], 'EX', ttl)
end

call('HINCRBY', A.skey, 'orders', 1)
call('EXPIRE', A.skey, 400 * 86400)
call('SET', ck, N) -- the worker compares cur with the seq first (not used to skip here)
return {'applied', p, 0, 0, 0}
