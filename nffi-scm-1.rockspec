-- The nffi binding, the in-worker agent of nffi-inspect and libnffi, built from
-- a checkout: `luarocks make --tree DIR` (docs/luarocks.md). "scm": the rock is
-- whatever this checkout holds; there is no release to pin a version to yet.
rockspec_format = "3.0"
package = "nffi"
version = "scm-1"

source = {
    -- luarocks make builds the checkout it runs in and never fetches this
    url = "git+file:///nffi-inspect",
}

description = {
    summary = "Nonblocking FFI for stock nginx + lua-nginx-module, and the nffi-inspect agent",
    detailed = [[
The nffi runtime (API-compatible with lua-resty-ffi: ngx.load_ffi,
ngx.load_nonblocking_ffi, require("nffi").load) with libnffi, its example
runtimes, and the dormant in-worker agent that nffi-inspect attaches to.
]],
    homepage = "https://example.invalid/nffi-inspect",
    license = "UNLICENSED",
}

-- LuaJIT (OpenResty's or lua-nginx-module's) speaks Lua 5.1; nothing is fetched
dependencies = {
    "lua == 5.1",
}

build = {
    type = "command",
    -- make reuses native/build when it is up to date with the sources
    build_command = [[make -C native -s]],
    -- Copied rather than listed in build.install: lua/nffi/inspect gains modules
    -- often, and native/examples/*/Makefile runtimes have names only their
    -- Makefiles know. From their build dir: the runtime libraries (*.so) and
    -- the directories of files a runtime reads beside its library (python/),
    -- not the headers and helper programs lying there. libnffi and the
    -- runtimes go to $(LIBDIR)/nffi, where nffi.native looks for them.
    install_command = [[
set -e
mkdir -p "$(LUADIR)" "$(LIBDIR)/nffi/examples"
cp -R lua/nffi "$(LUADIR)/"
cp native/build/libnffi.so native/build/libnffi_noinst.so "$(LIBDIR)/nffi/"
if [ -f native/build/libnffi_ngx.so ]; then cp native/build/libnffi_ngx.so "$(LIBDIR)/nffi/"; fi
cp native/build/examples/*.so "$(LIBDIR)/nffi/examples/"
for d in native/build/examples/*/; do if [ -d "$d" ]; then cp -R "$d" "$(LIBDIR)/nffi/examples/"; fi; done
]],
    copy_directories = {},
}
