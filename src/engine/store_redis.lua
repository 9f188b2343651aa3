#!lua name=llmux_store_v1
--[[
The conversation store's Redis backend (src/engine/store_redis.c, docs/scale-out.md): one function per
store verb, each atomic (Redis runs nothing else while a function runs), so a turn's lock, its history
read and its reservation happen together, and a turn's items, trimming and response land together or
not at all. Compiled into llmux and loaded with FUNCTION LOAD REPLACE on every connect of the store's
connection. Versioned like llmux_v1 (src/io/fleet.lua): "v1" changes when a function's arguments or
answer change; the keys stay compatible or get new names.

Items, responses and metadata are JSON text made by llmux and never parsed here: Lua's cjson would turn
an empty array into {} and round big numbers, so the functions only store, select and concatenate
strings. ARGV[1] of every function is the configured key prefix (P below); the keys are built here from
the ids, so this library is for a standalone Redis (or a primary with replicas), not Redis Cluster.

Keys (each starts with the prefix; TTL = the store's retention, renewed whenever the object changes;
retention 0 = no TTL):
  resp:ID              hash    owner, status, prev, conv, seq, input, output, usage, envelope (the
                               response object with output and usage null). While in_progress its TTL
                               is the lock TTL, renewed by the replica running the turn.
  conv:ID              hash    owner, metadata, created_at (s), next (the last item seq handed out)
  conv:ID:order        zset    member = score = an item's seq: the conversation's order
  conv:ID:items        hash    SEQ -> the item's JSON; #SEQ -> the item's id
  conv:ID:ids          hash    item id -> its seqs, space-separated, oldest first (ids may repeat)
  conv:ID:lock         string  the id of the response whose turn holds the conversation; PX = the lock
                               TTL, renewed by the replica running the turn (a crashed replica's lock
                               lapses by itself)

Answers are arrays whose first element is 'ok', 'not_found' or 'busy'.
]]

local P = ''
local UNPACK = 1000 -- elements per HMGET (Lua's unpack has a small limit)

local function rkey(id) return P .. 'resp:' .. id end
local function ckey(id, part)
  if part then return P .. 'conv:' .. id .. ':' .. part end
  return P .. 'conv:' .. id
end

local function now_s() return tonumber(redis.call('TIME')[1]) end

-- A TTL in ms, or none (0).
local function keep_for(key, ms)
  if ms > 0 then redis.call('PEXPIRE', key, ms) else redis.call('PERSIST', key) end
end

local function conv_owned(id, owner)
  local o = redis.call('HGET', ckey(id), 'owner')
  return o and o == owner
end

-- The conversation changed: every key of it lives another retention (not the lock: its own TTL).
local function touch(id, retention_ms)
  for _, k in ipairs({ckey(id), ckey(id, 'order'), ckey(id, 'items'), ckey(id, 'ids')}) do
    keep_for(k, retention_ms)
  end
end

-- The values of hash `key` for `fields`, appended to out (in chunks: unpack's limit).
local function hmget_into(key, fields, out)
  for i = 1, #fields, UNPACK do
    local vals = redis.call('HMGET', key, unpack(fields, i, math.min(i + UNPACK - 1, #fields)))
    for _, v in ipairs(vals) do
      if v then table.insert(out, v) end
    end
  end
end

-- The conversation's items with seq <= upto ('+inf': all), oldest first, appended to out.
local function items_upto(id, upto, out)
  local seqs = redis.call('ZRANGEBYSCORE', ckey(id, 'order'), '-inf', upto)
  hmget_into(ckey(id, 'items'), seqs, out)
end

local function seqs_of(id, item_id)
  local list = redis.call('HGET', ckey(id, 'ids'), item_id)
  local seqs = {}
  if list then
    for s in string.gmatch(list, '%S+') do table.insert(seqs, s) end
  end
  return seqs
end

-- Remove one item (by seq) from the conversation's three item keys.
local function drop_seq(id, seq)
  local items, ids = ckey(id, 'items'), ckey(id, 'ids')
  local item_id = redis.call('HGET', items, '#' .. seq)
  redis.call('HDEL', items, seq, '#' .. seq)
  redis.call('ZREM', ckey(id, 'order'), seq)
  if item_id then
    local rest = {}
    for _, s in ipairs(seqs_of(id, item_id)) do
      if s ~= seq then table.insert(rest, s) end
    end
    if #rest > 0 then
      redis.call('HSET', ids, item_id, table.concat(rest, ' '))
    else
      redis.call('HDEL', ids, item_id)
    end
  end
end

-- Append items (args[from], args[from+1], ...: id, JSON, id, JSON ...), then drop the oldest beyond
-- max_items (0: no limit).
local function append(id, args, from, max_items)
  local conv, order, items, ids = ckey(id), ckey(id, 'order'), ckey(id, 'items'), ckey(id, 'ids')
  for i = from, #args - 1, 2 do
    local item_id, text = args[i], args[i + 1]
    local seq = tostring(redis.call('HINCRBY', conv, 'next', 1))
    redis.call('ZADD', order, seq, seq)
    redis.call('HSET', items, seq, text, '#' .. seq, item_id)
    local had = redis.call('HGET', ids, item_id)
    redis.call('HSET', ids, item_id, had and (had .. ' ' .. seq) or seq)
  end
  if max_items > 0 then
    local n = redis.call('ZCARD', order)
    if n > max_items then
      for _, seq in ipairs(redis.call('ZRANGE', order, 0, n - max_items - 1)) do drop_seq(id, seq) end
    end
  end
end

local function release(conv, resp)
  local lock = ckey(conv, 'lock')
  if redis.call('GET', lock) == resp then redis.call('DEL', lock) end
end

-- Replace response `id` (fields: status, prev, conv, seq, input, output, usage, envelope).
local function save_response(id, owner, f, ttl_ms)
  local key = rkey(id)
  redis.call('DEL', key)
  redis.call('HSET', key, 'owner', owner, 'status', f.status, 'prev', f.prev, 'conv', f.conv, 'seq', f.seq,
             'input', f.input, 'output', f.output, 'usage', f.usage, 'envelope', f.envelope)
  keep_for(key, ttl_ms)
end

-- The history previous response `first` continues: each response of its chain (same owner, not
-- expired), oldest first, its input then output; a chain that began in a conversation starts with the
-- conversation's items up to that turn. 'busy' while the newest is still in progress.
local function chain(first, owner, out)
  local links, id = {}, first
  while id and id ~= '' and #links < 10000 do
    local f = redis.call('HMGET', rkey(id), 'owner', 'status', 'prev', 'conv', 'seq', 'input', 'output')
    if f[1] ~= owner then break end -- missing, expired or another owner's: the chain stops here
    table.insert(links, f)
    id = f[3]
  end
  if #links == 0 then return 'not_found' end
  if links[1][2] == 'in_progress' then return 'busy' end
  for i = #links, 1, -1 do
    local f, used = links[i], false
    if i == #links and f[4] and f[4] ~= '' then
      local before = #out
      items_upto(f[4], f[5], out)
      used = #out > before -- the conversation is gone: fall back on the response's own items
    end
    if not used then
      table.insert(out, f[6])
      table.insert(out, f[7])
    end
  end
  return 'ok'
end

--[[ turn_begin
ARGV: prefix, owner, previous_response_id, conversation_id ('' for none), response id, lock_ms,
  reserve (1|0), then when reserving: status, envelope, output, usage
Answer: {'ok', history parts...} (each part a JSON array of items or one item's JSON, oldest first),
  {'not_found'} or {'busy'} ]]
local function turn_begin(_, args)
  P = args[1]
  local owner, prev, conv, resp, lock_ms = args[2], args[3], args[4], args[5], tonumber(args[6])
  local out = {'ok'}
  if conv ~= '' then
    if not conv_owned(conv, owner) then return {'not_found'} end
    if not redis.call('SET', ckey(conv, 'lock'), resp, 'NX', 'PX', lock_ms) then return {'busy'} end
    items_upto(conv, '+inf', out)
  elseif prev ~= '' then
    local st = chain(prev, owner, out)
    if st ~= 'ok' then return {st} end
  end
  if args[7] == '1' then
    save_response(resp, owner, {status = args[8], prev = prev, conv = conv, seq = 0, input = '[]',
                                output = args[10], usage = args[11], envelope = args[9]}, lock_ms)
  end
  return out
end

--[[ turn_finish
ARGV: prefix, owner, response id, previous_response_id, conversation_id, store (1|0), keep (1|0: add
  the items to the conversation), max_items, retention_ms, status, envelope, input, output, usage,
  then the conversation's new items as id, JSON pairs
Answer: {'ok'} or {'not_found'} (the conversation went meanwhile: nothing is saved). The lock goes. ]]
local function turn_finish(_, args)
  P = args[1]
  local owner, resp, prev, conv = args[2], args[3], args[4], args[5]
  local store, keep, max_items, retention_ms = args[6] == '1', args[7] == '1', tonumber(args[8]), tonumber(args[9])
  local seq = 0
  if conv ~= '' then
    if not conv_owned(conv, owner) then
      release(conv, resp)
      return {'not_found'}
    end
    if keep then
      append(conv, args, 15, max_items)
      touch(conv, retention_ms)
    end
    seq = tonumber(redis.call('HGET', ckey(conv), 'next')) or 0
    release(conv, resp)
  end
  if store then
    save_response(resp, owner, {status = args[10], prev = prev, conv = conv, seq = seq, input = args[12],
                                output = args[13], usage = args[14], envelope = args[11]}, retention_ms)
  end
  return {'ok'}
end

--[[ turn_abort
ARGV: prefix, owner, response id, conversation_id ('' for none)
Releases the conversation if this turn holds it, and deletes the response if it is still reserved. ]]
local function turn_abort(_, args)
  P = args[1]
  local owner, resp, conv = args[2], args[3], args[4]
  if conv ~= '' then release(conv, resp) end
  if resp ~= '' then
    local f = redis.call('HMGET', rkey(resp), 'owner', 'status')
    if f[1] == owner and f[2] == 'in_progress' then redis.call('DEL', rkey(resp)) end
  end
  return {'ok'}
end

--[[ response_get  ARGV: prefix, owner, id  Answer: {'ok', envelope, output, usage ('' = none)} ]]
local function response_get(_, args)
  P = args[1]
  local f = redis.call('HMGET', rkey(args[3]), 'owner', 'envelope', 'output', 'usage')
  if f[1] ~= args[2] then return {'not_found'} end
  return {'ok', f[2], f[3], f[4] or ''}
end

--[[ response_input  ARGV: prefix, owner, id  Answer: {'ok', the input items' JSON array} ]]
local function response_input(_, args)
  P = args[1]
  local f = redis.call('HMGET', rkey(args[3]), 'owner', 'input')
  if f[1] ~= args[2] then return {'not_found'} end
  return {'ok', f[2]}
end

--[[ response_delete  ARGV: prefix, owner, id ]]
local function response_delete(_, args)
  P = args[1]
  if redis.call('HGET', rkey(args[3]), 'owner') ~= args[2] then return {'not_found'} end
  redis.call('DEL', rkey(args[3]))
  return {'ok'}
end

local function conv_answer(id)
  local f = redis.call('HMGET', ckey(id), 'metadata', 'created_at')
  return {'ok', f[1], f[2]}
end

--[[ conversation_create
ARGV: prefix, owner, id (made by llmux), metadata JSON, retention_ms, max_items, then items as id, JSON
Answer: {'ok', metadata, created_at} ]]
local function conversation_create(_, args)
  P = args[1]
  local id = args[3]
  redis.call('DEL', ckey(id), ckey(id, 'order'), ckey(id, 'items'), ckey(id, 'ids'))
  redis.call('HSET', ckey(id), 'owner', args[2], 'metadata', args[4], 'created_at', now_s(), 'next', 0)
  append(id, args, 7, tonumber(args[6]))
  touch(id, tonumber(args[5]))
  return conv_answer(id)
end

--[[ conversation_get  ARGV: prefix, owner, id  Answer: {'ok', metadata, created_at} ]]
local function conversation_get(_, args)
  P = args[1]
  if not conv_owned(args[3], args[2]) then return {'not_found'} end
  return conv_answer(args[3])
end

--[[ conversation_update  ARGV: prefix, owner, id, metadata JSON, retention_ms ]]
local function conversation_update(_, args)
  P = args[1]
  local id = args[3]
  if not conv_owned(id, args[2]) then return {'not_found'} end
  redis.call('HSET', ckey(id), 'metadata', args[4])
  touch(id, tonumber(args[5]))
  return conv_answer(id)
end

--[[ conversation_delete  ARGV: prefix, owner, id
The lock stays: a turn in flight keeps it until it ends (and then finds the conversation gone). ]]
local function conversation_delete(_, args)
  P = args[1]
  local id = args[3]
  if not conv_owned(id, args[2]) then return {'not_found'} end
  redis.call('DEL', ckey(id), ckey(id, 'order'), ckey(id, 'items'), ckey(id, 'ids'))
  return {'ok'}
end

--[[ items_add  ARGV: prefix, owner, id, retention_ms, max_items, then items as id, JSON
Answer: {'ok'}, {'not_found'}, or {'busy'} while a turn holds the conversation. ]]
local function items_add(_, args)
  P = args[1]
  local id = args[3]
  if not conv_owned(id, args[2]) then return {'not_found'} end
  if redis.call('EXISTS', ckey(id, 'lock')) == 1 then return {'busy'} end
  append(id, args, 6, tonumber(args[5]))
  touch(id, tonumber(args[4]))
  return {'ok'}
end

--[[ items_list  ARGV: prefix, owner, id, after ('' = from the start), limit, desc (1|0)
Answer: {'ok', has_more (1|0), items' JSON...} ]]
local function items_list(_, args)
  P = args[1]
  local id, after, limit, desc = args[3], args[4], tonumber(args[5]), args[6] == '1'
  if not conv_owned(id, args[2]) then return {'not_found'} end
  local from = desc and '+inf' or '-inf'
  if after ~= '' then
    local seqs = seqs_of(id, after)
    if #seqs == 0 then return {'ok', 0} end -- an unknown cursor gives an empty page
    from = '(' .. seqs[#seqs]
  end
  local seqs
  if desc then
    seqs = redis.call('ZREVRANGEBYSCORE', ckey(id, 'order'), from, '-inf', 'LIMIT', 0, limit + 1)
  else
    seqs = redis.call('ZRANGEBYSCORE', ckey(id, 'order'), from, '+inf', 'LIMIT', 0, limit + 1)
  end
  local more = 0
  if #seqs > limit then
    more = 1
    table.remove(seqs)
  end
  local out = {'ok', more}
  hmget_into(ckey(id, 'items'), seqs, out)
  return out
end

--[[ item_get  ARGV: prefix, owner, id, item id  Answer: {'ok', the item's JSON} (the newest of that id) ]]
-- The seqs of item args[4] in conversation args[3] of owner args[2], or nil and the answer.
local function item_seqs(args)
  P = args[1]
  if not conv_owned(args[3], args[2]) then return nil, {'not_found', 'Conversation'} end
  local seqs = seqs_of(args[3], args[4])
  if #seqs == 0 then return nil, {'not_found', 'Item'} end
  return seqs
end

local function item_get(_, args)
  local seqs, answer = item_seqs(args)
  if not seqs then return answer end
  return {'ok', redis.call('HGET', ckey(args[3], 'items'), seqs[#seqs])}
end

--[[ item_delete  ARGV: prefix, owner, id, item id, retention_ms  Answer: {'ok', metadata, created_at}
Every item with that id goes. ]]
local function item_delete(_, args)
  local seqs, answer = item_seqs(args)
  if not seqs then return answer end
  local id = args[3]
  for _, seq in ipairs(seqs) do drop_seq(id, seq) end
  touch(id, tonumber(args[5]))
  return conv_answer(id)
end

--[[ renew: the turns this replica runs are alive.
ARGV: prefix, lock_ms, then triples: 'c', conversation id, response id (a lock held) or 'r', response
  id, '' (a response reserved in progress)
Renews each lock still held by that response, and each reservation still in progress.
Answer: {'ok', how many were renewed} ]]
local function renew(_, args)
  P = args[1]
  local lock_ms, n = tonumber(args[2]), 0
  for i = 3, #args - 2, 3 do
    if args[i] == 'c' then
      local lock = ckey(args[i + 1], 'lock')
      if redis.call('GET', lock) == args[i + 2] then
        redis.call('PEXPIRE', lock, lock_ms)
        n = n + 1
      end
    elseif redis.call('HGET', rkey(args[i + 1]), 'status') == 'in_progress' then
      redis.call('PEXPIRE', rkey(args[i + 1]), lock_ms)
      n = n + 1
    end
  end
  return {'ok', n}
end

-- Read-only functions carry no-writes (Redis may then run them on a replica, and refuses them a write).
local function reader(name, fn)
  redis.register_function{function_name = 'llmux_store_v1_' .. name, callback = fn, flags = {'no-writes'}}
end
local function writer(name, fn) redis.register_function('llmux_store_v1_' .. name, fn) end

writer('turn_begin', turn_begin)
writer('turn_finish', turn_finish)
writer('turn_abort', turn_abort)
reader('response_get', response_get)
reader('response_input', response_input)
writer('response_delete', response_delete)
writer('conversation_create', conversation_create)
reader('conversation_get', conversation_get)
writer('conversation_update', conversation_update)
writer('conversation_delete', conversation_delete)
writer('items_add', items_add)
reader('items_list', items_list)
reader('item_get', item_get)
writer('item_delete', item_delete)
writer('renew', renew)
