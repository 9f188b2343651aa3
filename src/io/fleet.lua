#!lua name=llmux_v1
--[[
Fleet-wide limits and provider state for llmux replicas that share one Redis (docs/scale-out.md).
Compiled into llmux (src/io/fleet.c) and loaded by every replica with FUNCTION LOAD REPLACE each time it
connects. Each function runs atomically: Redis executes nothing else while it runs, so an admission
checks and takes every bucket of a key at once, or none.

Versions: "v1" in the library's name and in every function's name changes whenever a function's
arguments or answer change. Replicas of two llmux versions can then share one Redis during a rolling
deploy, each calling its own functions. The keys below are shared by every version: a new version reads
and writes them compatibly, or uses new key names.

Time is Redis's own clock (TIME), in microseconds, so the replicas' clocks never matter.

Keys (every key name starts with the configured prefix, and every key has a TTL):
  replicas                     zset  replica id -> the end of its lease (µs); a heartbeat renews it
  key:NAME:rate                hash  r, rt: the rpm bucket's tokens and refill time; t, tt: the tpm bucket's
  key:NAME:inflight            hash  replica id -> that replica's requests in flight for the client key
  anon:inflight                hash  the same for clients without a key (limits.max_inflight_per_key)
  provider:NAME:slots          hash  replica id -> that replica's calls in flight to the provider
  provider:NAME:breaker        hash  failures (in a row, fleet-wide), until (µs: the end of a cooldown)

In-flight counts are kept per replica. Each replica owns its field and re-asserts it with every
heartbeat (HSET to its own count), so a count lost to a timeout, a lost connection or a Redis restart is
repaired at the next heartbeat, and the fields of a replica whose lease ran out (killed, partitioned)
stop counting and are deleted by the next admission that reads them.
]]

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function num(s, dflt)
  local v = tonumber(s)
  if v == nil then return dflt end
  return v
end

-- Doubles print with 14 significant digits by default: write times and tokens with all of theirs.
local function fmt_us(v) return string.format('%.0f', v) end
local function fmt_tokens(v) return string.format('%.6f', v) end

-- A token bucket holding up to `limit` tokens, refilled at limit per minute; a missing bucket is full.
local function refill(tokens, at, limit, now)
  if tokens == nil or at == nil then return limit end
  local v = tokens + (now - at) * limit / 60000000
  if v > limit then v = limit end
  return v
end

-- Milliseconds until the bucket is full again.
local function full_in_ms(tokens, limit)
  if limit <= 0 or tokens >= limit then return 0 end
  return math.ceil((limit - tokens) * 60000 / limit)
end

-- This replica is alive for another lease.
local function renew(replicas, replica, lease_ms, now)
  redis.call('ZADD', replicas, fmt_us(now + lease_ms * 1000), replica)
  redis.call('PEXPIRE', replicas, lease_ms * 2)
end

-- The sum of the live replicas' counts in hash `key`; the fields of replicas whose lease ended go.
local function live_sum(key, replicas, now)
  local all = redis.call('HGETALL', key)
  local sum = 0
  for i = 1, #all, 2 do
    local until_us = redis.call('ZSCORE', replicas, all[i])
    if until_us and tonumber(until_us) > now then
      sum = sum + num(all[i + 1], 0)
    else
      redis.call('HDEL', key, all[i])
    end
  end
  return sum
end

local function add_count(key, replica, delta, lease_ms)
  local n = redis.call('HINCRBY', key, replica, delta)
  if n <= 0 then redis.call('HDEL', key, replica) end
  redis.call('PEXPIRE', key, lease_ms * 2)
  return n
end

-- The rate bucket lives until both of its buckets are full again: then a missing key means the same.
local function save_rate(key, r, t, rpm, tpm, now)
  local ttl = 0
  if rpm > 0 then
    redis.call('HSET', key, 'r', fmt_tokens(r), 'rt', fmt_us(now))
    ttl = math.max(ttl, full_in_ms(r, rpm))
  end
  if tpm > 0 then
    redis.call('HSET', key, 't', fmt_tokens(t), 'tt', fmt_us(now))
    ttl = math.max(ttl, full_in_ms(t, tpm))
  end
  redis.call('PEXPIRE', key, ttl + 1000)
end

--[[ admit: one request of a client key, all or nothing over its buckets.
KEYS: replicas, key:NAME:rate, key:NAME:inflight
ARGV: replica, lease_ms, rpm, tpm, reserve (tokens to hold back for the answer), max_inflight
  (0 = no such limit)
Answer: {admitted 1|0, refused "requests"|"tokens"|"inflight"|"", remaining requests, ms until the rpm
  bucket is full, remaining tokens, ms until the tpm bucket is full, retry after ms, in flight fleet-wide}
A request is admitted when the fleet has fewer than max_inflight in flight, the rpm bucket holds a whole
token, and the tpm bucket holds the reserve (capped at tpm, so that a reserve bigger than the whole
budget waits for a full bucket instead of forever). It then takes one request token, the whole reserve
(the bucket may go below zero) and one in-flight unit. ]]
local function admit(keys, args)
  local replicas, rate, inflight = keys[1], keys[2], keys[3]
  local replica, lease_ms = args[1], num(args[2], 15000)
  local rpm, tpm, reserve, max_inflight = num(args[3], 0), num(args[4], 0), num(args[5], 0), num(args[6], 0)
  local now = now_us()
  local r, t = 0, 0
  if rpm > 0 or tpm > 0 then
    local f = redis.call('HMGET', rate, 'r', 'rt', 't', 'tt')
    if rpm > 0 then r = refill(tonumber(f[1]), tonumber(f[2]), rpm, now) end
    if tpm > 0 then t = refill(tonumber(f[3]), tonumber(f[4]), tpm, now) end
  end
  local n = 0
  if max_inflight > 0 then
    renew(replicas, replica, lease_ms, now) -- so that this replica's own field counts
    n = live_sum(inflight, replicas, now)
  end
  local need = math.max(1, math.min(reserve, tpm))
  local refused, retry = '', 0
  if max_inflight > 0 and n >= max_inflight then
    refused, retry = 'inflight', 1000
  elseif rpm > 0 and r < 1 then
    refused, retry = 'requests', math.ceil((1 - r) * 60000 / rpm)
  elseif tpm > 0 and t < need then
    refused, retry = 'tokens', math.ceil((need - t) * 60000 / tpm)
  end
  local admitted = 0
  if refused == '' then
    admitted = 1
    if rpm > 0 then r = r - 1 end
    if tpm > 0 then t = t - reserve end
    if rpm > 0 or tpm > 0 then save_rate(rate, r, t, rpm, tpm, now) end
    if max_inflight > 0 then
      add_count(inflight, replica, 1, lease_ms)
      n = n + 1
    end
  end
  return {admitted, refused, math.floor(r), full_in_ms(r, rpm), math.floor(t), full_in_ms(t, tpm), retry, n}
end

--[[ finish: the request of admit is over.
KEYS: replicas, key:NAME:rate, key:NAME:inflight
ARGV: replica, lease_ms, rpm, tpm, reserved (what admit took; 0 when admit did not run in Redis), used
  (the tokens the answer really took), held (1: give an in-flight unit back), unused (1: admit's request
  token goes back too: the request never ran)
Answer: {remaining tokens}
Settles the reserve: the difference between used and reserved is charged (or refunded, capped at a full
bucket), and the in-flight unit is given back. ]]
local function finish(keys, args)
  local replicas, rate, inflight = keys[1], keys[2], keys[3]
  local replica, lease_ms = args[1], num(args[2], 15000)
  local rpm, tpm, reserved, used = num(args[3], 0), num(args[4], 0), num(args[5], 0), num(args[6], 0)
  local held, unused = num(args[7], 0), num(args[8], 0)
  local now = now_us()
  if rpm > 0 and unused == 1 then
    local f = redis.call('HMGET', rate, 'r', 'rt')
    local r = math.min(rpm, refill(tonumber(f[1]), tonumber(f[2]), rpm, now) + 1)
    redis.call('HSET', rate, 'r', fmt_tokens(r), 'rt', fmt_us(now))
  end
  local t = 0
  if tpm > 0 then
    local f = redis.call('HMGET', rate, 't', 'tt')
    t = refill(tonumber(f[1]), tonumber(f[2]), tpm, now)
    if used ~= reserved then
      t = math.min(tpm, t - (used - reserved))
      redis.call('HSET', rate, 't', fmt_tokens(t), 'tt', fmt_us(now))
      local ttl = redis.call('PTTL', rate)
      redis.call('PEXPIRE', rate, math.max(ttl, full_in_ms(t, tpm) + 1000))
    end
  end
  if held == 1 then add_count(inflight, replica, -1, lease_ms) end
  return {math.floor(t)}
end

--[[ heartbeat: this replica is alive, and here are its own counts.
KEYS: replicas, then any number of in-flight or slot hashes
ARGV: replica, lease_ms (0: the replica leaves: its lease ends now), then one count per hash
Answer: {live replicas, Redis time in ms}
Sets this replica's field of every hash to its count (deleting it at 0) and renews the hash's TTL, so
whatever a lost command left wrong is right again. ]]
local function heartbeat(keys, args)
  local replicas, replica, lease_ms = keys[1], args[1], num(args[2], 15000)
  local now = now_us()
  if lease_ms > 0 then
    renew(replicas, replica, lease_ms, now)
  else
    redis.call('ZREM', replicas, replica)
  end
  redis.call('ZREMRANGEBYSCORE', replicas, '-inf', fmt_us(now))
  for i = 2, #keys do
    local n = num(args[i + 1], 0)
    if n > 0 and lease_ms > 0 then
      redis.call('HSET', keys[i], replica, n)
      redis.call('PEXPIRE', keys[i], lease_ms * 2)
    else
      redis.call('HDEL', keys[i], replica)
    end
  end
  return {redis.call('ZCARD', replicas), math.floor(now / 1000)}
end

local function cooling_ms(breaker, now)
  local until_us = tonumber(redis.call('HGET', breaker, 'until'))
  if until_us and until_us > now then return math.ceil((until_us - now) / 1000) end
  return 0
end

--[[ provider_acquire: may a call to the provider start, fleet-wide?
KEYS: replicas, provider:NAME:slots, provider:NAME:breaker
ARGV: replica, lease_ms, max_concurrency (0 = no cap: only the cooldown is checked)
Answer: {granted 1|0, refused "cooldown"|"capacity"|"", cooling ms, calls in flight fleet-wide (-1: not
  counted)}
Refused while the provider cools down; otherwise, with a cap, takes a slot when fewer than
max_concurrency calls are in flight across live replicas. ]]
local function provider_acquire(keys, args)
  local replicas, slots, breaker = keys[1], keys[2], keys[3]
  local replica, lease_ms, max = args[1], num(args[2], 15000), num(args[3], 0)
  local now = now_us()
  local cool = cooling_ms(breaker, now)
  if cool > 0 then return {0, 'cooldown', cool, -1} end
  if max <= 0 then return {1, '', 0, -1} end
  renew(replicas, replica, lease_ms, now)
  local n = live_sum(slots, replicas, now)
  if n >= max then return {0, 'capacity', 0, n} end
  add_count(slots, replica, 1, lease_ms)
  return {1, '', 0, n + 1}
end

--[[ provider_release: a call ended.
KEYS: replicas, provider:NAME:slots, provider:NAME:breaker
ARGV: replica, lease_ms, held (1: give the slot back), outcome "ok"|"fail"|"none", failures (the
  breaker's threshold; 0 = no breaker), period_ms (cooldown length)
Answer: {1 when this failure started a cooldown else 0, cooling ms, failures in a row}
A success resets the failures in a row; the failure that reaches the threshold starts a cooldown of
period_ms for every replica and resets the count. The streak is forgotten after ten minutes (or one
period, if longer) without a failure. ]]
local function provider_release(keys, args)
  local slots, breaker = keys[2], keys[3]
  local replica, lease_ms, held = args[1], num(args[2], 15000), num(args[3], 0)
  local outcome, threshold, period_ms = args[4], num(args[5], 0), num(args[6], 0)
  local now = now_us()
  if held == 1 then add_count(slots, replica, -1, lease_ms) end
  local started, failures = 0, 0
  if threshold > 0 and outcome == 'fail' then
    failures = redis.call('HINCRBY', breaker, 'failures', 1)
    if failures >= threshold then
      redis.call('HSET', breaker, 'until', fmt_us(now + period_ms * 1000), 'failures', 0)
      started, failures = 1, 0
    end
    redis.call('PEXPIRE', breaker, math.max(period_ms, 600000))
  elseif threshold > 0 and outcome == 'ok' then
    if num(redis.call('HGET', breaker, 'failures'), 0) ~= 0 then redis.call('HSET', breaker, 'failures', 0) end
  end
  return {started, cooling_ms(breaker, now), failures}
end

--[[ provider_state: what /v1/providers shows. Read-only.
KEYS: replicas, then provider:NAME:slots and provider:NAME:breaker for each provider
Answer: {live replicas, then per provider: calls in flight fleet-wide, cooling ms, failures in a row} ]]
local function provider_state(keys, args)
  local now = now_us()
  local replicas = keys[1]
  local out = {redis.call('ZCOUNT', replicas, '(' .. fmt_us(now), '+inf')}
  for i = 2, #keys - 1, 2 do
    local all = redis.call('HGETALL', keys[i])
    local sum = 0
    for j = 1, #all, 2 do
      local until_us = redis.call('ZSCORE', replicas, all[j])
      if until_us and tonumber(until_us) > now then sum = sum + num(all[j + 1], 0) end
    end
    table.insert(out, sum)
    table.insert(out, cooling_ms(keys[i + 1], now))
    table.insert(out, num(redis.call('HGET', keys[i + 1], 'failures'), 0))
  end
  return out
end

redis.register_function('llmux_v1_admit', admit)
redis.register_function('llmux_v1_finish', finish)
redis.register_function('llmux_v1_heartbeat', heartbeat)
redis.register_function('llmux_v1_provider_acquire', provider_acquire)
redis.register_function('llmux_v1_provider_release', provider_release)
redis.register_function{function_name = 'llmux_v1_provider_state', callback = provider_state, flags = {'no-writes'}}
