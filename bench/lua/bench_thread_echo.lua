-- Runs inside ngx.run_worker_thread's own Lua VM.
return {
    echo = function(payload)
        return payload
    end,
}
