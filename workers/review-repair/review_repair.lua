-- review_repair.lua: kefu-review-repair's cases in Redis (follows the kf_worker library).
-- See README.md. Partition = the shop, so a shop's cases and agent loads change in order.

local H = {}
local CASE_TTL = 60 * 86400
local STATS_TTL = 400 * 86400
local BUYER_TTL = 400 * 86400
local FC_CAP = 10000
local HOUR = 3600000
local DAY = 86400000
local PLAN = {product = '补发/部分退款后请求修改', subjective = '优惠券或小额补偿',
              service = '道歉+补偿+改进服务', logistics = '道歉+补偿+改进物流',
              malicious = '保留证据, 不予补偿', other = '了解原因后处理'}

local function n(v) return tonumber(v) or 0 end
local function ckey(shop, case) return 'kefu:case:{' .. shop .. '}:' .. case end
local function skey(shop, ms, off) return 'kefu:stats:rv:{' .. shop .. '}:' .. K.yyyymmdd(ms, off) end
local function lines(s)
  local t = {}
  for x in string.gmatch(s or '', '[^\n]+') do t[#t + 1] = x end
  return t
end

-- The agents on duty now (the shop's latest shop.config), else those the case opened with.
local function on_duty(shop, fallback)
  return call('GET', 'kefu:rv:agents:{' .. shop .. '}') or fallback
end

-- The agent on duty with the fewest open cases (ties: the first listed), not `except`.
local function pick(shop, agents, except)
  local best, load = nil, nil
  for _, a in ipairs(lines(agents)) do
    if a ~= except then
      local l = n(call('ZSCORE', 'kefu:agents:{' .. shop .. '}', a))
      if not load or l < load then best, load = a, l end
    end
  end
  return best
end

local function load_case(shop, case)
  local f = {'status', 'review_id', 'order_id', 'buyer', 'sku', 'rating', 'causes', 'malicious',
             'agent', 'opened', 'first_contact', 'explained', 'off', 'agents', 'cph', 'touched',
             'th', 'comp', 'closed'}
  local v = call('HMGET', ckey(shop, case), unpack(f))
  if not v[1] then return nil end
  local c = {shop = shop, id = case}
  for i, k in ipairs(f) do c[k] = v[i] end
  c.order = c.order_id
  c.off, c.cph = n(c.off), n(c.cph)
  return c
end

-- Every action of a case answers its review (fact_at = the review's time) and goes out only
-- inside the review's 30-day window (and the freshness of its kind, kf_worker.lua).
local function task(c, suffix, kind, due, now, summary)
  K.emit('action.task', {task_id = c.id .. ':' .. suffix, shop_id = c.shop, occurred_at = now,
    case_id = c.id, agent_id = c.agent or nil, kind = kind, reason = kind, due_at = due,
    severity = c.rating == 'bad' and 'high' or 'warn', priority = c.rating == 'bad' and 1 or 2,
    order_id = c.order or nil, buyer_id = c.buyer or nil, summary = summary,
    fact_at = n(c.opened), _until = n(c.opened) + 30 * DAY})
end

local function summary(c)
  local parts = {}
  for cause in string.gmatch(c.causes or '', '[^,]+') do
    parts[#parts + 1] = cause .. ': ' .. (PLAN[cause] or '')
  end
  return (c.rating or '') .. ' review; ' .. table.concat(parts, '; ') ..
         string.format('; 建议补偿 ¥%.2f', n(c.comp) / 100)
end

-- Returns the K.emit result (false, 'hold', at: the phone window it may be tried in).
local function contact(c, channel, suffix, now, text, attempt, wins)
  if c.malicious == '1' or not c.buyer then return end
  local pc = {shop = c.shop, buyer = c.buyer, order = c.order or '', reason = 'review_repair',
              channel = channel, class = 'transactional', offset = c.off, attempt = attempt,
              wins = wins, caps = {daily = 0, sms_daily = 0, sms_weekly = 0, phone_daily = c.cph}}
  local sent, why, at = K.emit('action.contact', {action_id = c.id .. ':' .. suffix,
    shop_id = c.shop, occurred_at = now, buyer_id = c.buyer, order_id = c.order or nil,
    case_id = c.id, channel = channel, reason = 'review_repair', template = 'review_repair',
    text = text, not_before = now, contact_class = 'transactional', fact_at = n(c.opened),
    _until = n(c.opened) + 30 * DAY}, pc)
  if not sent and why ~= 'hold' and why ~= 'backfill' then
    K.count(skey(c.shop, now, c.off), 'blocked:' .. why, 1, STATS_TTL)
  end
  return sent, why, at
end

local TIMERS = {'reassign', 'phone1', 'phone2', 'explain', 'close'}
local function tid(c, w) return c.id .. ':' .. w end

-- Ends a case: timers cancelled, the agent's slot freed, its tasks closed.
local function close(p, c, status, now)
  call('HSET', ckey(c.shop, c.id), 'status', status, 'closed', fmt_int(now))
  for _, w in ipairs(TIMERS) do S.cancel(p, tid(c, w)) end
  if c.agent then call('ZINCRBY', 'kefu:agents:{' .. c.shop .. '}', -1, c.agent) end
  for _, s in ipairs({'contact', 'reassign', 'explain'}) do K.task_done(c.id .. ':' .. s) end
  K.count(skey(c.shop, now, c.off), status, 1, STATS_TTL)
  if status == 'resolved' and c.agent then
    K.count('kefu:stats:rvagent:{' .. c.shop .. '}', c.agent .. ':resolved', 1, STATS_TTL)
  end
end

-- A: shop, case, review, order, buyer, sku, rating, th, causes, malkw, comp, agents, at, off,
-- cph, due, ch (im | phone), phone_at, phone2_at, text_im, text_phone
H['review.posted'] = function(p, A)
  local ck = ckey(A.shop, A.case)
  local at, off = n(A.at), n(A.off)
  if not call('SET', 'kefu:rvseen:{' .. A.shop .. '}:' .. A.review, '1', 'NX', 'EX', CASE_TTL) then
    return 'exists' -- every rating: a review is counted once
  end
  local sk = skey(A.shop, at, off)
  K.count(sk, 'reviews', 1, STATS_TTL)
  K.count(sk, A.rating, 1)
  if A.rating == 'good' then return 'applied' end
  local bk = 'kefu:rvbuyer:{' .. A.shop .. '}:' .. A.buyer
  local prior = n(call('HGET', bk, 'bad'))
  K.count(bk, 'bad', 1, BUYER_TTL)
  -- malicious only on evidence in the text; a record of bad reviews only prepares the agent
  local causes, mal = A.causes, A.malkw == '1'
  if mal and not string.find(causes, 'malicious', 1, true) then
    causes = (causes == 'other' and '' or causes .. ',') .. 'malicious'
  end
  local agent = pick(A.shop, A.agents, nil)
  local comp = mal and 0 or n(A.comp)
  call('HSET', ck, 'status', 'open', 'review_id', A.review, 'order_id', A.order, 'buyer', A.buyer,
       'sku', A.sku, 'rating', A.rating, 'causes', causes, 'malicious', mal and '1' or '0',
       'opened', A.at, 'off', A.off, 'agents', A.agents, 'cph', A.cph, 'th', A.th,
       'comp', fmt_int(comp), 'flag', mal and 'evidence' or '',
       'repeat_complainer', prior >= 2 and '1' or '0')
  if agent then call('HSET', ck, 'agent', agent) end
  call('EXPIRE', ck, K.nstr(CASE_TTL))
  K.count(sk, 'opened', 1)
  if mal then K.count(sk, 'malicious', 1) end
  local sku = 'kefu:stats:rvsku:{' .. A.shop .. '}'
  for cause in string.gmatch(causes, '[^,]+') do
    K.count(sk, 'cause:' .. cause, 1)
    K.count(sku, A.sku .. ':' .. A.rating .. ':' .. cause, 1, STATS_TTL)
  end
  if agent then
    call('ZINCRBY', 'kefu:agents:{' .. A.shop .. '}', 1, agent)
    K.count('kefu:stats:rvagent:{' .. A.shop .. '}', agent .. ':cases', 1, STATS_TTL)
  end
  local c = load_case(A.shop, A.case)
  task(c, 'contact', 'review_repair', n(A.due), at, summary(c))
  S.add(p, tid(c, 'reassign'), at + 2 * HOUR, {w = 'reassign', shop = c.shop, case = c.id})
  S.add(p, tid(c, 'explain'), at + 25 * DAY, {w = 'explain', shop = c.shop, case = c.id})
  S.add(p, tid(c, 'close'), at + 30 * DAY, {w = 'close', shop = c.shop, case = c.id})
  if A.ch == 'im' then
    contact(c, 'im', 'im', at, A.text_im)
  else
    S.add(p, tid(c, 'phone1'), n(A.phone_at), {w = 'phone1', shop = c.shop, case = c.id,
          text = A.text_phone, next_at = n(A.phone2_at), wins = A.pwin})
  end
  K.arrived(p, ck) -- a modification, deletion or case update that came first
  return 'applied'
end

-- A: shop, case, rating, th, at
-- An update that comes before its review.posted is kept for it (DESIGN §3.10); one for a
-- good review (no case ever opens) expires with the early facts.
H['review.modified'] = function(p, A)
  local c = load_case(A.shop, A.case)
  if not c then return K.keep(ckey(A.shop, A.case), A) end
  local at = n(A.at)
  K.count(skey(c.shop, at, c.off), 'modified', 1, STATS_TTL)
  if c.closed then return 'ignored' end
  local ck = ckey(c.shop, c.id)
  if A.rating ~= '' and A.rating ~= c.rating then
    if A.th == c.th then call('HSET', ck, 'note', 'rating_changed_text_unchanged') end
    call('HSET', ck, 'rating', A.rating)
  end
  if A.rating == 'good' then close(p, c, 'resolved', at) end
  return 'applied'
end

H['review.deleted'] = function(p, A)
  local c = load_case(A.shop, A.case)
  if not c then return K.keep(ckey(A.shop, A.case), A) end
  local at = n(A.at)
  K.count(skey(c.shop, at, c.off), 'deleted', 1, STATS_TTL)
  if c.closed then return 'ignored' end
  close(p, c, 'resolved', at)
  return 'applied'
end

-- A: shop, case, status, agent, comp, at
H['case.updated'] = function(p, A)
  local c = load_case(A.shop, A.case)
  if not c then return K.keep(ckey(A.shop, A.case), A) end
  local at, ck = n(A.at), ckey(A.shop, A.case)
  local comp = n(A.comp)
  if comp > 0 then
    call('HINCRBY', ck, 'compensation_fen', comp)
    if c.agent then
      K.count('kefu:stats:rvagent:{' .. c.shop .. '}', c.agent .. ':comp_fen', comp, STATS_TTL)
    end
  end
  if c.closed then return 'ignored' end
  call('HSET', ck, 'touched', '1')
  local st = A.status
  if st == 'contacted' and not c.first_contact then
    call('HSET', ck, 'first_contact', A.at)
    if c.agent then
      local l = 'kefu:rv:fc:{' .. c.shop .. '}:' .. c.agent
      call('LPUSH', l, fmt_int(at - n(c.opened)))
      call('LTRIM', l, 0, FC_CAP - 1)
      call('EXPIRE', l, K.nstr(STATS_TTL))
    end
  end
  if st == 'resolved' or st == 'failed' then
    if st == 'failed' then
      call('HSET', 'kefu:rvbuyer:{' .. c.shop .. '}:' .. (c.buyer or ''), 'firm', '1')
    end
    close(p, c, st, at)
  elseif st == 'explained' then
    call('HSET', ck, 'explained', '1', 'status', 'explained')
  elseif st == 'contacted' or st == 'promised' then
    call('HSET', ck, 'status', st)
  end
  return 'applied'
end

H['buyer.optout'] = P.optout

-- shop.config: the agents on duty from now on (A.agents, one per line).
H['shop.config'] = function(p, A)
  call('SET', 'kefu:rv:agents:{' .. A.shop .. '}', A.agents or '', 'EX', STATS_TTL)
  return 'applied'
end

local function fire(p, id_, due, t)
  local now = K.now
  local c = load_case(t.shop, t.case)
  if not c or c.closed then return end
  local w = t.w
  if w == 'reassign' then
    if c.touched or c.status ~= 'open' then return end
    local to = pick(c.shop, on_duty(c.shop, c.agents), c.agent)
    if not to then return end
    local z = 'kefu:agents:{' .. c.shop .. '}'
    if c.agent then call('ZINCRBY', z, -1, c.agent) end
    call('ZINCRBY', z, 1, to)
    call('HSET', ckey(c.shop, c.id), 'agent', to)
    K.task_done(c.id .. ':contact')
    c.agent = to
    return task(c, 'reassign', 'review_repair', now + 30 * 60000, now, 'reassigned: ' .. summary(c))
  elseif w == 'phone1' or w == 'phone2' then
    if c.first_contact then return end
    local _, why, at = contact(c, 'phone', w, now, t.text, w == 'phone2' and 2 or nil, t.wins)
    if why == 'hold' then -- late (the worker was down, the review came late): the next window
      if t.next_at and n(t.next_at) < at + 2 * HOUR then t.next_at = at + 2 * HOUR end
      return S.add(p, id_, at, t)
    end
    if w == 'phone1' and n(t.next_at) > 0 then
      local nxt = n(t.next_at)
      if nxt <= now then nxt = now + 2 * HOUR end -- fired late: a later try, in a window
      S.add(p, tid(c, 'phone2'), nxt,
            {w = 'phone2', shop = c.shop, case = c.id, text = t.text, wins = t.wins})
    end
  elseif w == 'explain' then
    return task(c, 'explain', 'review_explanation', n(c.opened) + 30 * DAY, now,
                'day 25: write the explanation; ' .. summary(c))
  elseif w == 'close' then
    return close(p, c, c.explained == '1' and 'explained' or 'expired', now)
  end
end

K.run(H, fire)
