-- wrk script used by compare.sh for every case. It changes nothing in the requests (no
-- request/response hooks, so wrk keeps its static request and no Lua runs per request);
-- after the run it prints one machine-readable line with exact counts and percentiles.
-- wrk reports latencies in microseconds.
done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
      "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout))
end
