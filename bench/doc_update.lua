-- doc_update.lua - POST updates to one Sync document (no If-Match): durable writes in a row.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BASIC")
wrk.body = "Data=%7B%22n%22%3A1%7D"
