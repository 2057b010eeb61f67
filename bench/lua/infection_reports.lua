-- POST /api/v1/survivors/{id}/infection-reports, each request a reporter/reported pair never sent before.
--
-- wrk ... -s infection_reports.lua URL -- REPORTERS_FILE TARGETS_FILE OFFSET THREADS
--   REPORTERS_FILE: one access token per line, each a survivor account with a profile (never reported)
--   TARGETS_FILE:   one survivor id per line (the survivors being reported)
--   OFFSET:         where this wrk run starts in the sequence of pairs (the harness moves it past
--                   every pair an earlier run may have used, so warm-up and rounds never repeat one)
--   THREADS:        wrk's -t; thread t takes pair numbers OFFSET + t, OFFSET + t + THREADS, ...
-- Pair number g is (target g mod #targets, reporter floor(g / #targets) mod #reporters):
-- successive requests report different survivors, so they do not queue on one survivor's row,
-- and no pair repeats until g reaches #targets * #reporters. This measures the first-report
-- path (201: a new row, an atomic counter update, a version bump), not the repeat path (200);
-- the harness counts the rows written afterwards and reports the share that were first reports.

local spread = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "spread.lua")
local reporters = {}
local targets = {}

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then reporters[#reporters + 1] = "Bearer " .. line end
  end
  for line in io.lines(args[2]) do
    if line ~= "" then targets[#targets + 1] = "/api/v1/survivors/" .. line .. "/infection-reports" end
  end
  spread.start(args[4], args[3])
end

function request()
  local g = spread.next()
  local target = targets[(g % #targets) + 1]
  local reporter = reporters[(math.floor(g / #targets) % #reporters) + 1]
  return wrk.format("POST", target, { ["Authorization"] = reporter })
end
