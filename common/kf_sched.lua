-- kf_sched.lua: durable timers (follows kf_worker.lua in one script).
--
-- A timer is a member of the ZSET kefu:timers:<group>:<p> (score: due ms) plus its payload,
-- a JSON object at kefu:timer:<group>:<id>. Firing claims a timer with ZREM inside the same
-- atomic step that acts on it, so two instances can never fire one timer twice.

local S = {}
local TIMER_TTL = 30 * 86400

local function tkey(p) return 'kefu:timers:' .. G .. ':' .. K.PS[p] end
-- kefu:tnext:<group>: ZSET of partitions by the earliest due time of their timers (never
-- later than it: a cancelled or moved timer leaves it early, which costs a look, never a
-- miss), plus the member '-' (score +inf) that says the index is complete. A fire step looks
-- only at the partitions it names as due.
local function nkey() return 'kefu:tnext:' .. G end
local function pkey(id) return 'kefu:timer:' .. G .. ':' .. id end

-- Adds (or moves) timer id in partition p, due at due ms, with payload t: a table, or its
-- JSON text as the worker's C side made it (stored as it is).
function S.add(p, id, due, t)
  if type(t) == 'table' then
    t.due = due
    t = cjson.encode(t)
  end
  local ttl = TIMER_TTL
  if due > NOW then ttl = ttl + floor((due - NOW) / 1000) end
  call('ZADD', tkey(p), fmt_int(due), id)
  call('ZADD', nkey(), 'LT', fmt_int(due), K.PS[p])
  call('SET', pkey(id), t, 'EX', ttl)
end

-- The index from the partitions' ZSETs: when it is not complete (the first fire of a group,
-- timers planned by an older version, a lost key).
local function index_build()
  if call('ZSCORE', nkey(), '-') then return end
  for i = 0, 63 do
    local r = call('ZRANGE', tkey(i), 0, 0, 'WITHSCORES')
    if #r > 0 then call('ZADD', nkey(), 'LT', r[2], tostring(i)) end
  end
  call('ZADD', nkey(), '+inf', '-')
end

-- The sync step's repair (every ckpt_ms): partition q's earliest timer is in the index, even
-- one planned by a version that did not keep it (a rolling upgrade).
S_index_check = function(q)
  local r = call('ZRANGE', tkey(q), 0, 0, 'WITHSCORES')
  if #r > 0 then call('ZADD', nkey(), 'LT', r[2], tostring(q)) end
end

-- Partition q's entry after its due timers fired: its earliest timer now, or none.
local function index_fix(q)
  local r = call('ZRANGE', tkey(q), 0, 0, 'WITHSCORES')
  if #r > 0 then call('ZADD', nkey(), r[2], tostring(q)) else call('ZREM', nkey(), tostring(q)) end
end

function S.cancel(p, id)
  call('ZREM', tkey(p), id)
  call('DEL', pkey(id))
end

-- op 'fire': fires every timer due up to NOW in the owned partitions (those whose
-- checkpoint is below SEQ when SEQ > 0: a sys.clock event), in due order, at most
-- FIRE_LIMIT of them; 'more' when some are left (the checkpoints then stay put and the
-- same step is run again), else the checkpoints move to SEQ and kefu:clock to NOW.
-- fire(p, id, due, payload) acts on one timer; the clock it sees is the due time when
-- simulated (the clock passes each timer in turn), else NOW.
local function run_fire(fire)
  local parts, due = {}, {}
  if SEQ > 0 then ckpt_load_owned() end
  index_build()
  local maybe = {} -- the partitions with a timer that may be due
  for _, m in ipairs(call('ZRANGEBYSCORE', nkey(), '-inf', fmt_int(NOW))) do
    local q = tonumber(m)
    if q then maybe[q] = true end
  end
  local looked = {}
  for i = 0, 63 do
    if owned(i) and (SEQ == 0 or ckpt_get(i) < SEQ) then
      parts[#parts + 1] = i
      if maybe[i] then
        looked[#looked + 1] = i
        local r = call('ZRANGEBYSCORE', tkey(i), '-inf', fmt_int(NOW), 'WITHSCORES', 'LIMIT', 0,
                       FIRE_LIMIT + 1)
        for j = 1, #r, 2 do due[#due + 1] = {tonumber(r[j + 1]), r[j], i} end
      end
    end
  end
  if SEQ > 0 and #parts == 0 then return reply('seen', -2) end
  table.sort(due, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  local n = math.min(#due, FIRE_LIMIT)
  -- the simulated clock passes each timer at its due time; one due before the clock this
  -- partition set had already reached was planned after that (by a late or imported event):
  -- it fires at that clock, and is judged there (freshness, holds)
  local prev = SIM and tonumber(call('HGET', 'kefu:clock:' .. G, MASK) or '0') or 0
  for k = 1, n do
    local d = due[k]
    if call('ZREM', tkey(d[3]), d[2]) == 1 then
      local raw = call('GET', pkey(d[2]))
      call('DEL', pkey(d[2]))
      if raw then
        K.now = SIM and math.max(d[1], prev) or NOW
        fire(d[3], d[2], d[1], cjson.decode(raw))
      end
    end
  end
  if #due > FIRE_LIMIT then return reply('more', -2) end
  for _, q in ipairs(looked) do index_fix(q) end
  local inparts = {}
  for _, q in ipairs(parts) do inparts[q] = true end
  -- a timer fired above may have planned another one that is due by now (a chain: the next
  -- segment boundary, a campaign's next batch): run again until none is left
  if n > 0 then
    for _, m in ipairs(call('ZRANGEBYSCORE', nkey(), '-inf', fmt_int(NOW))) do
      local q = tonumber(m)
      if q and inparts[q] then return reply('more', -2) end
    end
  end
  for _, q in ipairs(parts) do ckpt_set(q, SEQ) end
  ckpt_flush()
  if NOW > tonumber(call('GET', 'kefu:clock') or '0') then call('SET', 'kefu:clock', fmt_int(NOW)) end
  -- the simulated clock this set of partitions has reached: a restarted worker starts from it
  if SEQ > 0 then call('HSET', 'kefu:clock:' .. G, MASK, fmt_int(NOW)) end
  return reply('done', -2)
end

-- Registers the step (the library's function FNAME), called by the worker's script as its
-- last line.
function K.run(handlers, fire)
  K.handlers = handlers
  redis.register_function(FNAME, function(_, args)
    begin(args)
    if OP == 'evs' then return run_events(handlers, args) end
    if OP == 'fire' then return run_fire(fire) end
    if OP == 'sync' then return run_sync() end
    return redis.error_reply('kf_worker: unknown op ' .. tostring(OP))
  end)
end
