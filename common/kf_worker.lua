-- kf_worker.lua: the worker runtime's side in Redis (DESIGN §3.5, §3.6). kf_worker.c runs
-- this library, then kf_sched.lua and kf_policy.lua, then the worker's own script, as one
-- script: every call is one atomic step.
--
-- ARGV: 1 op ('ev' apply an event | 'fire' fire due timers | 'sync' advance checkpoints)
--       2 group  3 seq  4 event_id  5 partition (0..63, -1 lookup, -2 every owned)
--       6 mask (64 chars, '1' = owned)  7 now (ms)  8 dedup ttl (s)  9 lookup key
--       10 topic  11 worker name  12 actions maxlen  13 fire limit  14 simulated ('1'/'0')
--       15.. name/value pairs: the handler's arguments A[name]
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
for i = 15, #ARGV - 1, 2 do A[ARGV[i]] = ARGV[i + 1] end

local K = {actions = {}, blocks = {}}

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

-- Appends an action to kefu:actions and to the reply (published live by kf_worker.c).
-- a is the flat JSON object of the action (DESIGN §2), times in epoch ms.
function K.emit(topic, a)
  a.topic = topic
  a.event_id = a.event_id or a.action_id or a.task_id or a.alert_id
  a.worker = WORKER
  local j = cjson.encode(a)
  call('XADD', 'kefu:actions', 'MAXLEN', '~', ACT_MAX, '*', 't', topic, 'id', a.event_id, 'j', j)
  if topic == 'action.task' then K.task_open(a.task_id, a.due_at or a.occurred_at or NOW, j) end
  K.actions[#K.actions + 1] = topic
  K.actions[#K.actions + 1] = j
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

-- shop.config, handled for every worker: kefu:shops keeps the newest config per shop.
local function shop_config()
  local cur = tonumber(call('HGET', 'kefu:shops:seq', A.shop) or '0')
  if SEQ > cur then
    call('HSET', 'kefu:shops', A.shop, A.config)
    call('HSET', 'kefu:shops:seq', A.shop, fmt_int(SEQ))
  end
  return 'applied'
end

-- op 'ev': one event, exactly once per partition.
local function run_event(handlers)
  local p = PART
  if p == -1 then
    local v = call('HGET', LOOKUP, G) -- the order hash names each group's partition
    if not v then return reply('unknown', -1) end
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
