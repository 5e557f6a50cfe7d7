// generated — do not edit. Source: probe/protocol.json; regenerate with
// `node dist/scripts/gen-protocol-types.js` (npm run build does it).
/* eslint-disable */
export const PROTOCOL_VERSION = '0.1';

/** The link between the probe and the agent inside one worker (length-prefixed JSON frames over the probe's unix socket). Front ends never call it. */
export namespace Agent {
  export interface Versions {
    /** nginx version, e.g. 1.22.1 */
    nginx: string;
    /** lua-nginx-module version, e.g. 0.10.23 */
    ngx_lua: string;
    /** jit.version, e.g. LuaJIT 2.1.0-beta3 */
    luajit: string;
    /** the agent's version (nffi.inspect._VERSION) */
    agent: string;
  }
  export interface JitState {
    /** jit.status(): the JIT compiler is on in this worker */
    enabled: boolean;
    /** jit.status() flags, e.g. SSE2, fold, cse */
    flags: string[];
  }
  /** How one request method's walks held the event loop. */
  export interface MethodStats {
    /** requests of this method served */
    requests: number;
    /** slices its walks were cut into (each held the event loop once) */
    slices: number;
    /** > 0: a request was cut into several slices (sends of its answer count as slice boundaries too) */
    yields: number;
    /** the longest slice, ms of wall time */
    max_slice_ms: number;
    /** the longest slice, ms of CPU time of the worker thread */
    max_slice_cpu_ms: number;
  }
  /** The C hook (native/src/hook.c and the hook_*.c beside it), its counters and state as nffi_hook_get_stats reads them (native/src/hook_stats.c; breakpoints.native in Agent.getStats), since the worker started unless said otherwise. */
  export interface NativeHookStats {
    /** hook calls: line events and others */
    calls: number;
    /** line events on a breakpointed line */
    matches: number;
    /** callback errors */
    errors: number;
    /** the hook mask of the main Lua state (1 calls, 2 returns, 4 lines; 0: no hook, -1: unknown) */
    mask?: number;
    /** call-gated: line events only while a coroutine is inside an armed function */
    gated: boolean;
    /** coroutines counted inside armed functions; -1: lines forced on */
    inside: number;
    /** coroutine resumes the call hook looked into */
    resumes: number;
    /** repeated line events dropped (a line reported again after a call returns or a resume: no new execution) */
    repeats: number;
    /** the fast path check: 0 still checking, 1 trusted, -1 not this layout */
    fast: number;
    /** no hook at rest: hardware watchpoints on the armed functions instead */
    watching: boolean;
    /** calls that found the hook removed and put it back (watchpoint traps) */
    watch_entries: number;
    /** watchpoint traps delivered */
    watch_traps: number;
    /** traps that came late (lines forced on until a full heap walk) */
    watch_late: number;
    /** why not watching, when not ("" when watching or never tried) */
    watch_reason: string;
    /** the watchpoints on the armed functions are verified in this worker (newer agents) */
    watch_ok?: boolean;
    /** objects the last heap walk visited */
    heap_objects: number;
    /** the last heap walk, µs of worker thread CPU time */
    heap_walk_us: number;
    /** slices the last heap walk was cut into */
    heap_slices: number;
    /** the longest heap walk slice, in worker thread CPU time */
    heap_slice_max_us: number;
    /** self-checks run that traps are delivered in this worker (newer agents) */
    watch_checks?: number;
    /** the last self-check, µs of wall time (newer agents) */
    watch_check_us?: number;
    /** hits dropped in C past the rate or count limit (newer agents) */
    muted?: number;
  }
  /** Task breakpoints (ffi:RUNTIME.METHOD). */
  export interface TaskBreakpointStats {
    /** task breakpoints set (armed, or waiting for the application to load the nffi binding) */
    armed: number;
    /** task hook calls that matched a task breakpoint (enqueue and resume each count) */
    calls: number;
    /** hits that passed their condition (reported or dropped) */
    hits: number;
    /** the nffi binding's task hook is installed */
    hook: boolean;
  }
  /** What breakpoints did to the JIT (lua/nffi/inspect/jitctl.lua). */
  export interface JitStats {
    /** prototypes with the JIT turned off */
    off: number;
    /** flushes asked for (full and per trace) */
    flushes: number;
    /** jit.flush() of every trace (a scan that could not tell which traces inline an armed function) */
    full_flushes: number;
    /** root traces flushed one at a time */
    trace_flushes: number;
    /** trace aborts recorded while a breakpoint was armed */
    aborts: number;
    /** prototypes whose JIT state was restored */
    restored: number;
    /** the last trace scan, µs of CPU time */
    scan_us: number;
    /** traces the last scan looked at */
    scan_traces?: number;
    /** constants the last scan looked at */
    scan_consts?: number;
  }
  /** Line and task breakpoints of one worker (breakpoints in Agent.getStats). */
  export interface BreakpointStats {
    /** how this worker takes breakpoints now, or would for one armed now (absent from older agents) */
    mode?: Debugger.BreakpointMode;
    /** absent when libnffi's hook is not loaded */
    native?: NativeHookStats;
    /** calls of the Lua hook (the C hook counts its own: native.calls) */
    hook_calls: number;
    /** hits of line breakpoints that passed their condition (reported or dropped) */
    hits: number;
    /** hits dropped because the ring of hits waiting for the writer was full */
    ring_drops: number;
    /** a debug hook is installed now */
    hook: boolean;
    /** which hook, while one is installed */
    hook_kind?: "c" | "lua";
    /** line breakpoints armed */
    armed: number;
    /** breakpoints waiting for their file to load */
    pending: number;
    /** turns of the light thread that ships hits and breakpoint events */
    writer_loops: number;
    tasks: TaskBreakpointStats;
    jit: JitStats;
  }
  /** Frames from the probe the agent refused or ignored, since the worker started. Every refusal is answered: an error response when the frame's id can be read, else an Agent.protocolError event. */
  export interface ProtocolStats {
    /** not JSON (also NaN, Infinity, hex numbers, nesting deeper than 16) */
    parse_errors: number;
    /** requests over 8192 bytes (read and dropped), frames over 16 MiB (the session ends) */
    too_large: number;
    /** not an object, an id that is not a non-negative integer, no method */
    invalid_requests: number;
    unknown_methods: number;
    /** params refused by their declaration in this descriptor (type, range, length) */
    invalid_params: number;
    /** requests refused because 64 were already queued */
    busy: number;
    /** events the agent does not know */
    ignored_events: number;
    /** events of the agent's own over 16 MiB, not sent */
    events_dropped: number;
  }
  /** The agent removes everything it installed, replies, closes the link and goes dormant. */
  export interface DetachParams {}
  export interface DetachResult {}
  /** How long the agent's walks held the event loop at a time, since the worker started (the longest slice and the number of slices, overall and per request method), and the state of its breakpoints. */
  export interface GetStatsParams {}
  export interface GetStatsResult {
    /** wall time, including time the OS ran other processes */
    max_slice_ms: number;
    /** CPU time of the worker thread */
    max_slice_cpu_ms: number;
    /** slices of all the agent's walks since the worker started */
    slices: number;
    /** request method name -> its slices */
    methods: Record<string, MethodStats>;
    breakpoints: BreakpointStats;
    /** absent from older agents */
    protocol?: ProtocolStats;
  }
  /** First frame from the agent after it connects. */
  export interface HelloEvent {
    /** The token from the attach file. */
    token: string;
    /** the worker's pid */
    pid: number;
    /** ngx.worker.id(); -1 when nginx gives none */
    worker_id: number;
    /** the worker's effective uid */
    uid: number;
    versions: Versions;
    jit: JitState;
  }
  /** Heartbeat, both ways, every second. Silence past the timeout (default 5 s) ends the session. */
  export interface PingEvent {}
  /** A frame the agent could not answer by id (not JSON with a readable id, not an object, a bad id, over the protocol's size limit), or an event of its own it dropped. The session goes on, except after a frame over 16 MiB. */
  export interface ProtocolErrorEvent {
    /** JSON-RPC: -32700 parse error, -32600 invalid request, -32000 other */
    code: number;
    message: string;
  }
}

/** The workers a probe session covers. Served by the probe itself. */
export namespace Target {
  export interface TargetInfo {
    pid: number;
    master_pid?: number;
    worker_id?: number;
    attached: boolean;
    user?: string;
    versions?: Agent.Versions;
    jit?: Agent.JitState;
    /** Why the worker is not attached. */
    error?: string;
  }
  export interface GetTargetsParams {}
  export interface GetTargetsResult {
    targets: TargetInfo[];
  }
  export interface AttachedToTargetEvent {
    target: TargetInfo;
  }
  export interface DetachedFromTargetEvent {
    pid: number;
    reason: string;
  }
}

/** Coroutines, stacks and values of one worker. Served by the agent; every walk is chunked so the worker never stalls. */
export namespace Lua {
  export interface Frame {
    /** The name a reader would use: a loaded module's field (demo_app.handle, ngx.sleep), a table field or upvalue that holds the function (handlers.slow, park_timer), else 'main chunk' or 'function <file.lua:39>' as Lua's traceback says */
    function: string;
    /** Chunk name without the leading '@', e.g. /app/handler.lua or =content_by_lua(nginx.conf:40) */
    source: string;
    /** Current line, -1 for C functions */
    line: number;
    /** Line where the function is defined (0 for a main chunk, -1 for C functions); the agent always sends it */
    linedefined?: number;
    /** The name LuaJIT gives (the caller's variable or field), when it differs from function */
    called_as?: string;
    what: "Lua" | "C" | "main" | "tail";
    /** Where the line comes from in the original source, when a source map covers the chunk (probe-added) */
    original?: Debugger.OriginalPosition;
  }
  /** A captured value, read raw (no metamethods, no __tostring). Tables are bounded (default 2 levels, 50 keys, strings 256 bytes). */
  export interface Value {
    type: "nil" | "boolean" | "number" | "string" | "table" | "function" | "thread" | "userdata" | "cdata" | "cycle" | "more" | "proxy" | "unavailable";
    /** boolean/number/string value (a number that is NaN or infinite as 'nan', 'inf', '-inf'); 'function source:line' or 'function [C]' for functions; the coroutine id (as Lua.Coroutine.id) for threads; a cdata scalar's value or a pointer's address as a string; for a proxy (a table read through metamethods, empty raw), what it is: 'ngx.var', 'ngx.header'. An 'unavailable' local is one the code does not read again from the frame's point: after a JIT trace exit its slot may hold a stale value, so none is shown */
    value?: unknown;
    /** cdata type */
    ctype?: string;
    /** Full string length in bytes, when truncated */
    length?: number;
    /** String cut at the byte limit, or table keys/depth cut */
    truncated?: boolean;
    /** Table id within one answer (t1, t2, ...); a 'cycle' value names the table it refers back to */
    ref?: string;
    entries?: Entry[];
  }
  export interface Entry {
    key: Value;
    value: Value;
  }
  export interface Variable {
    name: string;
    value: Value;
    /** An upvalue holding library code kept at hand (a C function, an FFI function, a field of a loaded module or a loaded module): front ends hide these unless asked */
    library?: boolean;
  }
  export interface StackFrame {
    /** 0 for the top frame */
    level: number;
    /** The name a reader would use: a loaded module's field (demo_app.handle, ngx.sleep), a table field or upvalue that holds the function (handlers.slow, park_timer), else 'main chunk' or 'function <file.lua:39>' as Lua's traceback says */
    function: string;
    /** As in Frame */
    source: string;
    /** Current line, -1 for C functions */
    line: number;
    /** Line where the function is defined (0 for a main chunk, -1 for C functions); the agent always sends it */
    linedefined?: number;
    /** The name LuaJIT gives (the caller's variable or field), when it differs from function */
    called_as?: string;
    what: "Lua" | "C" | "main" | "tail";
    /** With locals: true; internal ones ((for ...), (*temporary)) left out */
    locals?: Variable[];
    upvalues?: Variable[];
    varargs?: Value[];
  }
  export interface Wait {
    kind: "ngx.sleep" | "cosocket" | "semaphore" | "ffi" | "thread.wait" | "subrequest" | "unknown";
    /** For ffi: the task the coroutine waits on */
    task_id?: number;
    /** e.g. the cosocket method (receive, connect) */
    detail?: string;
  }
  export interface Request {
    /** HTTP method */
    method: string;
    /** $request_uri (with its query string), at most 1024 bytes */
    uri: string;
  }
  export interface Coroutine {
    /** Stable for the worker's lifetime, across sessions */
    id: number;
    kind: "request" | "thread" | "timer" | "user";
    state: "running" | "suspended" | "normal" | "dead";
    /** When suspended */
    wait?: Wait;
    /** Top frames first (from the first frame of application code when the request asked to skip) */
    frames: Frame[];
    /** Frames above the first one listed that were left out (C functions and chunks the request's skip globs match); absent when none were */
    skipped?: number;
    /** The client request it serves (method, $request_uri up to 1024 bytes); absent when none is known: timers and their light threads, and user coroutines not created in the request of the coroutine they were found from */
    request?: Request;
  }
  export interface GetCoroutinesParams {
    /** Top frames per coroutine, default 3; more than 50 is taken as 50 */
    frames?: number;
    /** Start each coroutine's frames at its first frame of application code: not a C function, and from no chunk these comma-separated globs match (store/frames.ts: * any characters but /, ** anything, ? one character; matched from the start of the chunk name or after any /); looked for within 16 frames of the top, else the frames start at the top */
    skip?: string;
    /** The epoch of the last answer the client holds (0: none yet). The agent keeps this answer as the next base and, when it still holds the base named here (walked with the same frames and skip), answers with only the coroutines new or changed since it, plus the ids gone */
    since?: number;
  }
  export interface GetCoroutinesResult {
    /** Every coroutine; with base, only those new or changed since that answer */
    coroutines: Coroutine[];
    truncated?: boolean;
    /** With since: this answer's epoch, the since of the next request (absent when the walk was cut short) */
    epoch?: number;
    /** This answer is a delta over the answer of this epoch: coroutines not listed are as they were, except those in gone */
    base?: number;
    /** With base: ids that answer had and this walk did not find */
    gone?: number[];
  }
  export interface GetStackParams {
    coroutine: number;
    /** Add locals, upvalues and varargs per frame */
    locals?: boolean;
    /** Default 2; more than 8 is taken as 8 */
    depth?: number;
    /** Default 50; more than 1000 is taken as 1000 */
    keys?: number;
    /** Default 256; more than 65536 is taken as 65536 */
    string_bytes?: number;
  }
  export interface GetStackResult {
    frames: StackFrame[];
    /** As in Coroutine */
    request?: Request;
  }
}

/** The nffi runtimes of one worker and their tasks. Served by the agent from the nffi instrumentation, without stopping any runtime thread. */
export namespace FFI {
  /** One phase of a runtime's task latencies since it started, from a histogram (quantiles within 25% above the true value, never above max). 0 everywhere while count is 0. */
  export interface Latency {
    /** median, ms */
    p50: number;
    /** ms */
    p99: number;
    /** ms */
    max: number;
    /** tasks measured */
    count: number;
  }
  /** A runtime's latencies per phase, from each task's timestamps (enqueued, polled, responded, resumed) */
  export interface LatencySummary {
    /** polled - enqueued: waiting in the queue */
    queue: Latency;
    /** responded - polled: in the runtime */
    service: Latency;
    /** resumed - responded: until the waiting coroutine ran again */
    wakeup: Latency;
    /** resumed - enqueued */
    total: Latency;
  }
  /** One nffi runtime of the worker (nffi.stats()); counters since the runtime started, without stopping any runtime thread */
  export interface RuntimeStats {
    /** opts.name given at load, else the library name (made unique in the worker) */
    name: string;
    /** path of the runtime library */
    lib: string;
    /** rt:__unload() was called */
    unloaded: boolean;
    /** tasks accepted by submit */
    enqueued: number;
    /** tasks handed to a runtime thread */
    polled: number;
    /** responses the runtime gave */
    responded: number;
    /** results taken by their waiting coroutine */
    completed: number;
    /** tasks abandoned by a waiter that timed out */
    timeouts: number;
    /** submits refused: queue full, or the runtime finished */
    rejected: number;
    /** responses that came after their waiter gave up */
    late: number;
    /** tasks in the queue now, not yet polled */
    depth: number;
    /** tasks polled now, not yet responded */
    in_flight: number;
    /** tasks allocated now and not yet released (queued, in flight, or done and not yet taken) */
    live: number;
    /** queue capacity (opts.max_queue) */
    max_queue: number;
    /** latencies per phase, ms */
    latency_ms: LatencySummary;
    /** Beyond one task a millisecond (always stamped, each standing for itself), 1 in this many tasks (at random) has its latencies stamped and stands for as many in latency_ms; 1: every task (NFFI_LAT_SAMPLE=1; an armed task breakpoint stamps every task too, at weight 1, but this still says the runtime's own rate); 0: not instrumented (a libnffi built without it, or a runtime loaded with instrument = false: enqueued, completed, timeouts and rejected are not counted either) */
    latency_sample_every?: number;
    /** Tasks whose latencies were stamped since the runtime started */
    latency_samples?: number;
    /** With NFFI_FLIGHT_SPIN_US set in the worker's environment (off by default), while more than 2 of the runtime's calls are live a poller that finds the queue empty may spin that long for the worker's next batch instead of sleeping, from another CPU than the worker's only: the spins that found it */
    spins_in_flight?: number;
    /** Such spins that lost their CPU to something else on it (the host running another vCPU, another thread); after each the pollers sleep at once for their next 63 chances. Many lost: this machine does not give a spinning poller a CPU of its own */
    spins_lost?: number;
    /** How responses reach this runtime's waiters: eventfd, an eventfd in nginx's event loop whose handler posts each waiter's semaphore (libnffi_ngx.so); pump, the pump light thread reading the wake socket */
    wake: "eventfd" | "pump";
    /** Why the pump and not the eventfd: the check that failed (nginx headers of another nginx, an event method other than epoll, libnffi_ngx.so not built, the worker exiting) or 'opts.wake = "pump"' */
    wake_reason?: string;
  }
  /** A live task of an nffi runtime */
  export interface Task {
    /** Unique in the worker, increasing in the order tasks are enqueued */
    id: number;
    /** RuntimeStats.name of its runtime */
    runtime: string;
    /** The method called (rt:METHOD(req)), at most 31 bytes */
    method: string;
    /** pending: in the queue; polled: a runtime thread holds it; done: responded; ready: its result waits for the coroutine to run; abandoned: its waiter timed out */
    state: "pending" | "polled" | "done" | "ready" | "abandoned";
    /** ms since it was enqueued (none when libnffi is built with NFFI_NO_INSTRUMENT) */
    age_ms?: number;
    /** When it was enqueued: CLOCK_MONOTONIC in ms, one clock for every worker of the host, so the tasks of several workers sort by it whenever each answer was taken (none when libnffi is built with NFFI_NO_INSTRUMENT) */
    enqueued_ms?: number;
    /** request bytes */
    req_len: number;
    /** the first bytes of the request (at most 64) */
    req_preview: string;
    /** The coroutine waiting on it, when it is known */
    coroutine?: TaskCoroutine;
  }
  /** The coroutine waiting on a task */
  export interface TaskCoroutine {
    /** Its Lua.Coroutine id (Lua.getStack takes it) */
    id: number;
    /** Its top frames (up to 3), top first; from its first frame of application code when the request asked to skip */
    frames: Lua.Frame[];
    /** Frames above the first one listed that were left out (FFI.getTasks skip); absent when none were */
    skipped?: number;
    /** The client request the waiter serves, when one is known (never for an abandoned task: its waiter went on) */
    request?: Lua.Request;
  }
  export interface GetRuntimesParams {}
  export interface GetRuntimesResult {
    runtimes: RuntimeStats[];
  }
  /** Live tasks of every runtime, oldest first (the order they were enqueued in), at most max per answer; page on with after_id set to the last id returned. */
  export interface GetTasksParams {
    /** Only tasks enqueued at least this long before the request */
    older_than_ms?: number;
    /** Default 1000, also the most one answer holds */
    max?: number;
    /** Only tasks with a greater id: the last id of the previous page */
    after_id?: number;
    /** Default true; false skips counting (later pages) */
    total?: boolean;
    /** Each waiter's frames from its first frame of application code, as Lua.getCoroutines' skip */
    skip?: string;
  }
  export interface GetTasksResult {
    tasks: Task[];
    /** More matching tasks follow the last one returned */
    truncated?: boolean;
    /** Matching tasks in the worker (every page, not only this one), unless total was false */
    total?: number;
  }
}

/** Breakpoints that never stop the worker: each hit takes a bounded snapshot (or renders a log message) and the request goes on. Served by the agent; the probe keeps the desired set and re-applies it to new workers. */
export namespace Debugger {
  export interface BreakpointSpec {
    /** FILE: path suffix of the chunk source (handler.lua, app/handler.lua, /abs/path.lua) or a chunk name like =content_by_lua(nginx.conf:40); or ffi:RUNTIME.METHOD (either part may be * or a glob) for a task breakpoint on the FFI queue, fired on enqueue and on resume */
    url: string;
    /** Required for FILE; none for ffi:RUNTIME.METHOD */
    line?: number;
    /** Side-effect-free Lua expression over the line's locals and upvalues and request reads (ngx.var, ngx.ctx); a name the line cannot see is refused when the breakpoint arms ('condition: unknown name ...') */
    condition?: string;
    /** Logpoint template: 'n={n} user={ctx.user}'; at most 32 {expressions} */
    log?: string;
    /** Remove after this many hits */
    count?: number;
    /** Hits per second per worker, default 50 */
    rate?: number;
    /** Always expires; default 600000 */
    timeout_ms?: number;
  }
  export interface Breakpoint {
    /** Probe-chosen (setBreakpoint id), else given by the agent */
    id: number;
    spec: BreakpointSpec;
    /** pending: the file is not loaded yet */
    state: "armed" | "pending" | "disabled";
    /** The chunk the breakpoint resolved to */
    source?: string;
    /** The line it resolved to (the next line with code) */
    line?: number;
    /** hits that passed the condition (reported or dropped) */
    hits: number;
    /** hits not reported: over the rate, or the ring of hits full */
    dropped: number;
    /** For a breakpoint set on an original source (FILE:LINE through a source map): the original position it armed on (probe-added) */
    original?: OriginalPosition;
  }
  /** The task part of a task breakpoint hit: on enqueue the request, on resume the outcome and latencies */
  export interface TaskHit {
    phase: "enqueue" | "resume";
    runtime: string;
    method: string;
    /** enqueue: request bytes */
    req_len?: number;
    /** enqueue: the first 256 bytes of the request */
    req_preview?: string;
    /** resume: the call's first result */
    ok?: boolean;
    /** resume: the runtime's rc; none when no response came (timeout, queue full) */
    rc?: number;
    /** resume: the error (the response body for rc ~= 0, else timeout, queue full, ...) */
    err?: string;
    res_len?: number;
    /** resume: the first 256 bytes of the response */
    res_preview?: string;
    /** resume: from the task's timestamps (none when libnffi is built without instrumentation) */
    latency_ms?: TaskLatency;
  }
  /** One task's latencies, ms, from its timestamps */
  export interface TaskLatency {
    /** polled - enqueued, ms */
    queue: number;
    /** responded - polled, ms */
    service: number;
    /** resumed - responded, ms */
    wakeup: number;
    /** resumed - enqueued, ms */
    total: number;
  }
  /** A position in the original source of a generated Lua chunk (e.g. TypeScriptToLua's handler.ts), from the chunk's source map */
  export interface OriginalPosition {
    /** Path of the original source as the map names it, resolved against the map's directory */
    source: string;
    line: number;
  }
  /** A loaded Lua chunk */
  export interface Script {
    /** Chunk name without the leading '@' (a file path), or a '=name' chunk name */
    source: string;
    /** Lines spanned by the chunk's functions the walk reached (the main chunk's own function is usually collected after it ran) */
    first_line?: number;
    last_line?: number;
    /** Functions (prototypes) of the chunk the walk reached */
    functions?: number;
  }
  /** How a worker takes breakpoints: watching (hardware watchpoints, no hook at rest), or a hook (the C call-gated hook, the C line hook, the Lua hook). The agent checks at session start that traps are delivered before it trusts watching. */
  export interface BreakpointMode {
    mode: "watching" | "call hook" | "line hook" | "lua hook";
    /** why not watching: "traps not delivered on this machine", "perf_event_open: Permission denied"; present whenever mode is not watching */
    reason?: string;
  }
  export interface SetBreakpointParams {
    spec: BreakpointSpec;
    /** Probe-chosen id, kept across workers */
    id?: number;
  }
  export interface SetBreakpointResult {
    breakpoint: Breakpoint;
    /** The requested line, when it had no code */
    moved_from?: number;
    /** With moved_from: the requested line is inside no function that can still run (the chunk's top level, which ran when it loaded, or a line between functions) */
    top_level?: boolean;
    /** FILE matched no loaded chunk (the breakpoint is pending): the loaded chunk names nearest to it (same file name, or a few edits away), nearest first; may be empty */
    nearest?: string[];
    /** ffi:RUNTIME.METHOD whose RUNTIME matches no runtime this worker has loaded (yet): the runtimes it has; the breakpoint fires once one of that name loads */
    runtimes?: string[];
    /** how this worker takes the breakpoint (absent from older agents) */
    mode?: BreakpointMode;
  }
  export interface RemoveBreakpointParams {
    id: number;
  }
  export interface RemoveBreakpointResult {}
  export interface GetBreakpointsParams {}
  export interface GetBreakpointsResult {
    breakpoints: Breakpoint[];
  }
  /** The chunks of the Lua code loaded in the worker (a sliced walk), for source-map lookups */
  export interface GetScriptsParams {}
  export interface GetScriptsResult {
    scripts: Script[];
  }
  export interface HitEvent {
    /** the breakpoint */
    id: number;
    /** the worker */
    pid: number;
    /** Unix time, seconds (ngx.now(): ms resolution) */
    time: number;
    /** Chunk of the line hit; for a task breakpoint the caller of rt:method(...), or ffi:RUNTIME.METHOD when no Lua caller was found */
    source: string;
    /** for a task breakpoint with no Lua caller: 0 */
    line: number;
    /** Up to 20 frames, the hit frame first */
    frames: Lua.Frame[];
    /** name -> value of the hit frame's locals, read raw (2 levels, 50 keys, 256 string bytes, 1000 table entries for the whole hit); absent for a logpoint */
    locals?: Record<string, Lua.Value>;
    /** name -> value of the hit frame's upvalues, read raw (2 levels, 50 keys, 256 string bytes, 1000 table entries for the whole hit); absent for a logpoint */
    upvalues?: Record<string, Lua.Value>;
    /** The hit frame's varargs (none for a task breakpoint: empty); absent for a logpoint */
    varargs?: Lua.Value[];
    /** For a logpoint: the rendered template, instead of locals, upvalues and varargs */
    message?: string;
    /** The request being served; none in a timer */
    request?: Lua.Request;
    /** For a task breakpoint (ffi:RUNTIME.METHOD): the task; source, line and frames are then the caller of rt:method(...) */
    task?: TaskHit;
    /** The original position of source:line when a source map covers it (probe-added; the frames carry theirs) */
    original?: OriginalPosition;
  }
  export interface ArmedEvent {
    breakpoint: Breakpoint;
    /** The worker, added by the probe on serve's sockets (agents' own events name no pid) */
    pid?: number;
    /** The requested line, when it had no code (probe-added, as pid) */
    moved_from?: number;
    /** As setBreakpoint's top_level (probe-added, as pid) */
    top_level?: boolean;
    /** As setBreakpoint's nearest, for a pending breakpoint (probe-added, as pid) */
    nearest?: string[];
    /** As setBreakpoint's runtimes (probe-added, as pid) */
    runtimes?: string[];
    /** how this worker takes the breakpoint (absent from older agents) */
    mode?: BreakpointMode;
  }
  export interface RemovedEvent {
    id: number;
    /** count (its count reached), timeout, deleted (removeBreakpoint), error (its condition or log template failed: see the error event); the probe adds 'worker detached: ...' when a worker lets go */
    reason: string;
    /** The worker, added by the probe on serve's sockets; none: the breakpoint left the probe's set */
    pid?: number;
  }
  export interface ErrorEvent {
    id: number;
    /** what failed: 'condition: ...', 'log: ...' (the probe says 'log template: ...'), or why a pending breakpoint could not be armed once its file loaded ('condition: unknown name ...' / 'log template: unknown name ...': removed there, and the probe ends it everywhere) */
    message: string;
    /** The worker, added by the probe on serve's sockets (agents' own events name no pid) */
    pid?: number;
  }
  export interface DroppedEvent {
    id: number;
    /** hits not reported since the last dropped event of this breakpoint (over the rate, or the ring full) */
    count: number;
    /** The worker, added by the probe on serve's sockets (agents' own events name no pid) */
    pid?: number;
  }
}

/** Every command: "Domain.method" → its params and result. */
export interface Commands {
  'Agent.detach': { params: Agent.DetachParams; result: Agent.DetachResult };
  'Agent.getStats': { params: Agent.GetStatsParams; result: Agent.GetStatsResult };
  'Target.getTargets': { params: Target.GetTargetsParams; result: Target.GetTargetsResult };
  'Lua.getCoroutines': { params: Lua.GetCoroutinesParams; result: Lua.GetCoroutinesResult };
  'Lua.getStack': { params: Lua.GetStackParams; result: Lua.GetStackResult };
  'FFI.getRuntimes': { params: FFI.GetRuntimesParams; result: FFI.GetRuntimesResult };
  'FFI.getTasks': { params: FFI.GetTasksParams; result: FFI.GetTasksResult };
  'Debugger.setBreakpoint': { params: Debugger.SetBreakpointParams; result: Debugger.SetBreakpointResult };
  'Debugger.removeBreakpoint': { params: Debugger.RemoveBreakpointParams; result: Debugger.RemoveBreakpointResult };
  'Debugger.getBreakpoints': { params: Debugger.GetBreakpointsParams; result: Debugger.GetBreakpointsResult };
  'Debugger.getScripts': { params: Debugger.GetScriptsParams; result: Debugger.GetScriptsResult };
}

/** Every event: "Domain.event" → its params. */
export interface Events {
  'Agent.hello': Agent.HelloEvent;
  'Agent.ping': Agent.PingEvent;
  'Agent.protocolError': Agent.ProtocolErrorEvent;
  'Target.attachedToTarget': Target.AttachedToTargetEvent;
  'Target.detachedFromTarget': Target.DetachedFromTargetEvent;
  'Debugger.hit': Debugger.HitEvent;
  'Debugger.armed': Debugger.ArmedEvent;
  'Debugger.removed': Debugger.RemovedEvent;
  'Debugger.error': Debugger.ErrorEvent;
  'Debugger.dropped': Debugger.DroppedEvent;
}
