-- kf_policy.lua: the contact policy of DOMAIN §0, enforced in Redis for the whole fleet
-- (follows kf_worker.lua and kf_sched.lua in one script).
--
-- A contact c is a table: shop, buyer, order ('' when none), reason, channel ('im' | 'sms'
-- | 'phone'), class ('marketing' | 'transactional'), offset (UTC offset, minutes), caps
-- {daily, sms_daily, sms_weekly, phone_daily}. Keys:
--   kefu:optout:{shop}:<buyer>              SET of opted-out channels ('all' = every one)
--   kefu:contact:{shop}:<buyer>:<yyyymmdd>  HASH n (contacts), msms (marketing sms), phone;
--                                           by shop-local day, 8 days
--   kefu:sent:{shop}:<buyer>:<order>        HASH '<reason>:<channel>' = ms sent, last =
--                                           channel; 30 days
--   kefu:blocked                            STREAM of blocked contacts (capped)

-- P is declared in kf_worker.lua (K.emit uses it).
local DAY = 86400000
local CONTACT_TTL = 8 * 86400
local SENT_TTL = 30 * 86400
local BLOCKED_MAXLEN = 100000

local function cap_key(c, day) return 'kefu:contact:{' .. c.shop .. '}:' .. c.buyer .. ':' .. day end
local function sent_key(c)
  return 'kefu:sent:{' .. c.shop .. '}:' .. c.buyer .. ':' .. (c.order ~= '' and c.order or '-')
end

-- The first moment >= ms inside one of the allowed windows "s-e,s-e" (local minutes of the
-- day, e < s runs over midnight; '' = always allowed); -1 when none within 8 days.
function P.next_allowed(ms, offset, wins)
  if wins == nil or wins == '' then return ms end
  local off = offset * 60000
  local mid = floor((ms + off) / DAY) * DAY - off -- local midnight of ms's day
  local best = -1
  for s, e in string.gmatch(wins, '(%d+)-(%d+)') do
    s, e = tonumber(s), tonumber(e)
    local pieces = (e < s) and {{s, 1440}, {0, e}} or {{s, e}}
    for _, pc in ipairs(pieces) do
      if pc[2] > pc[1] then
        for k = 0, 8 do
          local a, b = mid + k * DAY + pc[1] * 60000, mid + k * DAY + pc[2] * 60000
          if ms < b then
            local at = ms > a and ms or a
            if best < 0 or at < best then best = at end
            break
          end
        end
      end
    end
  end
  return best
end

-- What "the same reason" means: reason and channel, plus the attempt when a rule allows a
-- second try (c.attempt, e.g. a second phone call for one case).
function P.sent_field(c)
  return c.reason .. ':' .. c.channel .. (c.attempt and (':' .. c.attempt) or '')
end

-- nil when c may be contacted at now, else the reason it may not.
function P.check(c, now)
  local oo = 'kefu:optout:{' .. c.shop .. '}:' .. c.buyer
  if call('SISMEMBER', oo, 'all') == 1 or call('SISMEMBER', oo, c.channel) == 1 then
    return 'optout'
  end
  local sk = sent_key(c)
  if call('HEXISTS', sk, P.sent_field(c)) == 1 then return 'same_reason' end
  if c.class == 'marketing' and c.order ~= '' and call('HGET', sk, 'last') == c.channel then
    return 'same_channel' -- a follow-up reminder must change channel
  end
  local day = yyyymmdd(now, c.offset)
  local h = call('HMGET', cap_key(c, day), 'n', 'msms', 'phone')
  local n, msms, phone = tonumber(h[1] or '0'), tonumber(h[2] or '0'), tonumber(h[3] or '0')
  if c.channel == 'phone' and phone >= c.caps.phone_daily then return 'cap_phone_daily' end
  if c.class ~= 'marketing' then return nil end -- transactional: counted, not capped
  if n >= c.caps.daily then return 'cap_daily' end
  if c.channel == 'sms' then
    if msms >= c.caps.sms_daily then return 'cap_sms_daily' end
    local week = msms
    for k = 1, 6 do
      week = week + tonumber(call('HGET', cap_key(c, yyyymmdd(now - k * DAY, c.offset)), 'msms') or '0')
    end
    if week >= c.caps.sms_weekly then return 'cap_sms_weekly' end
  end
  return nil
end

-- Records a contact made at now (counts toward the caps, same reason, last channel).
function P.record(c, now)
  local ck = cap_key(c, yyyymmdd(now, c.offset))
  call('HINCRBY', ck, 'n', '1')
  if c.channel == 'phone' then call('HINCRBY', ck, 'phone', '1') end
  if c.channel == 'sms' and c.class == 'marketing' then call('HINCRBY', ck, 'msms', '1') end
  call('EXPIRE', ck, K.nstr(CONTACT_TTL))
  local sk = sent_key(c)
  call('HSET', sk, P.sent_field(c), fmt_int(now), 'last', c.channel)
  call('EXPIRE', sk, K.nstr(SENT_TTL))
end

-- Records a blocked contact with its reason (kefu:blocked, and the reply's block list).
function P.block(c, why, now)
  call('XADD', 'kefu:blocked', 'MAXLEN', '~', BLOCKED_MAXLEN, '*', 'shop_id', c.shop,
       'buyer_id', c.buyer, 'order_id', c.order, 'reason', c.reason, 'channel', c.channel,
       'block', why, 'at', fmt_int(now), 'worker', WORKER)
  K.blocks[#K.blocks + 1] = why
end

-- buyer.optout (A: shop, buyer, and one key per channel: im/sms/phone/all = '1'); the set
-- is capped (four members) and lives as long as the buyer matters.
function P.optout(p, A)
  local key = 'kefu:optout:{' .. A.shop .. '}:' .. A.buyer
  for _, ch in ipairs({'im', 'sms', 'phone', 'all'}) do
    if A[ch] == '1' then call('SADD', key, ch) end
  end
  return 'applied'
end
