-- crm_care.lua: kefu-crm-care's profiles, segments and care in Redis (follows the kf_worker
-- library). See README.md for every key and rule. Partition = <shop>:<buyer>, so a buyer's
-- profile, caps and care change in one order whatever the number of instances.
--
-- Common A: shop, off, sname, caps ("daily,sms_daily,sms_weekly,phone_daily"), wwin / swin /
-- pwin (the hours im care, sms and phone may go out in). Timers (payload field w):
--   seg:<shop>:<buyer>           'seg'   the next RFM boundary (recompute, win-back)
--   use:<shop>:<order>           'care'  usage care
--   rep:<shop>:<buyer>:<sku>     'care'  replenishment
--   bday:<shop>:<buyer>          'bday'  the birthday (and the gift task)
--   hold:<action id>             'care'  a care contact held to its channel's hours
--   camp:<shop>:<id>:<p>         'batch' a campaign's walk of partition p
--   fest:<shop>:<date>:<p>       'batch' a festival's walk of partition p

local H = {}
local MIN = 60000
local DAY = 86400000
local PROFILE_TTL = 410 * 86400
local ORDER_TTL = 60 * 86400
local STATS_TTL = 400 * 86400
local CAMP_TTL = 90 * 86400
local ITEMS_MAX = 50
local BATCH = 200
local CAMPAIGNS_KEEP = 100
local BOUNDS = {30, 60, 90, 180, 400} -- days after the last paid order: R changes, forget
local MARKETING = {replenish = true, birthday = true, festival = true, winback = true,
                   campaign = true}
-- The care touches that make a buyer "cared" for the repeat-purchase comparison: the ones
-- aimed at this buyer. Order notices, usage care and festival greetings reach every buyer,
-- so counting them would leave no one to compare against.
local TOUCH = {replenish = true, birthday = true, winback = true, campaign = true}

local function n(v) return tonumber(v) or 0 end
local function bkey(shop, buyer) return 'kefu:buyer:{' .. shop .. '}:' .. buyer end
local function ikey(shop, buyer) return 'kefu:crm:items:{' .. shop .. '}:' .. buyer end
local function okey(shop, order) return 'kefu:order:{' .. shop .. '}:' .. order end
local function segkey(shop) return 'kefu:crm:segs:{' .. shop .. '}' end
local function idxkey(shop, p) return 'kefu:crm:idx:{' .. shop .. '}:' .. K.PS[p] end
local function gkey(shop) return 'kefu:stats:crmg:{' .. shop .. '}' end
local function campkey(shop, id) return 'kefu:crm:camp:{' .. shop .. '}:' .. id end
local function daykey(shop, ms, off)
  return 'kefu:stats:crm:{' .. shop .. '}:' .. K.yyyymmdd(ms, off)
end

local function caps(s)
  local a, b, c, d = string.match(s or '', '(%d+),(%d+),(%d+),(%d+)')
  return {daily = n(a), sms_daily = n(b), sms_weekly = n(c), phone_daily = n(d)}
end


local function split(s, sep)
  local t = {}
  for x in string.gmatch(s or '', '[^' .. sep .. ']+') do t[#t + 1] = x end
  return t
end

-- The next 10:00 on the same month-day as ms (a 10:00 local time), a year or more later.
local function next_yearly(ms, off)
  local mmdd = K.yyyymmdd(ms, off) % 10000
  for k = 365, 366 * 8 + 1 do
    local at = ms + k * DAY
    if K.yyyymmdd(at, off) % 10000 == mmdd then return at end
  end
  return nil
end

-- ------------------------------------------------------------------ sending care

-- Care of kind reason due at due can still go out at clk (the freshness rule, K.FRESH).
local function still_fresh(shop, reason, due, clk)
  local till = K.fresh_until({shop_id = shop, reason = reason, fact_at = due, _due = due})
  return not till or till >= clk
end

local function action_id(t)
  if t.order ~= '' then return 'care:' .. t.shop .. ':' .. t.order .. ':' .. t.k end
  return 'care:' .. t.shop .. ':' .. t.buyer .. ':' .. t.k .. ':' .. t.sfx
end

local function policy_contact(t)
  return {shop = t.shop, buyer = t.buyer,
          order = t.order ~= '' and t.order or (t.k .. ':' .. t.sfx),
          reason = 'care_' .. t.k, channel = t.ch,
          class = MARKETING[t.k] and 'marketing' or 'transactional', offset = n(t.off),
          caps = caps(t.caps)}
end


-- The buyer's first care touch: from now on they count as cared (README "Results").
local function touched(t, now)
  local bk = bkey(t.shop, t.buyer)
  local v = call('HMGET', bk, 'cared_at', 'orders')
  if v[1] or n(v[2]) < 1 then return end
  call('HSET', bk, 'cared_at', fmt_int(now))
  local g = gkey(t.shop)
  K.count(g, 'cared', 1, STATS_TTL)
  if n(v[2]) >= 2 then K.count(g, 'uncared_repeat', -1) end
end

-- The name people read for a buyer, else '': the buyer hash's bn, shortened by crm_care.c
-- (a profile stored before bn was kept has none until its next order or profile).
local function buyer_name(shop, buyer)
  return call('HGET', bkey(shop, buyer), 'bn') or ''
end

-- Keeps the buyer's nick, name and the name texts use (A.bname from A.bfrom: a name is never
-- replaced by a nick) in the buyer hash bk.
local function keep_names(bk, A)
  if A.nick ~= '' then call('HSET', bk, 'nick', A.nick) end
  if A.name ~= '' then call('HSET', bk, 'name', A.name) end
  if A.bname ~= '' and (A.bfrom == 'name' or call('HEXISTS', bk, 'name') == 0) then
    call('HSET', bk, 'bn', A.bname)
  end
end

-- Sends care t at now through K.emit: held to its channel's hours (t.wins) unless nohold
-- (order notices go at once; a campaign's walk holds itself), fresh (t.fact: the business
-- time it answers; t.planned: when it was first due), before t.limit, then the contact
-- policy. t: k (kind), shop, buyer, order ('' for buyer care), sfx, ch, tpl, wins, limit, off,
-- caps, sname, v (the template's values). Returns 'sent', 'held' or the block reason.
local function send(p, t, now, nohold)
  t.planned = t.planned or t.due or now
  local c = policy_contact(t)
  if not (nohold and t.ch == 'im') then c.wins = t.wins end -- sms and phone: always held
  local v = t.v or {}
  v.buyer = buyer_name(t.shop, t.buyer)
  local sent, why, at = K.emit('action.contact', {action_id = action_id(t), shop_id = t.shop,
    occurred_at = now, buyer_id = t.buyer, order_id = t.order ~= '' and t.order or nil,
    channel = t.ch, reason = c.reason, template = 'care_' .. t.k, text = K.render(t.tpl, v),
    not_before = now, contact_class = c.class, fact_at = n(t.fact or t.planned),
    _due = n(t.planned), _until = t.limit and n(t.limit) or nil, _off = n(t.off)}, c)
  if why == 'hold' then
    if not t.held then
      t.held = 1
      K.count(daykey(t.shop, now, n(t.off)), 'held:' .. t.k, 1, STATS_TTL)
    end
    t.w = 'care'
    S.add(p, 'hold:' .. action_id(t), at, t)
    return 'held'
  end
  if not sent then
    if why ~= 'backfill' then
      K.count(daykey(t.shop, now, n(t.off)), 'blocked:' .. t.k .. ':' .. why, 1, STATS_TTL)
    end
    return why
  end
  local bk = bkey(t.shop, t.buyer)
  K.count(daykey(t.shop, now, n(t.off)), 'sent:' .. t.k, 1, STATS_TTL)
  if call('EXISTS', bk) == 1 then call('HSET', bk, 'last_contact', fmt_int(now)) end
  if TOUCH[t.k] then touched(t, now) end
  if t.k == 'winback' then call('HSET', bk, 'winback_at', fmt_int(now)) end
  return 'sent'
end

-- ------------------------------------------------------------------ profile and segments

local function has_tag(list, tag)
  for _, x in ipairs(split(list, ',')) do if x == tag then return true end end
  return false
end

-- R, F, M scores and the segment (README "RFM").
local function rfm(orders, spent, d)
  local r = d < 30 * DAY and 5 or d < 60 * DAY and 4 or d < 90 * DAY and 3
            or d < 180 * DAY and 2 or 1
  local f = math.min(orders, 5)
  local m = spent >= 500000 and 5 or spent >= 200000 and 4 or spent >= 50000 and 3
            or spent >= 10000 and 2 or 1
  local seg
  if r == 1 then seg = 'lost'
  elseif r <= 3 then seg = (f + m >= 5) and 'at_risk' or 'hibernating'
  elseif f + m >= 8 then seg = 'champions'
  elseif f + m >= 6 then seg = 'loyal'
  elseif f == 1 and r == 5 then seg = 'new'
  else seg = 'potential' end
  return r, f, m, seg
end

local function move(shop, field, old, new)
  if old == new then return end
  local k = segkey(shop)
  if old and old ~= '' then call('HINCRBY', k, field .. ':' .. old, '-1') end
  if new then call('HINCRBY', k, field .. ':' .. new, '1') end
  call('EXPIRE', k, K.nstr(STATS_TTL))
end

-- 400 days after the last paid order the buyer is forgotten.
local function forget(p, shop, buyer, v)
  local bk = bkey(shop, buyer)
  local orders = n(v.orders)
  move(shop, 'seg', v.segment, nil)
  move(shop, 'lvl', v.level, nil)
  call('ZREM', idxkey(shop, p), buyer)
  local g = gkey(shop)
  K.count(g, 'buyers', -1)
  if orders >= 2 then K.count(g, 'repeat', -1) end
  if v.cared_at then
    K.count(g, 'cared', -1)
    if v.rep_after then K.count(g, 'cared_repeat', -1) end
  elseif orders >= 2 then
    K.count(g, 'uncared_repeat', -1)
  end
  local items = call('HKEYS', ikey(shop, buyer))
  for _, sku in ipairs(items) do S.cancel(p, 'rep:' .. shop .. ':' .. buyer .. ':' .. sku) end
  S.cancel(p, 'bday:' .. shop .. ':' .. buyer)
  call('DEL', bk, ikey(shop, buyer))
end

local PFIELDS = {'orders', 'spent_fen', 'last_order', 'segment', 'level', 'cared_at',
                 'rep_after', 'mtags'}
local function load_profile(shop, buyer)
  local r = call('HMGET', bkey(shop, buyer), unpack(PFIELDS))
  local v = {}
  for i, f in ipairs(PFIELDS) do v[f] = r[i] or nil end
  return v
end

-- Recomputes tags, level, RFM and segment at now and plans the next boundary. ctx is the
-- segment timer's payload (shop settings and texts). Returns the segment (nil: no paid
-- order, or forgotten).
local function recompute(p, shop, buyer, now, ctx)
  local v = load_profile(shop, buyer)
  local orders, spent, last = n(v.orders), n(v.spent_fen), n(v.last_order)
  if orders == 0 then return nil end
  local d = now - last
  if d >= BOUNDS[#BOUNDS] * DAY then return forget(p, shop, buyer, v) end
  local r, f, m, seg = rfm(orders, spent, d)
  local tags = {orders == 1 and 'new' or 'repeat'}
  if orders >= 5 or spent >= 200000 then tags[#tags + 1] = 'loyal' end
  if d >= 180 * DAY then tags[#tags + 1] = 'lost' elseif d >= 90 * DAY then tags[#tags + 1] = 'dormant' end
  local level = spent >= 500000 and 'platinum' or spent >= 200000 and 'gold'
                or spent >= 50000 and 'silver' or 'regular'
  call('HSET', bkey(shop, buyer), 'tags', table.concat(tags, ','), 'level', level,
       'rfm', string.format('%d%d%d', r, f, m), 'segment', seg)
  move(shop, 'seg', v.segment, seg)
  move(shop, 'lvl', v.level, level)
  for _, b in ipairs(BOUNDS) do
    local at = last + b * DAY
    if at > now then
      ctx.w, ctx.shop, ctx.buyer = 'seg', shop, buyer
      S.add(p, 'seg:' .. shop .. ':' .. buyer, at, ctx)
      break
    end
  end
  return seg
end

-- The segment timer's context from an event's arguments.
local function seg_ctx(A)
  return {off = A.off, caps = A.caps, swin = A.swin, wwin = A.wwin, sname = A.sname,
          t_winback = A.t_winback}
end

-- ------------------------------------------------------------------ orders

local function order_buyer(A)
  if A.buyer ~= '' then return A.buyer end
  return call('HGET', A.okey, 'buyer')
end

-- A: okey, order, buyer, at, clk, nick, name, city, total, items
H['order.created'] = function(p, A)
  if call('HSETNX', A.okey, 'cc_created', A.at) == 0 then return 'exists' end
  -- the order keeps its sku ids, one per line; their titles go to the shop's kefu:sku
  local skus, kv = {}, {}
  for sku, title in string.gmatch(A.items or '', '([^\t\n]+)\t([^\n]*)') do
    skus[#skus + 1] = sku
    kv[#kv + 1] = sku
    kv[#kv + 1] = title
  end
  K.titles_put(A.shop, kv)
  call('HSET', A.okey, G, p, 'buyer', A.buyer, 'cc_total', A.total,
       'cc_items', table.concat(skus, '\n'))
  call('HSETNX', A.okey, 'cc_st', 'created') -- a payment may have come first
  call('EXPIRE', A.okey, K.nstr(ORDER_TTL))
  local bk = bkey(A.shop, A.buyer)
  keep_names(bk, A)
  if A.city ~= '' then call('HSET', bk, 'city', A.city) end
  call('HSET', bk, G, p)
  call('EXPIRE', bk, K.nstr(PROFILE_TTL))
  K.arrived(p, A.okey) -- a payment, shipment or scan that came first
  return 'applied'
end

-- The sku ids of an order's cc_items, one per line, and the titles some lines carry (an
-- order stored before kefu:sku has "sku\ttitle" lines).
local function order_items(items)
  local skus, own = {}, {}
  for line in string.gmatch(items or '', '[^\n]+') do
    local sku, title = string.match(line, '^([^\t]+)\t?(.*)$')
    if sku then
      skus[#skus + 1] = sku
      if title ~= '' then own[sku] = title end
    end
  end
  return skus, own
end

-- The title texts name sku by (own: order_items' titles), else 宝贝.
local function title_of(shop, sku, own)
  return (own and own[sku]) or (sku and K.title(shop, sku)) or '宝贝'
end

-- One more purchase of the order's items: the replenishment reminders move.
local function items_bought(p, A, buyer, items, at, clk)
  local ik = ikey(A.shop, buyer)
  local seen = {}
  local skus, own = order_items(items)
  for _, sku in ipairs(skus) do
    if not seen[sku] then
      seen[sku] = true
      local cur = call('HGET', ik, sku)
      if cur or call('HLEN', ik) < ITEMS_MAX then
        local cnt, first, last = 0, at, at
        if cur then
          local a, b, c = string.match(cur, '^(%d+)|(%d+)|(%d+)')
          cnt, first, last = n(a), math.min(n(b), at), math.max(n(c), at)
        end
        cnt = cnt + 1
        call('HSET', ik, sku, fmt_int(cnt) .. '|' .. fmt_int(first) .. '|' .. fmt_int(last))
        local interval = cnt >= 2 and (last - first) / (cnt - 1) or 0
        local id = 'rep:' .. A.shop .. ':' .. buyer .. ':' .. sku
        if interval >= 7 * DAY then
          local due = last + floor(0.85 * interval)
          -- planned only while it can still go out (its freshness, kf_worker.lua)
          if still_fresh(A.shop, 'care_replenish', due, clk) then
            S.add(p, id, math.max(due, clk), {w = 'care', k = 'replenish', shop = A.shop,
              buyer = buyer, order = '', sfx = sku .. ':' .. fmt_int(cnt), n = cnt, sku = sku,
              ch = 'im',
              tpl = A.t_replenish, wins = A.wwin, off = A.off, caps = A.caps, planned = due,
              v = {item = title_of(A.shop, sku, own)}})
          else
            S.cancel(p, id)
          end
        end
      end
    end
  end
  call('EXPIRE', ik, K.nstr(PROFILE_TTL))
end

-- A: okey, order, buyer, at, clk, amount (absent: the order total), t_winback, t_replenish
H['order.paid'] = function(p, A)
  local o = call('HMGET', A.okey, 'buyer', 'cc_paid', 'cc_total', 'cc_items', 'cc_created')
  local buyer = A.buyer ~= '' and A.buyer or o[1]
  if not buyer then return K.keep(A.okey, A) end -- before its order: applied when it arrives
  if o[2] then return 'exists' end
  local at, clk = n(A.at), n(A.clk)
  call('HSET', A.okey, 'cc_paid', '1', 'cc_st', 'paid', G, p, 'buyer', buyer)
  call('EXPIRE', A.okey, K.nstr(ORDER_TTL))
  local amount = A.amount and n(A.amount) or n(o[3])
  local bk = bkey(A.shop, buyer)
  local v = call('HMGET', bk, 'orders', 'first_order', 'last_order', 'cared_at', 'rep_after')
  local orders = n(v[1]) + 1
  local spent = call('HINCRBY', bk, 'spent_fen', amount)
  call('HSET', bk, 'orders', orders, 'avg_fen', floor(spent / orders), G, p,
       'first_order', fmt_int(v[2] and math.min(n(v[2]), at) or at),
       'last_order', fmt_int(math.max(n(v[3]), at)))
  call('EXPIRE', bk, K.nstr(PROFILE_TTL))
  local g, sk = gkey(A.shop), daykey(A.shop, at, n(A.off))
  K.count(sk, 'paid_orders', 1, STATS_TTL)
  if orders == 1 then
    K.count(g, 'buyers', 1, STATS_TTL)
    K.count(sk, 'new_buyers', 1)
    call('ZADD', idxkey(A.shop, p), 0, buyer)
  end
  call('EXPIRE', idxkey(A.shop, p), K.nstr(PROFILE_TTL))
  if orders == 2 then
    K.count(g, 'repeat', 1, STATS_TTL)
    if not v[4] then K.count(g, 'uncared_repeat', 1) end
  end
  if v[4] and at >= n(v[4]) and not v[5] then
    call('HSET', bk, 'rep_after', '1')
    K.count(g, 'cared_repeat', 1, STATS_TTL)
  end
  items_bought(p, A, buyer, o[4], at, clk)
  recompute(p, A.shop, buyer, clk, seg_ctx(A))
  return 'applied'
end

H['order.closed'] = function(p, A)
  if call('EXISTS', A.okey) == 0 then return K.keep(A.okey, A) end
  call('HSET', A.okey, 'cc_st', 'closed')
  S.cancel(p, 'use:' .. A.shop .. ':' .. A.order)
  return 'applied'
end

local OFIELDS = {'buyer', 'cc_items', 'cc_created', 'cc_st', 'cc_carrier', 'cc_tracking'}
local function load_order(key)
  local r = call('HMGET', key, unpack(OFIELDS))
  local o = {}
  for i, f in ipairs(OFIELDS) do o[f] = r[i] or nil end
  o.skus, o.own = order_items(o.cc_items and string.match(o.cc_items, '^[^\n]+'))
  return o
end

local function order_care(A, order, o, kind, extra)
  local t = {k = kind, shop = A.shop, buyer = o.buyer, order = order, ch = 'im', off = A.off,
             caps = A.caps, sname = A.sname,
             v = {item = title_of(A.shop, o.skus[1], o.own), carrier = o.cc_carrier or '',
                  tracking_no = o.cc_tracking or '',
                  order_time = o.cc_created and K.md(n(o.cc_created), n(A.off)) or '',
                  city = A.city or ''}}
  for k, x in pairs(extra or {}) do t[k] = x end
  return t
end

-- An order notice, once per order and kind, at once.
local function notice(p, A, order, o, kind, tpl, now)
  if call('HSETNX', okey(A.shop, order), 'cc:' .. kind, fmt_int(now)) == 0 then return 'exists' end
  send(p, order_care(A, order, o, kind, {tpl = tpl, fact = n(A.at)}), now, true)
  return 'applied'
end

-- Usage care 7 days after the order arrived (signed scan or confirmed), once per order.
-- Timed from the earliest of the two facts, whichever arrived first (DESIGN §3.10); once sent
-- (the timer gone) it is not planned again.
local function plan_usage(p, A, order, o, at, clk)
  if o.cc_st == 'closed' then return end
  local ok = okey(A.shop, order)
  local cur = call('HGET', ok, 'cc_use')
  if cur then
    if n(cur) <= at then return end
    local tk = 'kefu:timers:' .. G .. ':' .. K.PS[p]
    if not call('ZSCORE', tk, 'use:' .. A.shop .. ':' .. order) then return end
  end
  call('HSET', ok, 'cc_use', fmt_int(at))
  local due = at + 7 * DAY
  if not still_fresh(A.shop, 'care_usage', due, clk) then return end
  S.add(p, 'use:' .. A.shop .. ':' .. order, math.max(due, clk),
        order_care(A, order, o, 'usage', {w = 'care', tpl = A.t_usage, wins = A.wwin,
                                           fact = at, planned = due}))
end

-- A: okey, order, buyer, at, clk, tk, tracking, carrier, tpl
H['order.shipped'] = function(p, A)
  local o = load_order(A.okey)
  o.buyer = A.buyer ~= '' and A.buyer or o.buyer
  if not o.buyer then return K.keep(A.okey, A) end -- before its order
  call('HSET', A.okey, 'cc_carrier', A.carrier, 'cc_tracking', A.tracking, G, p, 'buyer', o.buyer)
  call('EXPIRE', A.okey, K.nstr(ORDER_TTL))
  call('HSET', A.tk, 'order', A.order, G, p)
  call('EXPIRE', A.tk, K.nstr(ORDER_TTL))
  o.cc_carrier, o.cc_tracking = A.carrier, A.tracking
  local st = notice(p, A, A.order, o, 'shipped', A.tpl, n(A.clk))
  K.arrived(p, A.tk) -- scans that came first
  K.arrived(p, A.okey)
  return st
end

-- A: order ('' when found by tk), tk, at, clk, city, kind, tpl, t_usage
H['logistics.scan'] = function(p, A)
  local order = A.order
  if order == '' then
    order = call('HGET', A.tk, 'order')
    if not order then return 'unknown_shipment' end
  end
  if A.kind == '' then return 'ignored' end
  local o = load_order(okey(A.shop, order))
  -- before its order or its shipment: the notice names the carrier, so it waits for both
  if not o.buyer or not o.cc_tracking then return K.keep(okey(A.shop, order), A) end
  local st = notice(p, A, order, o, A.kind, A.tpl, n(A.clk))
  if A.kind == 'signed' then plan_usage(p, A, order, o, n(A.at), n(A.clk)) end
  return st
end

-- A: okey, order, buyer, at, clk, t_usage
H['order.confirmed'] = function(p, A)
  local o = load_order(A.okey)
  if not o.buyer then return K.keep(A.okey, A) end
  plan_usage(p, A, A.order, o, n(A.at), n(A.clk))
  return 'applied'
end

-- ------------------------------------------------------------------ buyers

-- A: buyer, clk, nick, name, city, mtags, birthday, bday_at, t_birthday, t_winback
H['buyer.profile'] = function(p, A)
  local bk = bkey(A.shop, A.buyer)
  call('HSET', bk, 'mtags', A.mtags, G, p)
  keep_names(bk, A)
  for _, f in ipairs({'city', 'birthday'}) do
    if A[f] and A[f] ~= '' then call('HSET', bk, f, A[f]) end
  end
  call('EXPIRE', bk, K.nstr(PROFILE_TTL))
  if A.birthday and n(A.bday_at) > 0 then
    S.add(p, 'bday:' .. A.shop .. ':' .. A.buyer, n(A.bday_at), {w = 'bday', shop = A.shop,
          buyer = A.buyer, off = A.off, caps = A.caps, swin = A.swin, sname = A.sname,
          tpl = A.t_birthday})
  end
  recompute(p, A.shop, A.buyer, n(A.clk), seg_ctx(A))
  return 'applied'
end

H['buyer.optout'] = P.optout

-- ------------------------------------------------------------------ campaigns, festivals

local function camp_init(t, launched, event)
  local ck = campkey(t.shop, t.cid)
  call('HSET', ck, 'event', event, 'shop', t.shop, 'name', t.name, 'segment', t.seg or '',
       'tags', t.tags or '', 'level', t.level or '', 'channel', t.ch, 'start', fmt_int(t.start),
       'end', fmt_int(t['end']), 'launched', fmt_int(launched), 'state', 'scheduled',
       'parts_done', 0, 'matched', 0, 'sent', 0, 'blocked', 0, 'expired', 0)
  call('EXPIRE', ck, K.nstr(CAMP_TTL))
  call('ZADD', 'kefu:crm:campaigns', fmt_int(launched), t.shop .. ':' .. t.cid)
  call('ZREMRANGEBYRANK', 'kefu:crm:campaigns', 0, -(CAMPAIGNS_KEEP + 1))
end

-- A: camp, name, segment, tags, level, channel, start, end, clk, tpl
H['campaign.launch'] = function(p, A)
  local t = {w = 'batch', k = 'campaign', cid = A.camp, sfx = A.camp, name = A.name,
             seg = A.segment, tags = A.tags, level = A.level, ch = A.channel, tpl = A.tpl,
             start = n(A.start), ['end'] = n(A['end']), shop = A.shop, off = A.off,
             caps = A.caps, sname = A.sname}
  t.wins = t.ch == 'sms' and A.swin or t.ch == 'phone' and A.pwin or A.wwin
  local ck = campkey(A.shop, A.camp)
  local ev = call('HGET', ck, 'event')
  if ev and ev ~= EVID then return 'exists' end -- another launch of the same campaign
  if not ev then camp_init(t, n(A.clk), EVID) end
  for _, q in ipairs(K.parts) do
    S.add(q, 'camp:' .. A.shop .. ':' .. A.camp .. ':' .. q, math.max(t.start, n(A.clk)), t)
  end
  return 'applied'
end

-- A: agents, fests ("key\tdue\tyearly\tname\ttext" lines)
H['shop.config'] = function(p, A)
  call('SET', 'kefu:crm:agents:{' .. A.shop .. '}', A.agents or '', 'EX', STATS_TTL)
  local fk = 'kefu:crm:fests:{' .. A.shop .. '}'
  local list, keep = {}, {}
  for line in string.gmatch(A.fests or '', '[^\n]+') do
    local key, due, yearly, name, text = string.match(line, '^([^\t]*)\t(%d+)\t(%d)\t([^\t]*)\t(.*)$')
    if key and not keep[key] then
      keep[key] = true
      list[#list + 1] = {key = key, due = n(due), yearly = yearly, name = name, text = text}
    end
  end
  for _, old in ipairs(call('SMEMBERS', fk)) do
    if not keep[old] then
      for _, q in ipairs(K.parts) do S.cancel(q, 'fest:' .. A.shop .. ':' .. old .. ':' .. q) end
    end
  end
  call('DEL', fk)
  for _, f in ipairs(list) do
    call('SADD', fk, f.key)
    local day = K.yyyymmdd(f.due, n(A.off))
    for _, q in ipairs(K.parts) do
      local id = 'fest:' .. A.shop .. ':' .. f.key .. ':' .. q
      local cur = call('ZSCORE', 'kefu:timers:' .. G .. ':' .. K.PS[q], id)
      if not cur or n(cur) > f.due then -- an earlier run of this date is left to finish
        S.add(q, id, f.due, {w = 'batch', k = 'festival', cid = 'festival-' .. day, sfx = day,
              name = f.name, yearly = f.yearly, ch = 'sms', tpl = f.text, wins = A.swin,
              start = f.due, ['end'] = f.due + 12 * 3600000, shop = A.shop, off = A.off,
              caps = A.caps, sname = A.sname, key = f.key})
      end
    end
  end
  call('EXPIRE', fk, K.nstr(STATS_TTL))
  return 'applied'
end

-- Does the buyer's profile pass the batch's filters? (v: orders, segment, level, tags, mtags)
local function matches(t, v)
  if n(v[1]) < 1 then return false end
  if t.k == 'festival' then return v[2] ~= 'lost' end
  if t.seg and t.seg ~= '' and v[2] ~= t.seg then return false end
  if t.level and t.level ~= '' and v[3] ~= t.level then return false end
  for _, tag in ipairs(split(t.tags, ',')) do
    if not has_tag(v[4], tag) and not has_tag(v[5], tag) then return false end
  end
  return true
end

-- One step of a campaign's (or festival's) walk of partition p.
local function batch(p, id, t, now)
  local ck = campkey(t.shop, t.cid)
  if call('EXISTS', ck) == 0 then camp_init(t, now, t.k) end
  local idx = idxkey(t.shop, p)
  local function walk(limit, sendit)
    local list = call('ZRANGEBYLEX', idx, t.cur and ('(' .. t.cur) or '-', '+', 'LIMIT', 0, limit)
    for _, buyer in ipairs(list) do
      local v = call('HMGET', bkey(t.shop, buyer), 'orders', 'segment', 'level', 'tags', 'mtags')
      if matches(t, v) then
        call('HINCRBY', ck, 'matched', '1')
        if not sendit then
          call('HINCRBY', ck, 'expired', '1')
        else
          local r = send(p, {k = t.k, shop = t.shop, buyer = buyer, order = '', sfx = t.sfx,
                             ch = t.ch, tpl = t.tpl, off = t.off, caps = t.caps, sname = t.sname,
                             v = {}, fact = t.start, planned = t.start, limit = t['end'],
                             wins = t.wins}, now, true)
          if r == 'sent' then
            call('HINCRBY', ck, 'sent', '1')
          else
            call('HINCRBY', ck, 'blocked', '1')
            call('HINCRBY', ck, 'blocked:' .. r, '1')
          end
        end
      end
    end
    return list
  end
  local function finish()
    if call('HINCRBY', ck, 'parts_done', '1') >= 64 then call('HSET', ck, 'state', 'done') end
    if t.k == 'festival' and t.yearly == '1' then
      local nx = next_yearly(t.start, n(t.off))
      if nx then
        local day = K.yyyymmdd(nx, n(t.off))
        t.cur, t.start, t['end'], t.sfx, t.cid = nil, nx, nx + 12 * 3600000, day, 'festival-' .. day
        S.add(p, id, nx, t)
      end
    end
  end
  local at = P.next_allowed(now, n(t.off), t.wins)
  if now > t['end'] or at < 0 or at > t['end'] then
    walk(1000000, false) -- the window is over: what is left expired
    return finish()
  end
  if at ~= now then return S.add(p, id, at, t) end
  if call('HGET', ck, 'state') == 'scheduled' then call('HSET', ck, 'state', 'sending') end
  local list = walk(BATCH, true)
  if #list == BATCH then
    t.cur = list[#list]
    return S.add(p, id, now + MIN, t)
  end
  finish()
end

-- ------------------------------------------------------------------ timers

-- Is held or planned care still wanted at now?
local function still(t, now)
  if t.k == 'usage' then
    return call('HGET', okey(t.shop, t.order), 'cc_st') ~= 'closed'
  elseif t.k == 'replenish' then
    local cur = call('HGET', ikey(t.shop, t.buyer), t.sku)
    return cur ~= false and n(string.match(cur, '^(%d+)|')) == n(t.n)
  elseif t.k == 'winback' then
    local v = call('HMGET', bkey(t.shop, t.buyer), 'segment', 'winback_at')
    return v[1] == 'at_risk' and (not v[2] or now - n(v[2]) >= 30 * DAY)
  elseif t.k == 'birthday' or t.k == 'festival' or t.k == 'campaign' then
    return n(call('HGET', bkey(t.shop, t.buyer), 'orders')) >= 1
  end
  return true
end

local function fire(p, id, due, t)
  local now = K.now
  if t.w == 'care' then
    if still(t, now) then send(p, t, now) end
  elseif t.w == 'seg' then
    local seg = recompute(p, t.shop, t.buyer, now, t)
    if seg == 'at_risk' then
      local wb = {k = 'winback', shop = t.shop, buyer = t.buyer, order = '',
                  sfx = tostring(K.yyyymmdd(now, n(t.off))), ch = 'sms', tpl = t.t_winback,
                  wins = t.swin, off = t.off, caps = t.caps,
                  sname = t.sname, planned = due}
      if still(wb, now) then send(p, wb, now) end
    end
  elseif t.w == 'bday' then
    local v = call('HMGET', bkey(t.shop, t.buyer), 'orders', 'tags')
    if v[1] == false and call('EXISTS', bkey(t.shop, t.buyer)) == 0 then return end -- forgotten
    local year = tostring(floor(K.yyyymmdd(due, n(t.off)) / 10000))
    if n(v[1]) >= 1 then
      send(p, {k = 'birthday', shop = t.shop, buyer = t.buyer, order = '', sfx = year,
               ch = 'sms', tpl = t.tpl, wins = t.swin, off = t.off,
               caps = t.caps, sname = t.sname, planned = due}, now)
      if has_tag(v[2], 'loyal') then
        local agents = call('GET', 'kefu:crm:agents:{' .. t.shop .. '}') or ''
        local name = buyer_name(t.shop, t.buyer)
        K.emit('action.task', {task_id = 'care:' .. t.shop .. ':' .. t.buyer .. ':gift:' .. year,
          shop_id = t.shop, occurred_at = now, buyer_id = t.buyer,
          agent_id = K.agent_for(t.buyer, agents), kind = 'care_gift', reason = 'care_gift',
          due_at = now + DAY, severity = 'info', priority = 3,
          fact_at = due, _due = due, _off = n(t.off),
          summary = '老顾客生日: 请为' .. (name ~= '' and (' ' .. name .. ' ') or '这位老顾客') ..
                    '准备生日礼物/贺卡'})
      end
    end
    local nx = next_yearly(due, n(t.off))
    if nx then S.add(p, id, nx, t) end
  elseif t.w == 'batch' then
    batch(p, id, t, now)
  end
end

K.run(H, fire)
