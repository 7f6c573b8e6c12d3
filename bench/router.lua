-- router.lua - POST /general/router: each request a task.created event for a new topic, so
-- each one is a durable Sync document write. The bench server runs with
-- TASSA_VERIFY_SIGNATURE=false (wrk's Lua has no HMAC).
local counter = 0
local thread_id = 0
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
function request()
  counter = counter + 1
  local topic = string.format("bench-%d-%d-%d", tid or 0, counter, os.time())
  local body = "EventType=task.created&Sid=EV" .. topic ..
    "&TaskSid=WT" .. topic .. "&TaskAttributes=%7B%22topic%22%3A%22" .. topic .. "%22%7D"
  return wrk.format("POST", "/general/router",
    {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
