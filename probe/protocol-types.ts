// generated — do not edit. Source: probe/protocol.json; regenerate with
// `node dist/scripts/gen-protocol-types.js` (npm run build does it).
/* eslint-disable */
export const PROTOCOL_VERSION = '0.1';

/** The link between the probe and the agent inside one worker (length-prefixed JSON frames over the probe's unix socket). Front ends never call it. */
export namespace Agent {
  export interface Versions {
    nginx: string;
    ngx_lua: string;
    luajit: string;
    agent: string;
  }
  export interface JitState {
    enabled: boolean;
    /** jit.status() flags, e.g. SSE2, fold, cse */
    flags: string[];
  }
  /** How one request method's walks held the event loop. */
  export interface MethodStats {
    requests: number;
    slices: number;
    /** > 0: a request was cut into several slices (sends of its answer count as slice boundaries too) */
    yields: number;
    /** wall time */
    max_slice_ms: number;
    /** CPU time of the worker thread */
    max_slice_cpu_ms: number;
  }
  /** The C hook of native/src/hook.c (breakpoints.native in Agent.getStats), since the worker started unless said otherwise. */
  export interface NativeHookStats {
    /** hook calls */
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
    resumes: number;
    repeats: number;
    /** the fast path check: 0 still checking, 1 trusted, -1 not this layout */
    fast: number;
    /** no hook at rest: hardware watchpoints on the armed functions instead */
    watching: boolean;
    /** calls that found the hook removed and put it back (watchpoint traps) */
    watch_entries: number;
    watch_traps: number;
    /** traps that came late (lines forced on until a full heap walk) */
    watch_late: number;
    /** why not watching, when not ("" when watching or never tried) */
    watch_reason: string;
    /** the watchpoints on the armed functions are verified in this worker (newer agents) */
    watch_ok?: boolean;
    /** objects the last heap walk visited */
    heap_objects: number;
    heap_walk_us: number;
    heap_slices: number;
    /** the longest heap walk slice, in worker thread CPU time */
    heap_slice_max_us: number;
    /** self-checks that traps are delivered in this worker (newer agents) */
    watch_checks?: number;
    /** time spent in those self-checks (newer agents) */
    watch_check_us?: number;
    /** hits dropped in C past the rate or count limit (newer agents) */
    muted?: number;
  }
  /** Task breakpoints (ffi:RUNTIME.METHOD). */
  export interface TaskBreakpointStats {
    armed: number;
    /** task hook calls */
    calls: number;
    hits: number;
    /** the nffi binding's task hook is installed */
    hook: boolean;
  }
  /** What breakpoints did to the JIT (lua/nffi/inspect/jitctl.lua). */
  export interface JitStats {
    /** prototypes with the JIT turned off */
    off: number;
    flushes: number;
    full_flushes: number;
    trace_flushes: number;
    /** trace aborts recorded while a breakpoint was armed */
    aborts: number;
    /** prototypes whose JIT state was restored */
    restored: number;
    /** the last trace scan */
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
    /** calls of the Lua hook */
    hook_calls: number;
    hits: number;
    /** hits dropped because the ring was full */
    ring_drops: number;
    /** a debug hook is installed now */
    hook: boolean;
    /** which hook, while one is installed */
    hook_kind?: "c" | "lua";
    armed: number;
    /** breakpoints waiting for their file to load */
    pending: number;
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
    pid: number;
    /** ngx.worker.id() */
    worker_id: number;
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
    /** Name as debug.getinfo gives it, or '?' */
    function: string;
    /** Chunk name without the leading '@', e.g. /app/handler.lua or =content_by_lua(nginx.conf:40) */
    source: string;
    /** Current line, -1 for C functions */
    line: number;
    what: "Lua" | "C" | "main" | "tail";
    /** Where the line comes from in the original source, when a source map covers the chunk (probe-added) */
    original?: Debugger.OriginalPosition;
  }
  /** A captured value, read raw (no metamethods, no __tostring). Tables are bounded (default 2 levels, 50 keys, strings 256 bytes). */
  export interface Value {
    type: "nil" | "boolean" | "number" | "string" | "table" | "function" | "thread" | "userdata" | "cdata" | "cycle" | "more";
    /** boolean/number/string value; 'function source:line' for functions; cdata scalar value as a string */
    value?: unknown;
    /** cdata type */
    ctype?: string;
    /** Full string length, when truncated */
    length?: number;
    /** String cut at the byte limit, or table keys/depth cut */
    truncated?: boolean;
    /** Table id; a 'cycle' value names the table it refers back to */
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
  }
  export interface StackFrame {
    level: number;
    function: string;
    source: string;
    line: number;
    what: string;
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
    method: string;
    uri: string;
  }
  export interface Coroutine {
    /** Stable for the worker's lifetime, across sessions */
    id: number;
    kind: "request" | "thread" | "timer" | "user";
    state: "running" | "suspended" | "normal" | "dead";
    /** When suspended */
    wait?: Wait;
    /** Top frames first */
    frames: Frame[];
    /** The client request it serves (method, $request_uri up to 1024 bytes); absent when none is known: timers and their light threads, and user coroutines not created in the request of the coroutine they were found from */
    request?: Request;
  }
  export interface GetCoroutinesParams {
    /** Top frames per coroutine, default 3; more than 50 is taken as 50 */
    frames?: number;
  }
  export interface GetCoroutinesResult {
    coroutines: Coroutine[];
    truncated?: boolean;
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
  export interface Latency {
    p50: number;
    p99: number;
    max: number;
    count: number;
  }
  export interface RuntimeStats {
    name: string;
    lib: string;
    depth: number;
    in_flight: number;
    enqueued: number;
    completed: number;
    timeouts: number;
    rejected: number;
    late: number;
    max_queue: number;
    /** queue, service, wakeup, total: each a Latency */
    latency_ms: Record<string, unknown>;
  }
  export interface Task {
    id: number;
    runtime: string;
    method: string;
    state: "pending" | "polled" | "done" | "ready" | "abandoned";
    age_ms: number;
    req_len: number;
    req_preview: string;
    /** {id, frames}: the waiting coroutine (Lua.Coroutine id) and its top frames */
    coroutine?: Record<string, unknown>;
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
    /** Side-effect-free Lua expression over locals, upvalues, globals and request reads */
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
    id: number;
    spec: BreakpointSpec;
    /** pending: the file is not loaded yet */
    state: "armed" | "pending" | "disabled";
    /** The chunk the breakpoint resolved to */
    source?: string;
    /** The line it resolved to (the next line with code) */
    line?: number;
    hits: number;
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
  export interface TaskLatency {
    /** polled - enqueued */
    queue: number;
    /** responded - polled */
    service: number;
    /** resumed - responded */
    wakeup: number;
    /** resumed - enqueued */
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
    id: number;
    pid: number;
    /** Unix time, seconds */
    time: number;
    source: string;
    line: number;
    frames: Lua.Frame[];
    /** name -> Lua.Value */
    locals?: Record<string, unknown>;
    upvalues?: Record<string, unknown>;
    varargs?: Lua.Value[];
    /** For a logpoint, instead of locals */
    message?: string;
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
    /** how this worker takes the breakpoint (absent from older agents) */
    mode?: BreakpointMode;
  }
  export interface RemovedEvent {
    id: number;
    /** count, timeout, deleted, error, detach */
    reason: string;
    /** The worker, added by the probe on serve's sockets; none: the breakpoint left the probe's set */
    pid?: number;
  }
  export interface ErrorEvent {
    id: number;
    message: string;
    /** The worker, added by the probe on serve's sockets (agents' own events name no pid) */
    pid?: number;
  }
  export interface DroppedEvent {
    id: number;
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
