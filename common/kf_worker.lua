-- kf_worker.lua: the worker runtime's side in Redis (DESIGN §3.5, §3.6). kf_worker.c joins
-- this file, kf_sched.lua, kf_policy.lua and the worker's own script into one Redis Functions
-- library (kf_redis_library): its top level runs once, at FUNCTION LOAD, and defines
-- everything; the worker's last line, K.run(H, fire), registers the function FNAME. Each
-- FCALL is one atomic step; begin(ARGV) sets the step's state (the locals below) first.
--
-- ARGV: 1 op ('evs' apply a batch of events | 'fire' fire due timers | 'sync' advance
--       checkpoints)  2 group  3 mask (64 chars, '1' = owned)  4 dedup window (s)
--       5 worker name  6 actions maxlen  7 fire limit  8 simulated ('1'/'0')
--   fire, sync: 9 seq  10 now (ms)
--   evs: 9.. one record per event, in seq order: seq, event_id, fingerprint (8 bytes of
--       the event_id's FNV-1a 64, '' without an event_id), partition (0..63, -1 lookup, -2
--       every owned), lookup key, topic, backfill ('1': history being imported, DESIGN
--       §3.10), now (ms), npairs, then npairs name/value pairs: the handler's arguments A.
-- Each event's reply: {status, partition, nactions, topic1, json1, ..., nblocks, reason1,
--       ..., extra} where status is applied | duplicate | seen | notmine | unknown | ignored
--       | error | <handler status> | more | done, and extra is op-specific (sync: timers
--       pending; error: the message). 'evs' replies with the list of its events' replies;
--       'fire' and 'sync' with one.

local call -- redis.call: not there while the library loads, set by begin
local floor -- math.floor: likewise

-- The step's state, set by begin(ARGV) at the start of every call (and, per event of a
-- batch, by next_event).
local OP, G, SEQ, EVID, FP, PART, MASK, NOW, DEDUP_TTL, LOOKUP, TOPIC, WORKER, ACT_MAX
local FIRE_LIMIT, SIM
local A = {}
local CK = {} -- partition -> checkpoint, read once per call (ckpt_get), written at its end
local CK_DIRTY = {}

-- K.now: the clock an action is judged by (freshness, holding): the wall clock, or on the
-- simulated clock the time it has reached (while firing: the due time of the timer).
local K = {actions = {}, blocks = {}}
local P = {} -- the contact policy: filled by kf_policy.lua, used by K.emit
local DAY_MS = 86400000

-- Integers as Redis arguments and in key names go as strings: a Lua number there is
-- formatted through printf's floating-point path (%.17g, %.14g), ~0.15 us each. PS: the
-- partitions' names; nstr: small constants (TTLs, counts), remembered (4096 at most).
-- (Filled by the first call: the string library is not there while the library loads.)
local PS = {}
K.PS = PS
local DEDUP_BUCKETS = 1024 -- the dedup guard's (dedup_seen)
local BSTR = {} -- their names
local NSTR, NSTR_N = {}, 0
local function nstr(n)
  local s = NSTR[n]
  if s then return s end
  s = string.format('%d', n)
  if NSTR_N < 4096 then
    NSTR[n], NSTR_N = s, NSTR_N + 1
  end
  return s
end
K.nstr = nstr

local function owned(p) return string.byte(MASK, p + 1) == 49 end
local function ckpt_key(p) return 'kefu:ckpt:' .. G .. ':' .. PS[p] end
local function ckpt_get(p)
  local v = CK[p]
  if not v then
    v = tonumber(call('GET', ckpt_key(p)) or '0')
    CK[p] = v
  end
  return v
end
-- Moves partition p's checkpoint to seq; written once, by ckpt_flush at the end of the call.
local function ckpt_set(p, seq)
  if seq > ckpt_get(p) then
    CK[p] = seq
    CK_DIRTY[#CK_DIRTY + 1] = p
  end
end
-- Reads the checkpoints of every owned partition not read yet, in one MGET.
local function ckpt_load_owned()
  local keys, ps = {}, {}
  for i = 0, 63 do
    if owned(i) and not CK[i] then
      keys[#keys + 1] = ckpt_key(i)
      ps[#ps + 1] = i
    end
  end
  if #keys == 0 then return end
  local v = call('MGET', unpack(keys))
  for k, i in ipairs(ps) do CK[i] = tonumber(v[k] or '0') end
end
local function ckpt_flush()
  local done, kv = {}, {}
  for _, p in ipairs(CK_DIRTY) do
    if not done[p] then
      done[p] = true
      kv[#kv + 1] = ckpt_key(p)
      kv[#kv + 1] = string.format('%d', CK[p])
    end
  end
  if #kv > 0 then call('MSET', unpack(kv)) end
  CK_DIRTY = {}
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

-- The local date as texts name it, '11月5日', or with the time, '11月5日09:05' (with_time):
-- the one Lua writer of that form (kf_local_md in kf_clock.c is the C one).
function K.md(ms, offset, with_time)
  local d = yyyymmdd(ms, offset)
  local s = string.format('%d月%d日', floor(d / 100) % 100, d % 100)
  if not with_time then return s end
  local mins = floor(((ms + offset * 60000) % 86400000) / 60000)
  return s .. string.format('%02d:%02d', floor(mins / 60), mins % 60)
end

-- The values known only when a text goes out ({buyer}, {item}, ...) put into a text the
-- worker's C side rendered with those placeholders left in (kf_tmpl_render did the rest and
-- checked the template): the one Lua renderer. A placeholder without a value becomes ''.
function K.render(tpl, vars)
  return (string.gsub(tpl or '', '{([%w_]+)}', function(k) return vars[k] or '' end))
end

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

local S_index_check -- kf_sched.lua: puts a partition's earliest timer into the index
local fresh_over = {} -- per shop, read once per call: kefu:fresh:{shop} (kind -> minutes)

local function begin(ARGV)
  call, floor = redis.call, math.floor
  if not PS[0] then
    for i = 0, 63 do PS[i] = string.format('%d', i) end
    for i = 0, DEDUP_BUCKETS - 1 do BSTR[i] = string.format('%d', i) end
  end
  OP, G, MASK = ARGV[1], ARGV[2], ARGV[3]
  DEDUP_TTL = tonumber(ARGV[4])
  WORKER, ACT_MAX = ARGV[5], ARGV[6]
  FIRE_LIMIT = tonumber(ARGV[7])
  SIM = ARGV[8] == '1'
  CK, CK_DIRTY = {}, {}
  fresh_over = {}
  SEQ, EVID, FP, PART, LOOKUP, TOPIC, A = 0, '', '', -2, '', '', {}
  if OP ~= 'evs' then
    SEQ, NOW = tonumber(ARGV[9]), tonumber(ARGV[10])
  end
  K.actions, K.blocks, K.now, K.backfill, K.parts = {}, {}, NOW, false, nil
end

-- The next event of a batch, from ARGV[i]: sets the event's state; returns the index after it.
local function next_event(ARGV, i)
  SEQ, EVID, FP = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2]
  PART, LOOKUP, TOPIC = tonumber(ARGV[i + 3]), ARGV[i + 4], ARGV[i + 5]
  NOW = tonumber(ARGV[i + 7])
  K.actions, K.blocks, K.now, K.backfill, K.parts = {}, {}, NOW, ARGV[i + 6] == '1', nil
  A = {}
  local j = i + 9
  for _ = 1, tonumber(ARGV[i + 8]) do
    A[ARGV[j]] = ARGV[j + 1]
    j = j + 2
  end
  return j
end
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
    call('HINCRBY', 'kefu:stats:worker:' .. G, 'stale:' .. (a.reason or ''), '1')
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
  if K.backfill and OP == 'evs' then
    call('HINCRBY', 'kefu:stats:worker:' .. G, 'backfill:' .. (a.reason or topic), '1')
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
  if topic == 'action.contact' and till then -- kefu-dispatch delivers a contact only until then
    call('XADD', 'kefu:actions', 'MAXLEN', '~', ACT_MAX, '*', 't', topic, 'id', a.event_id, 'j', j,
         'x', fmt_int(till))
  else
    call('XADD', 'kefu:actions', 'MAXLEN', '~', ACT_MAX, '*', 't', topic, 'id', a.event_id, 'j', j)
  end
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
    call('HINCRBY', 'kefu:stats:worker:' .. G, 'early_dropped', '1')
    return 'unknown_early_full'
  end
  local seq = args._seq or fmt_int(SEQ)
  args._seq = nil
  call('HSET', ek, seq, cjson.encode({t = args._topic or TOPIC, b = K.backfill and 1 or 0, a = args}))
  call('EXPIRE', ek, nstr(EARLY_TTL))
  call('HINCRBY', 'kefu:stats:worker:' .. G, 'early', '1')
  return 'early'
end

-- Only the events kept from before the subject's own seq are applied: one kept from after
-- it was kept by another instance running ahead of this one (its subject not applied yet),
-- and this instance applies it in its turn, after what comes between (a reminder's clock,
-- say); applying it now would act on a fact before its time.
function K.arrived(p, key)
  local ek = 'kefu:early:' .. G .. ':' .. key
  local r = call('HGETALL', ek)
  if #r == 0 then return end
  call('DEL', ek)
  local list = {}
  for i = 1, #r, 2 do
    local seq = tonumber(r[i])
    if SEQ == 0 or seq < SEQ then list[#list + 1] = {seq, cjson.decode(r[i + 1])} end
  end
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

-- Item titles: kefu:sku:{shop}, a shop's sku_id -> title, written by the workers whose texts
-- name items. Orders and item records keep sku ids only: Redis keeps a hash compact (a
-- listpack) only while every value is at most 64 bytes, and one long title would turn a whole
-- order hash into a hash table three times its size. At most SKU_MAX skus per shop (further
-- new skus are not kept: their texts say 宝贝); the key lives as long as a buyer profile.
local SKU_MAX, SKU_TTL = 20000, 410 * 86400
local function sku_key(shop) return 'kefu:sku:{' .. shop .. '}' end
-- kv: sku, title, sku, title...
function K.titles_put(shop, kv)
  if #kv == 0 then return end
  local k = sku_key(shop)
  if call('HLEN', k) + #kv / 2 <= SKU_MAX then
    call('HSET', k, unpack(kv))
  else
    for i = 1, #kv, 2 do
      if call('HEXISTS', k, kv[i]) == 1 then call('HSET', k, kv[i], kv[i + 1]) end
    end
  end
  call('EXPIRE', k, nstr(SKU_TTL))
end
-- The title of a shop's sku, or nil.
function K.title(shop, sku)
  return call('HGET', sku_key(shop), sku) or nil
end

-- Counts a hash field (stats); the key lives ttl seconds.
function K.count(key, field, n, ttl)
  call('HINCRBY', key, field, nstr(n or 1))
  if ttl then call('EXPIRE', key, nstr(ttl)) end
end

local function reply(status, p, extra)
  local out = {status, p or -1, #K.actions / 2}
  for _, v in ipairs(K.actions) do out[#out + 1] = v end
  out[#out + 1] = #K.blocks
  for _, v in ipairs(K.blocks) do out[#out + 1] = v end
  out[#out + 1] = extra or K.error or 0
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
    fresh_over[A.shop] = nil
  end
  return 'applied'
end

-- The guard against an event_id journaled twice (the checkpoints already make each seq
-- apply once): its 8-byte fingerprint in one of 1024 small hashes per window of DEDUP_TTL
-- seconds, kefu:dedup:<group>:<window>:<bucket>; the current window and the one before are
-- looked in, so an event is remembered for at least DEDUP_TTL. true: seen before.
local DEDUP_WIN, DEDUP_CUR, DEDUP_PREV -- the last window's key prefixes (G is the library's)
local function dedup_seen()
  local b1, b2 = string.byte(FP, 1, 2)
  local bucket = (b1 * 256 + b2) % DEDUP_BUCKETS
  local win = floor(NOW / (DEDUP_TTL * 1000))
  if win ~= DEDUP_WIN then -- the window's key prefixes, once per window
    local pre = 'kefu:dedup:' .. G .. ':'
    DEDUP_WIN, DEDUP_CUR = win, pre .. fmt_int(win) .. ':'
    DEDUP_PREV = pre .. fmt_int(win - 1) .. ':'
  end
  local bs = BSTR[bucket]
  if call('HEXISTS', DEDUP_PREV .. bs, FP) == 1 then return true end
  local cur = DEDUP_CUR .. bs
  if call('HSETNX', cur, FP, '') == 0 then return true end
  call('EXPIRE', cur, nstr(2 * DEDUP_TTL + 60), 'NX')
  return false
end

-- One event, exactly once per partition (the checkpoint), once per event_id (the guard).
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
    ckpt_load_owned()
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
  local dk = p == -2 and EVID ~= '' and ('kefu:dedup:' .. G .. ':' .. EVID .. ':b')
  if FP ~= '' and p >= 0 and dedup_seen() then
    status = 'duplicate'
  elseif dk and call('HSETNX', dk, MASK, fmt_int(SEQ)) == 0 then
    status = 'duplicate' -- a broadcast event: once per partition set
  else
    local h = handlers[TOPIC]
    local ok, res = pcall(function()
      if TOPIC == 'shop.config' then
        local st = shop_config()
        return h and h(p, A) or st
      end
      return h and h(p, A) or 'ignored'
    end)
    if not ok then -- one event's error: reported, its partitions move past it as before
      status = 'error'
      K.error = type(res) == 'table' and (res.err or res.msg) or tostring(res)
    else
      status = res
    end
  end
  if dk then call('EXPIRE', dk, nstr(DEDUP_TTL)) end
  for _, q in ipairs(parts) do ckpt_set(q, SEQ) end
  return reply(status, p)
end

-- op 'evs': a batch of events, in seq order, each as run_event; the checkpoints are
-- written once, at the end.
local function run_events(handlers, ARGV)
  local out = {}
  local i, n = 9, #ARGV
  while i <= n do
    i = next_event(ARGV, i)
    K.error = nil
    out[#out + 1] = run_event(handlers)
  end
  ckpt_flush()
  return out
end

-- op 'sync': every owned partition's checkpoint moves up to SEQ (every event up to SEQ has
-- been applied); returns the number of pending timers of the owned partitions.
local function run_sync()
  local pending = 0
  if SEQ > 0 then ckpt_load_owned() end
  for i = 0, 63 do
    if owned(i) then
      if SEQ > 0 then ckpt_set(i, SEQ) end
      local nt = call('ZCARD', 'kefu:timers:' .. G .. ':' .. PS[i])
      if nt > 0 then S_index_check(i) end
      pending = pending + nt
    end
  end
  ckpt_flush()
  return reply('done', -2, pending)
end
