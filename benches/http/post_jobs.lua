-- wrk script: POST /api/v1/jobs targeting every system named in ORCA_SYSTEMS (comma-separated),
-- authenticated with ORCA_TOKEN (an access token or API token). Used by benches/http/run.sh.
local token = os.getenv("ORCA_TOKEN") or error("set ORCA_TOKEN")
local systems = os.getenv("ORCA_SYSTEMS") or error("set ORCA_SYSTEMS")

local quoted = {}
for name in string.gmatch(systems, "[^,]+") do
  quoted[#quoted + 1] = '"' .. name .. '"'
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.body = '{"command":"true","targets":{"systems":[' .. table.concat(quoted, ",") ..
  ']},"options":{"timeout_seconds":60}}'
