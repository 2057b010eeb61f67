-- POST /api/v1/auth/login with one account's good credentials, again and again.
--
-- wrk ... -s login.lua URL -- USERNAME PASSWORD
-- Every request verifies an Argon2id hash (the production cost profile: the harness logs the
-- account in once before measuring, which rehashes it from the seeding profile) and issues a
-- token pair: the price of a login, the one route that is slow by design.

local req

function init(args)
  local body = string.format('{"username": "%s", "password": "%s"}', args[1], args[2])
  req = wrk.format("POST", "/api/v1/auth/login", { ["Content-Type"] = "application/json" }, body)
end

function request()
  return req
end
