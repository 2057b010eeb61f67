-- PUT /api/v1/survivors/{id}/location, each request as the survivor's own account.
--
-- wrk ... -s put_location.lua URL -- MOVERS_FILE THREADS
--   MOVERS_FILE: one "survivor_id<TAB>access_token" line per survivor account (the harness writes it)
--   THREADS:     wrk's -t, so that thread t takes requests t, t+THREADS, t+2*THREADS, ...
-- Successive requests go to successive survivors (no two connections queue on one row lock
-- more than the list's length forces), each with a new position: every request is a real write
-- (200 and a version bump), never a no-op. No If-Match: the unconditional path.

local spread = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "spread.lua")
local movers = {}

function init(args)
  for line in io.lines(args[1]) do
    local id, token = line:match("^(%S+)\t(%S+)$")
    if id then
      movers[#movers + 1] = { "/api/v1/survivors/" .. id .. "/location", "Bearer " .. token }
    end
  end
  spread.start(args[2], 0)
end

function request()
  local n = spread.next()
  local mover = movers[(n % #movers) + 1]
  local body = string.format('{"latitude": %.4f, "longitude": %.4f}', (n % 1789) / 10 - 89.4, (n % 3593) / 10 - 179.6)
  return wrk.format("PUT", mover[1], { ["Authorization"] = mover[2], ["Content-Type"] = "application/json" }, body)
end
