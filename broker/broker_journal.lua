-- kefu-broker: door dedup + sequence + journal for a batch of events, atomically.
--
-- KEYS[1] = kefu:seq        (the last assigned sequence number)
-- KEYS[2] = kefu:journal    (stream; kf_journal.h has the entry layout)
-- ARGV[1] = dedup window in seconds
-- ARGV[2] = journal cap, in events (approximate: whole entries go, MINID ~)
-- ARGV[3] = the broker's window number: floor(wall clock seconds / ARGV[1])
-- ARGV[4..] = per event: event_id fingerprint (8 bytes, kf_fingerprint), its bucket (0..1023,
--             chosen by the broker, as a string), the event's record head (varint topic
--             length, topic, varint envelope length: the broker builds it), envelope bytes
--
-- The door dedup: the fingerprint's field in one of 1024 small hashes per window,
-- kefu:pubid:<window>:<bucket> = {fingerprint: seq}; the current window and the one before
-- are looked in, so an event_id is remembered for at least the dedup window (each hash
-- lives two windows and a minute: EXPIRE NX once per bucket and call).
--
-- The events journaled go into entries of at most 256 (KF_JOURNAL_ENTRY_MAX) consecutive
-- seqs: id <first seq>-0, n = how many, b = their records one after another.
--
-- Returns one integer per event: seq > 0 when journaled, -seq when event_id was already
-- seen (a duplicate of the event journaled as seq). The envelope is stored as it came; its
-- seq is its place in the entry.

local call = redis.call
local ttl = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local ENTRY_MAX = 256
local win = tonumber(ARGV[3])

local seq = tonumber(call('GET', KEYS[1]) or '0')
if seq == 0 then
  -- kefu:seq lost (flushed or never set): never go below the journal's last entry
  local last = call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  if last[1] then
    seq = tonumber(string.match(last[1][1], '^(%d+)')) or 0
    local f = last[1][2]
    for k = 1, #f - 1, 2 do
      if f[k] == 'n' then seq = seq + (tonumber(f[k + 1]) or 1) - 1 end
    end
  end
end

local cur = 'kefu:pubid:' .. string.format('%d', win) .. ':'
local prev = 'kefu:pubid:' .. string.format('%d', win - 1) .. ':'
local life = string.format('%d', 2 * ttl + 60)
local out = {}
local first = seq
local recs, nrec, efirst = {}, 0, 0
local function entry()
  if nrec == 0 then return end
  local minid = seq - cap
  call('XADD', KEYS[2], 'MINID', '~', string.format('%d', minid > 0 and minid or 0),
       string.format('%d', efirst) .. '-0', 'n', string.format('%d', nrec),
       'b', table.concat(recs, '', 1, 2 * nrec))
  nrec = 0
end
-- (a number in a concatenation or a command argument goes through printf's floating-point
-- path, which costs more than the commands: the bucket comes as a string)
local expiring = {} -- buckets whose TTL this call has set
for i = 4, #ARGV - 3, 4 do
  local fp, sb = ARGV[i], ARGV[i + 1]
  local old = call('HGET', prev .. sb, fp)
  if not old then
    local key = cur .. sb
    local snxt = string.format('%d', seq + 1)
    local added = call('HSETNX', key, fp, snxt) == 1
    if not expiring[sb] then -- the key exists now
      call('EXPIRE', key, life, 'NX')
      expiring[sb] = true
    end
    if added then
      seq = seq + 1
      if nrec == 0 then efirst = seq end
      recs[2 * nrec + 1], recs[2 * nrec + 2] = ARGV[i + 2], ARGV[i + 3]
      nrec = nrec + 1
      if nrec == ENTRY_MAX then entry() end
      out[#out + 1] = seq
    else
      old = call('HGET', key, fp)
    end
  end
  if old then out[#out + 1] = -tonumber(old) end
end
entry()
if seq ~= first then
  call('SET', KEYS[1], string.format('%d', seq))
end
return out
