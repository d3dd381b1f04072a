-- kf_worker.lua: the worker runtime's side in Redis (DESIGN §3.5, §3.6). kf_worker.c runs
-- this library, then kf_sched.lua and kf_policy.lua, then the worker's own script, as one
-- script: every call is one atomic step.
--
-- ARGV: 1 op ('ev' apply an event | 'fire' fire due timers | 'sync' advance checkpoints)
--       2 group  3 seq  4 event_id  5 partition (0..63, -1 lookup, -2 every owned)
--       6 mask (64 chars, '1' = owned)  7 now (ms)  8 dedup ttl (s)  9 lookup key
--       10 topic  11 worker name  12 actions maxlen  13 fire limit  14 simulated ('1'/'0')
--       15 backfill ('1': the event is history being imported, DESIGN §3.10)
--       16.. name/value pairs: the handler's arguments A[name]
-- Returns {status, partition, nactions, topic1, json1, ..., nblocks, reason1, ...,
--          extra} where status is applied | duplicate | seen | notmine | unknown | ignored
--          | <handler status> | more | done, and extra is op-specific (sync: timers pending).

local call = redis.call
local floor = math.floor

local OP, G = ARGV[1], ARGV[2]
local SEQ = tonumber(ARGV[3])
local EVID = ARGV[4]
local PART = tonumber(ARGV[5])
local MASK = ARGV[6]
local NOW = tonumber(ARGV[7])
local DEDUP_TTL = ARGV[8]
local LOOKUP = ARGV[9]
local TOPIC = ARGV[10]
local WORKER = ARGV[11]
local ACT_MAX = ARGV[12]
local FIRE_LIMIT = tonumber(ARGV[13])
local SIM = ARGV[14] == '1'
local A = {}
for i = 16, #ARGV - 1, 2 do A[ARGV[i]] = ARGV[i + 1] end

-- K.now: the clock an action is judged by (freshness, holding): the wall clock, or on the
-- simulated clock the time it has reached (while firing: the due time of the timer).
local K = {actions = {}, blocks = {}, now = NOW, backfill = ARGV[15] == '1'}
local P = {} -- the contact policy: filled by kf_policy.lua, used by K.emit
local DAY_MS = 86400000

local function owned(p) return string.byte(MASK, p + 1) == 49 end
local function ckpt_key(p) return 'kefu:ckpt:' .. G .. ':' .. p end
local function ckpt_get(p) return tonumber(call('GET', ckpt_key(p)) or '0') end
local function ckpt_set(p, seq)
  if seq > 0 then call('SET', ckpt_key(p), string.format('%d', seq)) end
end
local function fmt_int(n) return string.format('%d', n) end

-- The shop-local calendar: yyyymmdd of epoch ms at a UTC offset in minutes
-- (civil_from_days, H. Hinnant), and the local minute of the day.
local function yyyymmdd(ms, offset)
  local z = floor((ms + offset * 60000) / 86400000) + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y * 10000 + m * 100 + d
end
K.yyyymmdd = yyyymmdd

-- Freshness (DOMAIN §0, DESIGN §3.10): the one table of default windows, by action reason
-- or by group (the reason's first word). {minutes, from}: from 'fact' (the action's fact_at),
-- 'due' (the time it was planned for, a._due, else fact_at) or 'day' (only on the shop-local
-- day of the due time). A shop's freshness list (shop.config) overrides the minutes. An
-- action may also carry a hard limit a._until (a deadline, a campaign's window end).
local MIN = 60000
K.FRESH = {
  care_shipped = {12 * 60, 'fact'}, care_same_city = {12 * 60, 'fact'},
  care_out_for_delivery = {12 * 60, 'fact'}, care_signed = {12 * 60, 'fact'},
  care_usage = {3 * 1440, 'due'}, care_replenish = {7 * 1440, 'due'},
  care_winback = {7 * 1440, 'due'}, care_birthday = {0, 'day'}, care_festival = {0, 'day'},
  care_gift = {0, 'day'}, care_campaign = {nil, 'due'},
  logistics = {24 * 60, 'due'},
  review_repair = {7 * 1440, 'fact'}, review_explanation = {30 * 1440, 'fact'},
  payment_reminder = {6 * 60, 'due'},
}

local fresh_over = {} -- per shop, read once per call: kefu:fresh:{shop} (kind -> minutes)
local function window(shop, reason)
  local o = fresh_over[shop]
  if not o then
    o = {}
    local r = call('HGETALL', 'kefu:fresh:{' .. shop .. '}')
    for i = 1, #r, 2 do o[r[i]] = tonumber(r[i + 1]) end
    fresh_over[shop] = o
  end
  local group = string.match(reason, '^([^_]+)_') or reason
  local d = K.FRESH[reason] or K.FRESH[group] or {nil, 'fact'}
  local m = o[reason] or o[group]
  if m then return m, d[2] == 'day' and 'due' or d[2] end
  return d[1], d[2]
end

-- The last moment action a may go out ('day': the end of its local day), or nil: no limit.
function K.fresh_until(a)
  local mins, from = window(a.shop_id or '', a.reason or '')
  local ref = (from ~= 'fact' and a._due) or a.fact_at
  local t
  if from == 'day' then
    local off = (a._off or 480) * MIN
    t = floor((ref + off) / DAY_MS) * DAY_MS - off + DAY_MS - 1
  elseif mins then
    t = ref + mins * MIN
  end
  if a._until and (not t or a._until < t) then t = a._until end
  return t
end

-- Records a blocked action (kefu:blocked: contacts by the policy's fields, tasks and alerts
-- with channel 'task' / 'alert') and counts it for the step's reply.
function K.block(topic, a, why, c)
  call('XADD', 'kefu:blocked', 'MAXLEN', '~', '100000', '*', 'shop_id', a.shop_id or '',
       'buyer_id', a.buyer_id or (c and c.buyer) or '', 'order_id', a.order_id or '',
       'reason', a.reason or '', 'channel', c and c.channel or string.sub(topic, 8),
       'block', why, 'at', fmt_int(K.now), 'worker', WORKER, 'fact_at', fmt_int(a.fact_at or 0))
  K.blocks[#K.blocks + 1] = why
  if why == 'stale' then
    call('HINCRBY', 'kefu:stats:worker:' .. G, 'stale:' .. (a.reason or ''), 1)
  end
end

-- The one way out for every worker's actions (a: the flat JSON object of DESIGN §2, times in
-- epoch ms; c: for a contact, the policy's contact (kf_policy.lua) with c.wins, the local
-- hours its channel may be used in, required for sms and phone). In order:
--   a backfilled event emits nothing at once ('backfill', counted per reason);
--   past its freshness ('stale') or its hard limit ('deadline'): blocked;
--   a contact outside its hours (c.wins): 'hold', at (the next allowed moment) for the
--   caller to plan again, or blocked 'stale'/'deadline' when that moment is too late;
--   the contact policy (blocked with its reason), then recorded;
--   a task due in the past is due now; the action is appended to kefu:actions and the reply.
-- Returns true, or false and the reason (and the time, for 'hold'). Blocks are recorded.
function K.emit(topic, a, c)
  a.fact_at = a.fact_at or a.occurred_at or K.now
  if K.backfill and OP == 'ev' then
    call('HINCRBY', 'kefu:stats:worker:' .. G, 'backfill:' .. (a.reason or topic), 1)
    return false, 'backfill'
  end
  local till = K.fresh_until(a)
  if till and K.now > till then
    local why = (a._until and till == a._until) and 'deadline' or 'stale'
    K.block(topic, a, why, c)
    return false, why
  end
  if c then
    assert(c.wins or c.channel == 'im', 'kf_worker: a ' .. c.channel ..
           ' contact without its allowed hours')
    if c.wins then -- sms and phone always; im where the worker holds it (care, working hours)
      local at = P.next_allowed(K.now, c.offset, c.wins)
      if at ~= K.now then
        if at < 0 or (till and at > till) then
          local why = (at >= 0 and not (a._until and till == a._until)) and 'stale' or 'deadline'
          K.block(topic, a, why, c)
          return false, why
        end
        return false, 'hold', at
      end
    end
    local why = P.check(c, K.now)
    if why then
      P.block(c, why, K.now)
      return false, why
    end
    P.record(c, K.now)
  end
  if topic == 'action.task' and a.due_at and a.due_at < K.now then a.due_at = K.now end
  for k in pairs(a) do if string.sub(k, 1, 1) == '_' then a[k] = nil end end
  a.topic = topic
  a.event_id = a.event_id or a.action_id or a.task_id or a.alert_id
  a.worker = WORKER
  local j = cjson.encode(a)
  call('XADD', 'kefu:actions', 'MAXLEN', '~', ACT_MAX, '*', 't', topic, 'id', a.event_id, 'j', j)
  if topic == 'action.task' then K.task_open(a.task_id, a.due_at or a.occurred_at or NOW, j) end
  K.actions[#K.actions + 1] = topic
  K.actions[#K.actions + 1] = j
  return true
end

-- Order of arrival (DESIGN §3.10): an event that comes before its subject (a payment before
-- its order, a scan before its shipment, a case update before its case) is kept at
-- kefu:early:<group>:<key> (7 days, at most 64 events) and applied, in seq order, by
-- K.arrived when the subject arrives, with the handlers and arguments it came with.
local EARLY_TTL = 7 * 86400
local EARLY_MAX = 64
function K.keep(key, args)
  args = args or A
  local ek = 'kefu:early:' .. G .. ':' .. key
  if call('HLEN', ek) >= EARLY_MAX then
    call('HINCRBY', 'kefu:stats:worker:' .. G, 'early_dropped', 1)
    return 'unknown_early_full'
  end
  local seq = args._seq or fmt_int(SEQ)
  args._seq = nil
  call('HSET', ek, seq, cjson.encode({t = args._topic or TOPIC, b = K.backfill and 1 or 0, a = args}))
  call('EXPIRE', ek, EARLY_TTL)
  call('HINCRBY', 'kefu:stats:worker:' .. G, 'early', 1)
  return 'early'
end

function K.arrived(p, key)
  local ek = 'kefu:early:' .. G .. ':' .. key
  local r = call('HGETALL', ek)
  if #r == 0 then return end
  call('DEL', ek)
  local list = {}
  for i = 1, #r, 2 do list[#list + 1] = {tonumber(r[i]), cjson.decode(r[i + 1])} end
  table.sort(list, function(x, y) return x[1] < y[1] end)
  local bf = K.backfill
  for _, e in ipairs(list) do
    local h = K.handlers[e[2].t]
    if h then
      K.backfill = e[2].b == 1
      local a = e[2].a
      a._seq, a._topic = fmt_int(e[1]), e[2].t -- kept again under its own seq if still early
      h(p, a)
    end
  end
  K.backfill = bf
end

-- The open tasks of every worker (kefuctl tasks): ZSET kefu:tasks by due ms, the task's JSON
-- at kefu:task:<task_id>. A worker closes its tasks when what they are about ends; tasks due
-- more than 60 days ago are dropped.
local TASK_TTL = 60 * 86400
function K.task_open(id, due, j)
  call('ZADD', 'kefu:tasks', fmt_int(due), id)
  call('SET', 'kefu:task:' .. id, j, 'EX', TASK_TTL + math.max(0, floor((due - NOW) / 1000)))
  call('ZREMRANGEBYSCORE', 'kefu:tasks', '-inf', '(' .. fmt_int(NOW - TASK_TTL * 1000))
end
function K.task_done(id)
  call('ZREM', 'kefu:tasks', id)
  call('DEL', 'kefu:task:' .. id)
end

-- One of agents (one per line) for key, by a hash of the key, so that every step picks the
-- same agent for the same order or buyer; nil when there are none.
function K.agent_for(key, agents)
  local list = {}
  for a in string.gmatch(agents or '', '[^\n]+') do list[#list + 1] = a end
  if #list == 0 then return nil end
  local h = 0
  for i = 1, #key do h = (h * 31 + string.byte(key, i)) % 2147483647 end
  return list[h % #list + 1]
end

-- Counts a hash field (stats); the key lives ttl seconds.
function K.count(key, field, n, ttl)
  call('HINCRBY', key, field, n or 1)
  if ttl then call('EXPIRE', key, ttl) end
end

local function reply(status, p, extra)
  local out = {status, p or -1, #K.actions / 2}
  for _, v in ipairs(K.actions) do out[#out + 1] = v end
  out[#out + 1] = #K.blocks
  for _, v in ipairs(K.blocks) do out[#out + 1] = v end
  out[#out + 1] = extra or 0
  return out
end

-- shop.config, handled for every worker: kefu:shops keeps the newest config per shop, and
-- kefu:fresh:{shop} its freshness overrides (A.fresh: "kind minutes" lines).
local function shop_config()
  local cur = tonumber(call('HGET', 'kefu:shops:seq', A.shop) or '0')
  if SEQ > cur then
    call('HSET', 'kefu:shops', A.shop, A.config)
    call('HSET', 'kefu:shops:seq', A.shop, fmt_int(SEQ))
    local fk = 'kefu:fresh:{' .. A.shop .. '}'
    call('DEL', fk)
    for kind, m in string.gmatch(A.fresh or '', '([%w_]+) (%d+)') do call('HSET', fk, kind, m) end
  end
  return 'applied'
end

-- op 'ev': one event, exactly once per partition.
local function run_event(handlers)
  local p = PART
  if p == -1 then
    local v = call('HGET', LOOKUP, G) -- the order hash names each group's partition
    if not v then -- its subject has not arrived: kept for it (every instance keeps the same)
      if EVID ~= '' and handlers[TOPIC] and LOOKUP ~= '' then return reply(K.keep(LOOKUP), -1) end
      return reply('unknown', -1)
    end
    p = tonumber(v)
  end
  local parts = {}
  if p == -2 then
    for i = 0, 63 do
      if owned(i) and ckpt_get(i) < SEQ then parts[#parts + 1] = i end
    end
    if #parts == 0 then return reply('seen', p) end
  else
    if not owned(p) then return reply('notmine', p) end
    if ckpt_get(p) >= SEQ then return reply('seen', p) end
    parts[1] = p
  end
  K.parts = parts -- the partitions this step applies to (a broadcast: the owned ones not past SEQ)
  local status
  local dk = 'kefu:dedup:' .. G .. ':' .. EVID
  if EVID ~= '' and p >= 0 and not call('SET', dk, fmt_int(SEQ), 'NX', 'EX', DEDUP_TTL) then
    status = 'duplicate'
  elseif EVID ~= '' and p == -2 and call('HSETNX', dk .. ':b', MASK, fmt_int(SEQ)) == 0 then
    status = 'duplicate' -- a broadcast event: once per partition set
  elseif TOPIC == 'shop.config' then
    status = shop_config()
    local h = handlers[TOPIC]
    if h then status = h(p, A) or status end
  else
    local h = handlers[TOPIC]
    status = h and h(p, A) or 'ignored'
  end
  if p == -2 and EVID ~= '' then call('EXPIRE', dk .. ':b', DEDUP_TTL) end
  for _, q in ipairs(parts) do ckpt_set(q, SEQ) end
  return reply(status, p)
end

-- op 'sync': every owned partition's checkpoint moves up to SEQ (every event up to SEQ has
-- been applied); returns the number of pending timers of the owned partitions.
local function run_sync()
  local pending = 0
  for i = 0, 63 do
    if owned(i) then
      if SEQ > 0 and ckpt_get(i) < SEQ then ckpt_set(i, SEQ) end
      pending = pending + call('ZCARD', 'kefu:timers:' .. G .. ':' .. i)
    end
  end
  return reply('done', -2, pending)
end
