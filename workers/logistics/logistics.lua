-- logistics.lua: kefu-logistics's state in Redis (follows the kf_worker library). See README.md.
--
-- Common A: okey, shop, order, off (UTC offset), cph (phone cap), agent, shopname; per event
-- what the C handler adds. Timers: <shop>:<order>:<watch>, payload {w, at (the scan it was
-- timed from), kind, sev, tpl, base fields}.

local H = {}
local TTL = 40 * 86400
local STATS_TTL = 400 * 86400
local HOUR = 3600000
local DAY = 86400000
local RESOLVE_CAP = 10000
local REMOTE = {'新疆', '西藏', '青海', '内蒙古', '甘肃', '宁夏', '海南'}

local function n(v) return tonumber(v) or 0 end

-- The shipment's fields (false when absent).
local FIELDS = {'lg_st', 'lg_at', 'lg_code', 'lg_city', 'tracking', 'carrier', 'buyer',
                'to_city', 'to_province', 'bname', 'item', 'created', 'lg_promised',
                'dest_city', 'dest_province', 'sku'}

local function load(A)
  local v = call('HMGET', A.okey, unpack(FIELDS))
  local o = {okey = A.okey, shop = A.shop, order = A.order, off = n(A.off), cph = n(A.cph),
             agents = A.agents, agent = K.agent_for(A.order, A.agents) or '', shopname = A.shopname}
  for i, f in ipairs(FIELDS) do o[f] = v[i] end
  return o
end

local function tid(o, w) return o.shop .. ':' .. o.order .. ':' .. w end
local function skey(o, now) return 'kefu:stats:lg:{' .. o.shop .. '}:' .. K.yyyymmdd(now, o.off) end

local function render(o, tpl, now)
  local item = o.item or (o.sku and K.title(o.shop, o.sku)) or '宝贝'
  local vars = {buyer = o.bname or '', shop = o.shopname or o.shop, item = item,
                carrier = o.carrier or '快递', tracking_no = o.tracking or '',
                order_time = o.created and K.md(n(o.created), o.off, true) or '',
                deadline = K.md(n(o.lg_promised) > 0 and n(o.lg_promised) + DAY or now + DAY, o.off, true)}
  return K.render(tpl, vars)
end

-- An anomaly of kind opens at fact (the business time it became one), counted once per
-- shipment and kind (the order hash's lg_seen:<kind>: counted once even when it opens again).
local function open(o, kind, fact)
  local z = 'kefu:lg:open:{' .. o.shop .. '}'
  call('ZREMRANGEBYSCORE', z, '-inf', '(' .. fmt_int(K.now - 60 * DAY)) -- never resolved: 60 days
  if fact < K.now - 60 * DAY then return end -- older than anything the report keeps
  if call('ZADD', z, 'NX', fmt_int(fact), o.order .. ':' .. kind) == 1 and
     call('HSETNX', o.okey, 'lg_seen:' .. kind, '1') == 1 then
    local sk = skey(o, fact)
    K.count(sk, 'anomalies', 1, STATS_TTL)
    K.count(sk, 'anomaly:' .. kind, 1)
    -- per carrier: shipments with an anomaly (a shipment counts once, whatever its kinds)
    if o.carrier and call('HSETNX', o.okey, 'lg_anom', '1') == 1 then
      K.count('kefu:stats:lgc:{' .. o.shop .. '}', o.carrier .. ':anomalies', 1)
    end
  end
end

local function resolve(o, kinds, now)
  local z = 'kefu:lg:open:{' .. o.shop .. '}'
  for _, kind in ipairs(kinds) do
    local m = o.order .. ':' .. kind
    local since = call('ZSCORE', z, m)
    if since then
      call('ZREM', z, m)
      local rl = 'kefu:lg:resolve:{' .. o.shop .. '}'
      call('LPUSH', rl, fmt_int(now - tonumber(since)))
      call('LTRIM', rl, 0, RESOLVE_CAP - 1)
      K.count(skey(o, now), 'resolved', 1, STATS_TTL)
    end
  end
end
local MOVING_KINDS = {'no_pickup_scan', 'stalled', 'lost', 'uncollected', 'difficult'}
local ALL_KINDS = {'overdue_shipping', 'no_pickup_scan', 'stalled', 'lost', 'difficult',
                   'uncollected', 'signed_by_other', 'out_of_area', 'refused', 'returning',
                   'damaged', 'area_delay'}

local function id(o, kind, what) return 'lg:' .. o.shop .. ':' .. o.order .. ':' .. kind .. ':' .. what end
local function once(o, kind, what)
  return call('HSETNX', o.okey, 'lg_' .. what .. ':' .. kind, '1') == 1
end

-- What an agent reads: the kind, the carrier and tracking number (or the order), the buyer.
local function summary(o, kind)
  local what = o.tracking and ((o.carrier and o.carrier ~= '' and (o.carrier .. ' ') or '') ..
                               o.tracking) or ('订单 ' .. o.order)
  local who = (o.bname and o.bname ~= '') and (' · ' .. o.bname) or ''
  return kind .. ': ' .. what .. who
end

-- Alerts, tasks and contacts answer a fact at `fact` (a scan, or the time a watch came due);
-- K.emit drops them when that is past the freshness window.
local function alert(o, kind, sev, now, fact)
  if not once(o, kind, 'alert') then return end
  open(o, kind, fact)
  K.emit('action.alert', {alert_id = id(o, kind, 'alert'), shop_id = o.shop, occurred_at = now,
    kind = kind, severity = sev, order_id = o.order, buyer_id = o.buyer or nil,
    tracking_no = o.tracking or nil, reason = 'logistics_' .. kind, fact_at = fact,
    summary = summary(o, kind)})
end

local function task(o, kind, sev, now, fact, due)
  if not once(o, kind, 'task') then return end
  open(o, kind, fact)
  K.emit('action.task', {task_id = id(o, kind, 'task'), shop_id = o.shop, occurred_at = now,
    kind = kind, severity = sev, priority = sev == 'high' and 1 or 2, due_at = due,
    agent_id = (o.agent ~= '' and o.agent) or nil, order_id = o.order, buyer_id = o.buyer or nil,
    reason = 'logistics_' .. kind, fact_at = fact, summary = summary(o, kind)})
end

local function contact(o, kind, now, fact, tpl)
  if not o.buyer or not once(o, kind, 'contact') then return end
  local c = {shop = o.shop, buyer = o.buyer, order = o.order, reason = 'logistics_' .. kind,
             channel = 'im', class = 'transactional', offset = o.off,
             caps = {daily = 0, sms_daily = 0, sms_weekly = 0, phone_daily = o.cph}}
  local sent, why = K.emit('action.contact', {action_id = id(o, kind, 'contact'),
    shop_id = o.shop, occurred_at = now, buyer_id = o.buyer, order_id = o.order, channel = 'im',
    reason = 'logistics_' .. kind, template = 'logistics_' .. kind, text = render(o, tpl, now),
    not_before = now, contact_class = 'transactional', fact_at = fact}, c)
  if not sent and why ~= 'backfill' then K.count(skey(o, fact), 'blocked:' .. why, 1, STATS_TTL) end
end

local function timer(p, o, w, due, extra)
  local t = {w = w, okey = o.okey, shop = o.shop, order = o.order, off = o.off, cph = o.cph,
             agents = o.agents, shopname = o.shopname}
  for k, v in pairs(extra or {}) do t[k] = v end
  S.add(p, tid(o, w), due, t)
end
local function cancel(p, o, ws) for _, w in ipairs(ws) do S.cancel(p, tid(o, w)) end end
local WATCHES = {'ship_warn', 'ship_due', 'pickup_warn', 'pickup_high', 'stall', 'lost',
                 'locker', 'diff_esc'}

local function moving_key(o, p) return 'kefu:lg:moving:{' .. o.shop .. '}:' .. K.PS[p] end

local function finish(p, o, now)
  cancel(p, o, WATCHES)
  for _, kind in ipairs(ALL_KINDS) do K.task_done(id(o, kind, 'task')) end
  resolve(o, ALL_KINDS, now)
  call('SREM', moving_key(o, p), o.order)
  call('HSET', o.okey, 'lg_st', 'ended')
end

-- A remote destination: the province (order.shipped's, else the buyer's from order.created,
-- mapped from the city by the C side), or a province named in the last scan's city.
local function remote(o)
  local prov, city = o.to_province or o.dest_province or '', o.lg_city or ''
  for _, r in ipairs(REMOTE) do
    if string.find(prov, r, 1, true) == 1 or string.find(city, r, 1, true) then return true end
  end
  return false
end

-- kuaidi100 group of a state code
local function group(code)
  if code >= 1000 then return 0 end
  if code >= 100 then return floor(code / 100) end
  if code == 14 then return 4 end
  return code
end

H['order.created'] = function(p, A)
  call('HSET', A.okey, G, p, 'bname', A.bname, 'created', A.created,
       'buyer', A.buyer, 'dest_city', A.dest_city, 'dest_province', A.dest_province)
  if A.sku ~= '' then -- the title once per shop and sku (K.titles_put)
    call('HSET', A.okey, 'sku', A.sku)
    if A.item ~= '' then K.titles_put(A.shop, {A.sku, A.item}) end
  elseif A.item ~= '' then
    call('HSET', A.okey, 'item', A.item)
  end
  call('EXPIRE', A.okey, K.nstr(TTL))
  K.arrived(p, A.okey) -- a payment, shipment or scan that came first
  return 'applied'
end

H['order.paid'] = function(p, A)
  local o = load(A)
  if o.lg_st then return 'ignored' end
  local promised = n(A.promised)
  call('HSET', o.okey, G, p, 'lg_st', 'paid', 'lg_promised', A.promised)
  if A.buyer and A.buyer ~= '' then call('HSET', o.okey, 'buyer', A.buyer) end
  call('EXPIRE', o.okey, K.nstr(TTL))
  timer(p, o, 'ship_warn', promised - 6 * HOUR)
  timer(p, o, 'ship_due', promised, {tpl = A.tpl})
  -- no tracking record 72 h after payment lets the buyer claim a refund (seed 004 §1.4.5):
  -- 12 h before that, shipped or not
  timer(p, o, 'pickup_high', n(A.at) + 60 * HOUR, {claim = n(A.at) + 72 * HOUR})
  return 'applied'
end

H['order.shipped'] = function(p, A)
  local o = load(A)
  if o.lg_st == 'ended' or o.lg_st == 'shipped' or o.lg_st == 'moving' then
    K.arrived(p, o.okey) -- scans kept for it end here (ignored: the order is past them)
    return 'ignored'
  end
  local at = n(A.at)
  local to_city = A.to_city ~= '' and A.to_city or o.dest_city or ''
  local to_prov = A.to_province ~= '' and A.to_province or
                  (A.to_city ~= '' and '' or o.dest_province) or ''
  call('HSET', o.okey, G, p, 'lg_st', 'shipped', 'tracking', A.tracking, 'carrier', A.carrier,
       'to_city', to_city, 'to_province', to_prov, 'lg_shipped', A.at)
  if A.buyer and A.buyer ~= '' then call('HSET', o.okey, 'buyer', A.buyer) end
  if A.promised and A.promised ~= '' and not o.lg_promised then
    call('HSET', o.okey, 'lg_promised', A.promised)
  end
  call('EXPIRE', o.okey, K.nstr(TTL))
  local tk = 'kefu:track:{' .. o.shop .. '}:' .. A.tracking
  call('HSET', tk, 'order', o.order, G, p)
  call('EXPIRE', tk, K.nstr(TTL))
  cancel(p, o, {'ship_warn', 'ship_due'})
  resolve(o, {'overdue_shipping'}, at)
  call('SADD', moving_key(o, p), o.order) -- open until it ends
  K.count(skey(o, at), 'shipped', 1, STATS_TTL)
  K.count('kefu:stats:lgc:{' .. o.shop .. '}', A.carrier .. ':shipments', 1)
  timer(p, o, 'pickup_warn', at + 24 * HOUR)
  K.arrived(p, 'kefu:track:{' .. o.shop .. '}:' .. A.tracking) -- scans that came first
  K.arrived(p, o.okey)
  return 'applied'
end

local function ended(p, A)
  local o = load(A)
  if not o.lg_st then return 'ignored' end
  if o.lg_st ~= 'ended' then finish(p, o, n(A.at)) else resolve(o, ALL_KINDS, n(A.at)) end
  return 'applied'
end
H['order.confirmed'] = ended
H['order.closed'] = ended
H['buyer.optout'] = P.optout

H['logistics.scan'] = function(p, A)
  if A.order == '' then -- found through the tracking number
    A.order = call('HGET', A.tk, 'order')
    if not A.order then return 'unknown_shipment' end
    A.okey = 'kefu:order:{' .. A.shop .. '}:' .. A.order
  end
  local o = load(A)
  if not o.lg_st or o.lg_st == 'paid' then return K.keep(A.okey, A) end -- before its shipment
  if o.lg_st == 'ended' then return 'ignored' end
  local at, code = n(A.at), n(A.code)
  if o.lg_at and (at < n(o.lg_at) or (at == n(o.lg_at) and code == n(o.lg_code))) then
    K.count('kefu:stats:worker:' .. G, 'late_scans', 1)
    return 'late'
  end
  local g = group(code)
  -- the watches the previous state planned that this scan does not plan again (those it
  -- plans again are moved by S.add; a watch missed here fires as a no-op: each checks the
  -- scan or the state it was planned for)
  local pc = n(o.lg_code)
  local stale = {}
  if o.lg_st == 'shipped' then stale = {'pickup_warn', 'pickup_high'} end
  if o.lg_at then
    local pg = group(pc)
    if g == 2 or g == 4 or g == 6 then stale[#stale + 1] = 'stall' end
    if g == 4 or g == 6 then stale[#stale + 1] = 'lost' end
    if pc == 205 then stale[#stale + 1] = 'locker' end
    if pg == 2 and pc ~= 202 and pc ~= 208 and pc ~= 205 and pc ~= 207 and pc ~= 209 then
      stale[#stale + 1] = 'diff_esc'
    end
  end
  cancel(p, o, stale)
  resolve(o, MOVING_KINDS, at)
  call('HSET', o.okey, 'lg_st', 'moving', 'lg_at', A.at, 'lg_code', A.code, 'lg_city', A.city)
  o.lg_at, o.lg_code, o.lg_city = A.at, A.code, A.city
  if g == 3 then
    finish(p, o, at)
    if code == 303 then -- open until the buyer confirms receipt
      alert(o, 'signed_by_other', 'info', at, at)
      contact(o, 'signed_by_other', at, at, A.tpl)
    end
    return 'applied'
  end
  local mk = moving_key(o, p)
  if g == 4 or g == 6 then
    local kind = g == 4 and 'refused' or 'returning'
    task(o, kind, g == 4 and 'high' or 'warn', at, at, at + DAY)
    contact(o, kind, at, at, A.tpl)
    call('SREM', mk, o.order)
    return 'applied'
  end
  call('SADD', mk, o.order)
  if g == 2 then
    if code == 202 or code == 208 then
      alert(o, 'stalled', 'warn', at, at)
    elseif code == 205 then
      timer(p, o, 'locker', at + 2 * DAY, {at = at, tpl = A.tpl})
    elseif code == 207 then
      task(o, 'out_of_area', 'warn', at, at, at + DAY)
      contact(o, 'out_of_area', at, at, A.tpl)
    elseif code == 209 then
      task(o, 'damaged', 'high', at, at, at + DAY)
      contact(o, 'damaged', at, at, A.tpl)
    else
      task(o, 'difficult', 'warn', at, at, at + DAY)
      contact(o, 'difficult', at, at, A.tpl)
      timer(p, o, 'diff_esc', at + 2 * DAY, {at = at})
    end
  else
    timer(p, o, 'stall', at + (remote(o) and 72 or 48) * HOUR, {at = at})
  end
  timer(p, o, 'lost', at + 7 * DAY, {at = at, tpl = A.tpl_lost})
  return 'applied'
end

-- A city without its 市 suffix (北京市 = 北京), so that scans, orders and delays agree.
local function bare(city)
  return (string.gsub(city or '', '市$', ''))
end
local function hit(cities, city) return city and city ~= '' and cities[bare(city)] end

-- logistics.area_delay (every owned partition): A.cities (one per line), A['until'], A.tpl
H['logistics.area_delay'] = function(p, A)
  local till = n(A['until'])
  local cities = {}
  local dk = 'kefu:lg:delay:{' .. A.shop .. '}'
  for city in string.gmatch(A.cities or '', '[^\n]+') do
    city = bare(city)
    cities[city] = true
    if n(call('HGET', dk, city)) < till then call('HSET', dk, city, fmt_int(till)) end
  end
  call('EXPIRE', dk, K.nstr(TTL))
  for q = 0, 63 do
    if owned(q) then
      for _, order in ipairs(call('SMEMBERS', 'kefu:lg:moving:{' .. A.shop .. '}:' .. K.PS[q])) do
        local o = load({okey = 'kefu:order:{' .. A.shop .. '}:' .. order, shop = A.shop,
                        order = order, off = A.off, cph = A.cph, agents = A.agents,
                        shopname = A.shopname})
        -- by the last scan's city or the destination
        if hit(cities, o.lg_city) or hit(cities, o.to_city) or hit(cities, o.dest_city) then
          contact(o, 'area_delay', n(A.at), n(A.at), A.tpl)
        end
      end
    end
  end
  return 'applied'
end

-- A watch comes due.
local function fire(p, id_, due, t)
  local now = K.now
  local o = load(t)
  if o.lg_st == 'ended' or not o.lg_st then return end
  local w = t.w
  if w == 'ship_warn' or w == 'ship_due' then
    if o.lg_st ~= 'paid' then return end
    if w == 'ship_warn' then return alert(o, 'overdue_shipping', 'warn', now, due) end
    K.count(skey(o, due), 'overdue_shipping', 1, STATS_TTL) -- the day it became overdue
    task(o, 'overdue_shipping', 'high', now, due, now + DAY)
    return contact(o, 'overdue_shipping', now, due, t.tpl)
  end
  if w == 'pickup_warn' then
    if o.lg_st ~= 'shipped' then return end
    return alert(o, 'no_pickup_scan', 'warn', now, due)
  end
  if w == 'pickup_high' then -- paid, no scan yet, shipped or not
    if o.lg_st ~= 'shipped' and o.lg_st ~= 'paid' then return end
    alert(o, 'no_pickup_scan', 'high', now, due) -- unless the 24 h one went already
    return task(o, 'no_pickup_scan', 'high', now, due, n(t.claim))
  end
  if t.at and n(o.lg_at) ~= n(t.at) then return end -- a newer scan answered it
  if w == 'stall' or w == 'lost' then
    local dk = 'kefu:lg:delay:{' .. o.shop .. '}'
    local mute = 0
    for _, city in ipairs({o.lg_city, o.to_city or o.dest_city}) do
      if city and city ~= '' then mute = math.max(mute, n(call('HGET', dk, bare(city)))) end
    end
    if mute > now then return S.add(p, id_, mute, t) end
    if w == 'stall' then return alert(o, 'stalled', 'warn', now, due) end
    call('SREM', moving_key(o, p), o.order) -- lost: no more area notices
    task(o, 'lost', 'high', now, due, now + DAY)
    return contact(o, 'lost', now, due, t.tpl)
  end
  if w == 'locker' then
    open(o, 'uncollected', due)
    return contact(o, 'uncollected', now, due, t.tpl)
  end
  if w == 'diff_esc' then return alert(o, 'difficult', 'high', now, due) end
end

K.run(H, fire)
