-- Debugger.getScripts: the chunk sources of the Lua code loaded in this
-- worker (finder.lua's sliced walk), so the probe can look for source maps
-- next to the files, and for `nffi-inspect scripts`.
-- Only named chunks: '@file' (without the '@') and '=name' chunk names; a
-- chunk loaded from a string has its code as its source and is left out.
local finder = require "nffi.inspect.finder"
local json = require "nffi.inspect.json"

local array = json.array
local next = next
local str_byte = string.byte
local tbl_sort = table.sort

local _M = { _VERSION = "0.1.0" }

local AT, EQ = 64, 61  -- '@', '='

-- { source, first_line, last_line, functions } of one chunk: the lines its
-- reachable prototypes span (a main chunk's own function is usually collected
-- once it ran, so first_line is often that of its first function) and how
-- many prototypes the walk reached.
local function script_of(s)
    local first, last
    for i = 1, #s.protos do
        local p = s.protos[i]
        local from = p.linedefined > 0 and p.linedefined or 1
        if not first or from < first then
            first = from
        end
        if not last or p.lastlinedefined > last then
            last = p.lastlinedefined
        end
    end
    local out = { source = finder.name_of(s.source), functions = #s.protos }
    if first and last and last >= first then
        out.first_line, out.last_line = first, last
    end
    return out
end

function _M.get_scripts(_, b)
    local sources = finder.collect(b)
    local names = {}
    for src in next, sources do
        local c = str_byte(src, 1)
        if c == AT or c == EQ then
            names[#names + 1] = src
        end
    end
    tbl_sort(names)
    local scripts = array()
    for i = 1, #names do
        scripts[#scripts + 1] = script_of(sources[names[i]])
        b:step()
    end
    return { scripts = scripts }
end

return _M
