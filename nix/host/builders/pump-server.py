# distcc's include server (pump mode), started by split.sh on the owner of a split build.
#
# Debian 12's distcc-pump 3.4 ships a C extension built without PY_SSIZE_T_CLEAN: on its
# Python 3.11 the functions that take a byte string (OsPathExists, OsPathIsFile,
# CompressLzo1xAlloc) raise SystemError, the include server gives up on every file and distcc
# preprocesses everything here after all. This replaces only the functions that fail, with the
# standard library and python3-lzo (raw LZO1X-1, what distccd decompresses), then runs the
# include server unchanged. Exit status 3: pump mode cannot work here (split.sh then uses
# plain mode).
#
# The compression is replaced even where the extension works: the include server reads each
# file as Latin-1 text and hands that text to it, which would encode it as UTF-8, so every
# non-ASCII byte of a source file would reach the helper as two (the kernel's mm/vmscan.c
# has a UTF-8 comma in a string: the objects differed). Encoding the text back to Latin-1
# gives the file's bytes unchanged.
#
# The check of --stat_reset_triggers is replaced too: the original clears every cache for the
# first changed path it finds and returns, so the 49 generated headers a kernel build creates
# cost 49 clears on 49 consecutive requests, each analysing every header again from nothing
# (a third of the owner's CPU for the first 30 s of the compile, with the helpers waiting).
# This one clears once for all the changes seen since the last request, which covers them as
# well, and forgets paths that are gone (the original cleared on every request after one).
import glob
import os
import runpy
import sys

SERVER_DIR = "/usr/lib/python3/dist-packages/include_server"
sys.path.insert(0, SERVER_DIR)

try:
    import distcc_pump_c_extensions as ext
except ImportError as e:
    print(f"pump-server: no include server here ({e})", file=sys.stderr)
    sys.exit(3)


def broken(call):
    try:
        call()
        return False
    except SystemError:
        return True


if broken(lambda: ext.OsPathExists("/")):
    ext.OsPathExists = os.path.exists
if broken(lambda: ext.OsPathIsFile("/")):
    ext.OsPathIsFile = os.path.isfile
try:
    import lzo
except ImportError:
    print("pump-server: the include server cannot compress (python3-lzo is missing)", file=sys.stderr)
    sys.exit(3)


def compress(text):
    data = text.encode("latin-1") if isinstance(text, str) else bytes(text)
    return lzo.compress(data, 1, False)


ext.CompressLzo1xAlloc = compress

import basics  # noqa: E402 (after the extension's repair: it imports the extension)
import include_analyzer  # noqa: E402


def do_stat_reset_triggers(self):
    changed = False
    for glob_expr, stamps in self.stat_reset_triggers.items():
        now = {path: basics.Stamp(path) for path in glob.glob(glob_expr)}
        if now != stamps:
            changed = True
            stamps.clear()
            stamps.update(now)
    if changed:
        basics.Debug(basics.DEBUG_WARNING, "A stat reset trigger changed. Clearing caches.")
        self.ClearStatCaches()


include_analyzer.IncludeAnalyzer.DoStatResetTriggers = do_stat_reset_triggers

sys.argv[0] = os.path.join(SERVER_DIR, "include_server.py")
runpy.run_path(sys.argv[0], run_name="__main__")
