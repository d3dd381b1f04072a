-- kefu-broker: door dedup + sequence + journal for a batch of events, atomically.
--
-- KEYS[1] = kefu:seq        (the last assigned sequence number)
-- KEYS[2] = kefu:journal    (stream; entry id <seq>-0, fields t=topic e=envelope)
-- ARGV[1] = dedup window in seconds
-- ARGV[2] = journal cap (approximate MAXLEN)
-- ARGV[3] = the broker's window number: floor(wall clock seconds / ARGV[1])
-- ARGV[4..] = triples: event_id fingerprint (8 bytes, kf_fingerprint), topic, envelope bytes
--
-- The door dedup: the fingerprint's field in one of 1024 small hashes per window,
-- kefu:pubid:<window>:<bucket> = {fingerprint: seq}; the current window and the one before
-- are looked in, so an event_id is remembered for at least the dedup window (each hash
-- lives two windows and a minute).
--
-- Returns one integer per event: seq > 0 when journaled, -seq when event_id was already
-- seen (a duplicate of the event journaled as seq). The envelope is stored as it came; its
-- seq is the entry id's (kf_journal.h reads it from there).

local call = redis.call
local ttl = tonumber(ARGV[1])
local maxlen = ARGV[2]
local win = tonumber(ARGV[3])
local BUCKETS = 1024

local seq = tonumber(call('GET', KEYS[1]) or '0')
if seq == 0 then
  -- kefu:seq lost (flushed or never set): never go below the journal's last entry
  local last = call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  if last[1] then
    seq = tonumber(string.match(last[1][1], '^(%d+)')) or 0
  end
end

local cur = 'kefu:pubid:' .. string.format('%d', win) .. ':'
local prev = 'kefu:pubid:' .. string.format('%d', win - 1) .. ':'
local life = string.format('%d', 2 * ttl + 60)
local expiring = {}
-- bucket -> key names, built once per call: a number in a concatenation or an argument is
-- formatted through printf's floating-point path, which cost more than the commands
local ckeys, pkeys = {}, {}
local out = {}
local first = seq
for i = 4, #ARGV - 2, 3 do
  local fp = ARGV[i]
  local b1, b2 = string.byte(fp, 1, 2)
  local b = ((b1 or 0) * 256 + (b2 or 0)) % BUCKETS
  local pk = pkeys[b]
  if not pk then
    local sb = string.format('%d', b)
    pk, ckeys[b] = prev .. sb, cur .. sb
    pkeys[b] = pk
  end
  local old = call('HGET', pk, fp)
  if not old then
    local key = ckeys[b]
    local snxt = string.format('%d', seq + 1)
    if call('HSETNX', key, fp, snxt) == 1 then
      if not expiring[b] then
        call('EXPIRE', key, life, 'NX')
        expiring[b] = true
      end
      seq = seq + 1
      call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, snxt .. '-0', 't', ARGV[i + 1], 'e', ARGV[i + 2])
      out[#out + 1] = seq
    else
      old = call('HGET', key, fp)
    end
  end
  if old then out[#out + 1] = -tonumber(old) end
end
if seq ~= first then
  call('SET', KEYS[1], string.format('%d', seq))
end
return out
