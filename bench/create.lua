-- create.lua - a wrk script that POSTs N forms and stops wrk once all N are answered: the
-- light client of bench/caps.sh's worker creation (Node's fetch took a whole core there).
--   wrk -t1 -cCONC -d300s -s bench/create.lua URL -- N AUTHORIZATION BODY
-- BODY is form text in which {i} is replaced by the request's number (0 to N-1). Once N POSTs
-- are out, a connection's next request is a GET /healthz, so no extra resource is created
-- before the last answer stops wrk (SIGINT to wrk ends its sleep; the duration is only a
-- bound). One thread (-t1): the counts are the thread's own. Prints "created=C failed=F".
local n, auth, body
local checked, stopped = false, false
local sent = 0
created, failed = 0, 0 -- globals: done() reads them with thread:get
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  n = tonumber(args[1])
  auth = args[2]
  body = args[3]
end

function request()
  if not checked then -- wrk builds one request to check the script and never sends it
    checked = true
    return wrk.format("GET", "/healthz")
  end
  if sent >= n then
    return wrk.format("GET", "/healthz")
  end
  local form = body:gsub("{i}", tostring(sent))
  sent = sent + 1
  return wrk.format("POST", nil, {
    ["Authorization"] = auth,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, form)
end

function response(status)
  if status == 201 then
    created = created + 1
  elseif status ~= 200 then
    failed = failed + 1
  end
  if not stopped and created + failed >= n then
    stopped = true
    -- the shell's parent is wrk; popen, unlike os.execute, leaves wrk's SIGINT handler on
    io.popen("kill -INT $PPID"):close()
    wrk.thread:stop()
  end
end

function done()
  local c, f = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    f = f + t:get("failed")
  end
  io.write(string.format("created=%d failed=%d\n", c, f))
end
