-- The attach file as the agent reads it: <run dir>/<pid>.attach (DESIGN.md,
-- "Attach handshake" and "Trust model"). Nothing here ever blocks the worker or
-- follows a link:
--   * the dormant poll only lstat()s the path (a FIFO is never opened by it);
--   * the run dir is opened O_PATH|O_DIRECTORY|O_NOFOLLOW and checked on its
--     descriptor: a directory owned by this worker's euid (or root), no
--     group/other bits; a run dir anybody else made (it sits in /tmp, where any
--     user may create it first) is refused;
--   * the file is lstat()ed inside that descriptor (fstatat) before it is
--     opened: a regular file owned by the euid, no group/other bits, at most
--     MAX_BYTES; then opened with openat(O_NONBLOCK|O_NOFOLLOW|O_CLOEXEC) and the
--     same checks are made again on the open descriptor (same inode), so a swap
--     between the two is caught.
-- Linux only: statx (glibc 2.28+) has one struct layout on every architecture;
-- the O_* flags that differ between architectures are picked by ffi.arch.
local ffi = require "ffi"
local bit = require "bit"

local C = ffi.C
local ffi_new = ffi.new
local ffi_string = ffi.string
local ffi_errno = ffi.errno
local band = bit.band
local bor = bit.bor
local tonumber = tonumber
local tostring = tostring
local string_format = string.format

local _M = { _VERSION = "0.1.0" }

-- asm-named so that an application's own cdef of open/read/... cannot clash
ffi.cdef[[
struct nffi_statx_ts { int64_t tv_sec; uint32_t tv_nsec; int32_t reserved; };
struct nffi_statx {
    uint32_t mask; uint32_t blksize; uint64_t attributes;
    uint32_t nlink; uint32_t uid; uint32_t gid; uint16_t mode; uint16_t spare0;
    uint64_t ino; uint64_t size; uint64_t blocks; uint64_t attributes_mask;
    struct nffi_statx_ts atime, btime, ctime, mtime;
    uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
    uint64_t spare2[14];
};
int nffi_sys_statx(int dirfd, const char *path, int flags, unsigned int mask,
                   struct nffi_statx *buf) __asm__("statx");
int nffi_sys_open(const char *path, int flags) __asm__("open");
int nffi_sys_openat(int dirfd, const char *path, int flags) __asm__("openat");
ssize_t nffi_sys_read(int fd, void *buf, size_t n) __asm__("read");
int nffi_sys_close(int fd) __asm__("close");
]]

local arch_flags = {
    x64 = { NOFOLLOW = 0x20000, DIRECTORY = 0x10000 },
    x86 = { NOFOLLOW = 0x20000, DIRECTORY = 0x10000 },
    arm64 = { NOFOLLOW = 0x8000, DIRECTORY = 0x4000 },
    arm = { NOFOLLOW = 0x8000, DIRECTORY = 0x4000 },
    ppc = { NOFOLLOW = 0x8000, DIRECTORY = 0x4000 },
}
local af = arch_flags[ffi.arch]
if ffi.os ~= "Linux" or not af then
    error("nffi.inspect: attach files are read on Linux x86/x64/arm/arm64/ppc only, not "
          .. ffi.os .. "/" .. ffi.arch)
end
-- the symbol is looked up now: a libc without statx refuses here, not in the poll
local ok_statx = pcall(function() return C.nffi_sys_statx end)
if not ok_statx then
    error("nffi.inspect: libc has no statx (glibc 2.28 or later is needed)")
end

local O_NONBLOCK, O_CLOEXEC, O_NOCTTY, O_PATH = 0x800, 0x80000, 0x100, 0x200000
local O_FILE = bor(O_NONBLOCK, O_CLOEXEC, O_NOCTTY, af.NOFOLLOW)        -- O_RDONLY = 0
-- O_PATH: a handle for fstatat/openat that needs no read permission on the dir
local O_DIR = bor(O_PATH, O_CLOEXEC, af.NOFOLLOW, af.DIRECTORY)
local AT_FDCWD, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH = -100, 0x100, 0x1000
local STATX_BASIC = 0x7ff
local ENOENT, ENOTDIR, ELOOP = 2, 20, 40
local S_IFMT, S_IFDIR, S_IFREG, S_IFLNK = 0xF000, 0x4000, 0x8000, 0xA000
local type_names = {
    [0x1000] = "a FIFO", [0x2000] = "a character device", [0x6000] = "a block device",
    [0xC000] = "a socket", [S_IFLNK] = "a symlink", [S_IFDIR] = "a directory",
    [S_IFREG] = "a regular file",
}

_M.MAX_BYTES = 4096

-- scratch, allocated once: the poll and the session timer never overlap
-- (the poll does nothing while a session is busy)
local st = ffi_new("struct nffi_statx")
local st2 = ffi_new("struct nffi_statx")
local buf = ffi_new("char[?]", _M.MAX_BYTES + 1)

local function lstat(path, out)
    return C.nffi_sys_statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC, out) == 0
end

local function kind(s)
    return band(s.mode, S_IFMT)
end

local function perm(s)
    return band(s.mode, 0x1FF)
end

-- true when something is at `path` (not followed): the dormant poll's one syscall
function _M.exists(path)
    return lstat(path, st)
end

local function id_of(s)
    return string_format("%d:%d:%d:%d:%d", s.dev_major, s.dev_minor, tonumber(s.ino), s.mode, s.uid)
end

-- What the run dir and the file are now (lstat, nothing opened): a refusal is
-- logged once and not retried while this stays the same. The directory by what
-- decides its trust (not its ctime, which every entry made in it changes); the
-- file also by its ctime and size (rewritten in place, chmodded, chowned).
function _M.signature(dir, path)
    local d = lstat(dir, st) and id_of(st) or "-"
    local f = "-"
    if lstat(path, st) then
        f = string_format("%s:%d.%d:%d", id_of(st), tonumber(st.ctime.tv_sec), st.ctime.tv_nsec,
                          tonumber(st.size))
    end
    return d .. "/" .. f
end

local function octal(n)
    return string_format("%o", n)
end

local function check_dir(s, dir, uid)
    if kind(s) ~= S_IFDIR then
        return "run directory " .. dir .. " is " .. (type_names[kind(s)] or "not a directory")
    end
    if s.uid ~= uid and s.uid ~= 0 then
        return "run directory " .. dir .. " owned by uid " .. s.uid .. ", not " .. uid .. " or root"
    end
    if band(perm(s), 0x3F) ~= 0 then
        return "run directory " .. dir .. " has mode " .. octal(perm(s)) .. " (must be 700)"
    end
end

local function check_file(s, uid)
    if kind(s) ~= S_IFREG then
        return "attach file is " .. (type_names[kind(s)] or "not a regular file")
    end
    if s.uid ~= uid then
        return "attach file owned by uid " .. s.uid .. ", not " .. uid
    end
    if band(perm(s), 0x3F) ~= 0 then
        return "attach file has mode " .. octal(perm(s)) .. " (must be 600)"
    end
    if s.size > _M.MAX_BYTES then
        return "attach file is too large (" .. tostring(tonumber(s.size)) .. " bytes)"
    end
end

local function open_dir(dir, uid)
    local dfd = C.nffi_sys_open(dir, O_DIR)
    if dfd < 0 then
        local e = ffi_errno()
        if e == ENOENT then
            return nil
        end
        if e == ELOOP or e == ENOTDIR then
            -- O_DIRECTORY refused it before any open (a FIFO too); O_NOFOLLOW
            -- says ENOTDIR for a symlink as well: lstat only to name it
            local what = lstat(dir, st) and type_names[kind(st)] or "not a directory"
            return nil, "run directory " .. dir .. " is " .. what
        end
        return nil, "cannot open run directory " .. dir .. " (errno " .. e .. ")"
    end
    local bad
    if C.nffi_sys_statx(dfd, "", AT_EMPTY_PATH, STATX_BASIC, st) ~= 0 then
        bad = "cannot stat run directory " .. dir .. " (errno " .. ffi_errno() .. ")"
    else
        bad = check_dir(st, dir, uid)
    end
    if bad then
        C.nffi_sys_close(dfd)
        return nil, bad
    end
    return dfd
end

-- Inside the open run dir: check the entry, open it without blocking or
-- following, check the descriptor, read it whole. Returns text | nil, reason.
local function read_in(dfd, name, uid)
    if C.nffi_sys_statx(dfd, name, AT_SYMLINK_NOFOLLOW, STATX_BASIC, st) ~= 0 then
        return nil    -- gone meanwhile
    end
    local bad = check_file(st, uid)
    if bad then
        return nil, bad
    end
    local fd = C.nffi_sys_openat(dfd, name, O_FILE)
    if fd < 0 then
        local e = ffi_errno()
        if e == ENOENT then
            return nil
        end
        return nil, e == ELOOP and "attach file is a symlink"
                    or "cannot open attach file (errno " .. e .. ")"
    end
    if C.nffi_sys_statx(fd, "", AT_EMPTY_PATH, STATX_BASIC, st2) ~= 0 then
        bad = "cannot stat attach file (errno " .. ffi_errno() .. ")"
    else
        bad = check_file(st2, uid)
        if not bad and (st2.ino ~= st.ino or st2.dev_major ~= st.dev_major
                        or st2.dev_minor ~= st.dev_minor) then
            bad = "attach file replaced while being opened"
        end
    end
    local n = -1
    if not bad then
        n = tonumber(C.nffi_sys_read(fd, buf, _M.MAX_BYTES + 1))
        if n < 0 then
            bad = "cannot read attach file (errno " .. ffi_errno() .. ")"
        elseif n > _M.MAX_BYTES then
            bad = "attach file grew past " .. _M.MAX_BYTES .. " bytes"
        end
    end
    C.nffi_sys_close(fd)
    if bad then
        return nil, bad
    end
    return ffi_string(buf, n)
end

-- The attach file's text if it passes every check; nil when there is none;
-- nil, reason when it (or its run dir) is refused.
function _M.read(dir, name, uid)
    local dfd, err = open_dir(dir, uid)
    if not dfd then
        return nil, err
    end
    local text, why = read_in(dfd, name, uid)
    C.nffi_sys_close(dfd)
    return text, why
end

return _M
