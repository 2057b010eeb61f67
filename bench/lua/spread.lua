-- Shared by the scripts whose requests differ one from the next: gives each wrk thread its own
-- index (wrk's setup() runs once per thread in the main Lua state, then init() in the thread's)
-- and hands out request numbers t, t + THREADS, t + 2 * THREADS, ... to thread t, so that the
-- threads together walk one sequence without a number taken twice.
--
--   local spread = dofile(<this file>)   -- in a script's top level
--   spread.start(threads, offset)        -- in init(): wrk's -t, the first number of this run
--   spread.next()                        -- in request(): this thread's next number

local spread = { threads = 1, offset = 0, index = 0, counter = 0 }
local setups = 0

function setup(thread)
  thread:set("thread_index", setups)
  setups = setups + 1
end

function spread.start(threads, offset)
  spread.threads = tonumber(threads) or 1
  spread.offset = tonumber(offset) or 0
  spread.index = tonumber(thread_index) or 0
end

function spread.next()
  local n = spread.offset + spread.counter * spread.threads + spread.index
  spread.counter = spread.counter + 1
  return n
end

return spread
