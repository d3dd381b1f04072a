-- kefu-broker: door dedup + sequence + journal for a batch of events, atomically.
--
-- KEYS[1] = kefu:seq        (the last assigned sequence number)
-- KEYS[2] = kefu:journal    (stream; entry id <seq>-0, fields t=topic e=envelope)
-- ARGV[1] = dedup window in seconds (kefu:pubid:<event_id> lives that long)
-- ARGV[2] = journal cap (approximate MAXLEN)
-- ARGV[3..] = triples: event_id, topic, envelope bytes
--
-- Returns one integer per event: seq > 0 when journaled, -seq when event_id was already
-- seen (a duplicate of the event journaled as seq). The envelope is stored as it came; its
-- seq is the entry id's (kf_journal.h reads it from there).

local ttl = ARGV[1]
local maxlen = ARGV[2]

local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
if seq == 0 then
  -- kefu:seq lost (flushed or never set): never go below the journal's last entry
  local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  if last[1] then
    seq = tonumber(string.match(last[1][1], '^(%d+)')) or 0
  end
end

local call = redis.call

local out = {}
local first = seq
for i = 3, #ARGV - 2, 3 do
  local pubid = 'kefu:pubid:' .. ARGV[i]
  local nxt = seq + 1
  local snxt = string.format('%d', nxt)
  if call('SET', pubid, snxt, 'NX', 'EX', ttl) then
    seq = nxt
    call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, snxt .. '-0',
         't', ARGV[i + 1], 'e', ARGV[i + 2])
    out[#out + 1] = seq
  else
    out[#out + 1] = -tonumber(call('GET', pubid) or '0')
  end
end
if seq ~= first then
  call('SET', KEYS[1], string.format('%d', seq))
end
return out
