-- pay_reminder.lua: kefu-pay-reminder's state in Redis (follows the kf_worker library).
--
-- kefu:order:{shop}:<order_id>  HASH: facts (buyer, total, created, day, deadline) and this
--   group's state: 'pay-reminder' = partition, pr_st open|paid|closed, pr_n reminders sent,
--   pr_t timers planned, pr_u = 1 once counted unpaid. 40 days.
-- kefu:buyer:{shop}:<buyer_id>  HASH paid = paid orders seen (repeat buyers). 400 days.
-- kefu:stats:pay:{shop}:<yyyymmdd> HASH: the day's results (README). 400 days.
-- Timers: <shop>:<order_id>:<n>, payload = the step planned by pay_reminder.c.

local H = {}
local ORDER_TTL = 40 * 86400
local BUYER_TTL = 400 * 86400
local STATS_TTL = 400 * 86400

-- A: okey, bkey, skey, tid, shop, buyer, total, created, day, deadline, and the plan:
-- steps = n, d<i> = due ms, s<i> = the timer payload (JSON) of step i; for a repeat buyer
-- the same as rsteps, rd<i>, rs<i> when given.
H['order.created'] = function(p, A)
  local ok = A.okey
  if call('HEXISTS', ok, G) == 1 then return 'exists' end
  local pre = ''
  if A.rsteps and tonumber(call('HGET', A.bkey, 'paid') or '0') >= 1 then pre = 'r' end -- repeat
  local n = tonumber(A[pre .. 'steps'])
  call('HSET', ok, G, p, 'buyer', A.buyer, 'total', A.total, 'created', A.created,
       'day', A.day, 'deadline', A.deadline, 'pr_st', 'open', 'pr_n', '0', 'pr_t',
       A[pre .. 'steps'])
  call('EXPIRE', ok, K.nstr(ORDER_TTL))
  for i = 1, n do
    S.add(p, A.tid .. ':' .. i, tonumber(A[pre .. 'd' .. i]), A[pre .. 's' .. i])
  end
  K.count(A.skey, 'orders', 1, STATS_TTL)
  K.arrived(p, ok) -- a payment or close that came first
  return 'applied'
end

-- order.paid / order.closed: cancel what is pending, count the result.
-- A: okey, tid, shop, amount ('' when absent)
local function finish(p, A, st)
  local ok = A.okey
  local o = call('HMGET', ok, 'pr_st', 'buyer', 'total', 'day', 'pr_n', 'pr_t')
  if not o[1] then return K.keep(ok, A) end -- before its order: applied when it arrives
  if o[1] ~= 'open' then return 'ignored' end
  call('HSET', ok, 'pr_st', st)
  for i = 1, tonumber(o[6] or '0') do S.cancel(p, A.tid .. ':' .. i) end
  local skey = 'kefu:stats:pay:{' .. A.shop .. '}:' .. o[4]
  if st == 'paid' then
    K.count('kefu:buyer:{' .. A.shop .. '}:' .. o[2], 'paid', 1, BUYER_TTL)
    K.count(skey, 'paid', 1, STATS_TTL)
    if tonumber(o[5] or '0') > 0 then
      K.count(skey, 'paid_after_reminder', 1)
      local amount = tonumber(A.amount) or tonumber(o[3]) or 0
      K.count(skey, 'recovered_fen', amount)
    end
  else
    K.count(skey, 'closed', 1, STATS_TTL)
  end
  return 'applied'
end

H['order.paid'] = function(p, A) return finish(p, A, 'paid') end
H['order.closed'] = function(p, A) return finish(p, A, 'closed') end
H['buyer.optout'] = P.optout

-- A reminder comes due. t: n, ch, okey, skey, shop, buyer, order, off, caps, wins, limit,
-- deadline, drop (a block reason when it could not be placed), a (the action).
local function fire(p, id, due, t)
  local now = K.now
  local ok = t.okey
  local o = call('HMGET', ok, 'pr_st', 'pr_n', 'pr_u', 'created')
  if o[1] ~= 'open' then return end
  local c = {shop = t.shop, buyer = t.buyer, order = t.order, reason = 'payment_reminder',
             channel = t.ch, class = 'marketing', offset = t.off, caps = t.caps, wins = t.wins}
  if not o[3] then
    call('HSET', ok, 'pr_u', '1')
    K.count(t.skey, 'unpaid', 1)
  end
  local function block(why)
    P.block(c, why, now)
    K.count(t.skey, 'blocked:' .. why, 1)
  end
  if t.drop then return block(t.drop) end -- could not be placed before its limit (pay_reminder.c)
  local sent = tonumber(o[2] or '0')
  if sent >= 2 then return block('max_reminders') end
  local a = t.a
  a.occurred_at, a.not_before, a.fact_at = now, due, tonumber(o[4]) or due
  a._due, a._until = due, t.limit
  local done, why, at = K.emit('action.contact', a, c)
  if not done then
    if why == 'hold' then return S.add(p, id, at, t) end -- fired late: held again
    return K.count(t.skey, 'blocked:' .. why, 1)
  end
  call('HINCRBY', ok, 'pr_n', '1')
  K.count(t.skey, 'reminders', 1)
  K.count(t.skey, 'reminders_' .. t.ch, 1)
  if sent == 0 then K.count(t.skey, 'reminded', 1) end
end

K.run(H, fire)
