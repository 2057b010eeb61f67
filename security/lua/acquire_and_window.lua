-- One round trip for a moving-window rate limit: acquire an entry exactly as limits'
-- acquire_moving_window.lua does, then read the window exactly as its moving_window.lua does
-- (the values of the RateLimit-* headers), instead of a second script call per request.
-- KEYS[1]: the limit's list of timestamps, newest first.
-- ARGV: timestamp, limit, expiry (seconds), amount.
-- Returns {acquired (0/1)} when the window is empty, else {acquired, oldest timestamp, count}.
local timestamp = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local expiry = tonumber(ARGV[3])
local amount = tonumber(ARGV[4])
local start = timestamp - expiry

local acquired = 0
if amount <= limit then
  local entry = redis.call('lindex', KEYS[1], limit - amount)
  if not (entry and tonumber(entry) >= start) then
    for _ = 1, amount do
      redis.call('lpush', KEYS[1], timestamp)
    end
    redis.call('ltrim', KEYS[1], 0, limit - 1)
    redis.call('expire', KEYS[1], expiry)
    acquired = 1
  end
end

-- Binary search for the oldest entry still inside the window.
local low, high, index = 0, limit - 1, nil
while low <= high do
  local mid = math.floor((low + high) / 2)
  local value = tonumber(redis.call('lindex', KEYS[1], mid))
  if value and value >= start then
    index = mid
    low = mid + 1
  else
    high = mid - 1
  end
end

if index then
  return {acquired, tostring(tonumber(redis.call('lindex', KEYS[1], index))), index + 1}
end
return {acquired}
