-- wrk: POST /api/v1/offers, each on a different (request, seller) pair, so no
-- offer is a duplicate, also across the runs of one benchmark: the position
-- reached is kept in OFFERS_FILE.next (wrk's done() does not see a thread's
-- counter, so the request path writes it). OFFERS_FILE has "request_id
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
  -- Every thousand offers, note where the next run must start: past all
  -- this run may send before it writes again (connections in flight included).
  if i % 1000 == 1 then
    local f = io.open(position_file, "w")
    f:write(tostring(i - 1 + 1000), "\n")
    f:close()
  end
  local body = string.format('{"request_id":"%s","price":%d,"currency":"EGP","message":"Can deliver this week","delivery_days":3}',
    r.id, r.price)
  return wrk.format("POST", "/api/v1/offers",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
end
