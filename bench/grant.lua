-- grant.lua - POST /task/get-sync-grant with a valid caller token (TOKEN from the environment).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "identity=alice&token=" .. os.getenv("TOKEN")
