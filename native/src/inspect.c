/* Helpers for the inspector agent (lua/nffi/inspect/): the attach-file checks. */
#include <sys/stat.h>
#include <errno.h>
#include <unistd.h>
#include "nffi_internal.h"
#include "nffi_inspect.h"

NFFI_EXPORT unsigned nffi_euid(void)
{
    return (unsigned)geteuid();
}

/* FNV-1a over the fields that change when the file is replaced, chmod'ed or chown'ed. */
static uint64_t mix(uint64_t h, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        h ^= (v >> (i * 8)) & 0xff;
        h *= 1099511628211ULL;
    }
    return h;
}

NFFI_EXPORT int nffi_path_check(const char *path, unsigned uid, uint64_t *sig)
{
    struct stat st;
    if (sig != NULL)
        *sig = 0;
    if (path == NULL || lstat(path, &st) != 0)
        return NFFI_PATH_MISSING;
    if (sig != NULL) {
        uint64_t h = 14695981039346656037ULL;
        h = mix(h, (uint64_t)st.st_dev);
        h = mix(h, (uint64_t)st.st_ino);
        h = mix(h, (uint64_t)st.st_mode);
        h = mix(h, (uint64_t)st.st_uid);
        h = mix(h, (uint64_t)st.st_ctim.tv_sec);
        h = mix(h, (uint64_t)st.st_ctim.tv_nsec);
        *sig = h;
    }
    if (S_ISLNK(st.st_mode))
        return NFFI_PATH_SYMLINK;
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
        return NFFI_PATH_TYPE;
    if (st.st_uid != (uid_t)uid)
        return NFFI_PATH_OWNER;
    if ((st.st_mode & 077) != 0)
        return NFFI_PATH_MODE;
    return S_ISDIR(st.st_mode) ? NFFI_PATH_DIR : NFFI_PATH_FILE;
}
