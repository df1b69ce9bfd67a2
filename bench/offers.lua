-- wrk: POST /api/v1/offers, each on a different (request, seller) pair, so no
-- offer is a duplicate, also across the runs of one benchmark: the position
-- reached is kept in OFFERS_FILE.next. OFFERS_FILE has "request_id
-- budget_min" lines; SELLER_TOKENS is a comma-separated list of approved
-- sellers' tokens.
local requests, tokens, i = {}, {}, 0
local position_file = os.getenv("OFFERS_FILE") .. ".next"

local function read_position()
  local f = io.open(position_file, "r")
  if not f then return 0 end
  local n = tonumber(f:read("*l")) or 0
  f:close()
  return n
end

function init(args)
  for line in io.lines(os.getenv("OFFERS_FILE")) do
    local id, budget = line:match("^(%S+) (%d+)$")
    if id then requests[#requests + 1] = { id = id, price = tonumber(budget) } end
  end
  for t in os.getenv("SELLER_TOKENS"):gmatch("[^,]+") do tokens[#tokens + 1] = t end
  i = read_position()
end

function request()
  local n = #requests
  local r = requests[(i % n) + 1]
  local token = tokens[(math.floor(i / n) % #tokens) + 1]
  i = i + 1
  local body = string.format('{"request_id":"%s","price":%d,"currency":"EGP","message":"Can deliver this week","delivery_days":3}',
    r.id, r.price)
  return wrk.format("POST", "/api/v1/offers",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
end

-- The next run starts past every request this one sent (answered or still
-- in flight when it stopped: at most one per connection).
function done(summary, latency, requests_made)
  local f = io.open(position_file, "w")
  f:write(tostring(read_position() + summary.requests + 1000), "\n")
  f:close()
end
