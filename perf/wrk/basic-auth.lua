-- wrk script of the auth cases: every request carries `Authorization: Basic b64(id:secret)`
-- from a table of credentials built once in init(). The whole request text is
-- pre-formatted, so a request costs wrk one table look-up. The `done` hook is
-- report.lua's (loaded from this script's directory), plus a FILL line in fill mode.
--
--   [WRK_AUTH_MODE=load|fill] wrk ... -s basic-auth.lua URL -- THREADS ID SECRET [COUNT]
--
-- THREADS      wrk's -t, so the threads can share the credentials out
-- ID SECRET    one credential; with COUNT they are prefixes, and credential i
--              (0 <= i < COUNT) is ID..i : SECRET..i (the test IdP's load-<i> clients)
-- WRK_AUTH_MODE
--   load (default)  cycle through the credentials for the whole run with a rotating
--                   counter: each comes back once per COUNT requests, so the proxy's
--                   cache gets no locality to lean on
--   fill            send each credential once, count the answers that are not 200 and
--                   stop once all are answered: the warm-up that fills a token cache.
--                   wrk's main thread sleeps for all of -d whatever the threads do,
--                   so each thread, once done, also creates the file
--                   $WRK_FILL_DONE.<thread> for the caller to see and stop wrk with
--                   SIGINT (wrk then reports as usual).
--                   The mode is an environment variable because wrk decides whether
--                   to hand responses to Lua when it loads the script, before init():
--                   only fill defines `response`, so measured runs never pay for it.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")
local report_done = done

local MODE = os.getenv("WRK_AUTH_MODE") or "load"
if MODE ~= "load" and MODE ~= "fill" then
   error("WRK_AUTH_MODE must be load or fill, not " .. MODE)
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64(s)
   local out = {}
   for i = 1, #s, 3 do
      local a, b, c = s:byte(i, i + 2)
      local v = a * 65536 + (b or 0) * 256 + (c or 0)
      local q = {}
      for k = 1, 4 do
         local idx = math.floor(v / 2 ^ (6 * (4 - k))) % 64
         q[k] = B64:sub(idx + 1, idx + 1)
      end
      if not b then q[3] = "=" end
      if not c then q[4] = "=" end
      out[#out + 1] = table.concat(q)
   end
   return table.concat(out)
end

-- Main Lua state: number the threads; done() adds up what they counted.
local threads = {}
function setup(thread)
   thread:set("id", #threads)
   threads[#threads + 1] = thread
end

-- Thread Lua states. `answered` and `not200` are globals so that done() can read them
-- with thread:get().
local reqs, n, pos, step, want = {}, 0, 0, 1, 0

local function mark_filled()
   local marker = os.getenv("WRK_FILL_DONE")
   if marker then
      local f = io.open(marker .. "." .. tostring(id), "w")
      if f then f:close() end
   end
end
answered, not200 = 0, 0

function init(args)
   local nthreads = tonumber(args[1])
   local cid, secret, count = args[2], args[3], tonumber(args[4])
   if not nthreads or nthreads < 1 or not secret then
      error("script arguments: THREADS ID SECRET [COUNT]")
   end
   local function add(creds)
      reqs[#reqs + 1] = wrk.format(nil, nil, { Authorization = "Basic " .. b64(creds) })
   end
   if count then
      for i = 0, count - 1 do add(cid .. i .. ":" .. secret .. i) end
   else
      add(cid .. ":" .. secret)
   end
   n = #reqs
   local k = tonumber(id) or 0 -- set by setup()
   id = k
   if MODE == "fill" then
      -- Thread k takes credentials k, k+THREADS, k+2*THREADS, ...
      pos, step = k, nthreads
      want = k < n and math.floor((n - 1 - k) / nthreads) + 1 or 0
      if want == 0 then mark_filled() end
   else
      -- Every thread takes them all, starting at its own offset.
      pos, step = math.floor(k * n / nthreads) % n, 1
   end
end

function request()
   local r = reqs[pos % n + 1]
   pos = pos + step
   return r
end

if MODE == "fill" then
   function response(status)
      answered = answered + 1
      if status ~= 200 then not200 = not200 + 1 end
      if answered == want then
         mark_filled()
         wrk.thread:stop()
      end
   end
end

function done(summary, latency, requests)
   report_done(summary, latency, requests)
   if MODE == "fill" then
      local a, b = 0, 0
      for _, t in ipairs(threads) do
         a = a + (t:get("answered") or 0)
         b = b + (t:get("not200") or 0)
      end
      io.write(string.format("FILL answered=%d not200=%d\n", a, b))
   end
end
