"""Build numpush._core against libnumpush.

Where the library comes from, in order:

1. An in-tree build: NUMPUSH_BUILDDIR (the configured build tree, holding
   .libs/libnumpush.so) and NUMPUSH_SRCDIR (the source tree, holding
   include/numpush/numpush.h; default: two levels above this file).  The
   extension is linked against the shared library with an rpath to
   $NUMPUSH_BUILDDIR/.libs, so it runs without LD_LIBRARY_PATH.  (libtool
   builds the objects of libnumpush.a without -fPIC, so the static library
   cannot go into a Python extension.)
2. pkg-config numpush (an installed numpush; PKG_CONFIG_PATH as usual), with
   an rpath to its libdir when that is not a system directory.
"""
import os
import shlex
import subprocess

from setuptools import Extension, setup

here = os.path.dirname(os.path.abspath(__file__))


def _pkg_config(*args):
    try:
        out = subprocess.run(["pkg-config", *args, "numpush"], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return shlex.split(out)


def _library():
    builddir = os.environ.get("NUMPUSH_BUILDDIR")
    if builddir:
        builddir = os.path.abspath(builddir)
        srcdir = os.path.abspath(os.environ.get("NUMPUSH_SRCDIR")
                                 or os.path.join(here, "..", ".."))
        libdir = os.path.join(builddir, ".libs")
        if not os.path.exists(os.path.join(libdir, "libnumpush.so")):
            raise SystemExit(f"numpush: no libnumpush.so in {libdir}: build numpush first")
        return dict(include_dirs=[os.path.join(srcdir, "include")],
                    library_dirs=[libdir], libraries=["numpush"],
                    runtime_library_dirs=[libdir])
    cflags = _pkg_config("--cflags")
    libs = _pkg_config("--libs")
    if libs is None:
        raise SystemExit("numpush: libnumpush not found: set NUMPUSH_BUILDDIR (and "
                         "NUMPUSH_SRCDIR) to an in-tree build, or make "
                         "'pkg-config numpush' work (PKG_CONFIG_PATH)")
    inc = [f[2:] for f in cflags if f.startswith("-I")]
    libdirs = [f[2:] for f in libs if f.startswith("-L")]
    names = [f[2:] for f in libs if f.startswith("-l")]
    system = {"/usr/lib", "/usr/lib64", "/lib", "/usr/lib/x86_64-linux-gnu"}
    return dict(include_dirs=inc, library_dirs=libdirs, libraries=names,
                runtime_library_dirs=[d for d in libdirs if d not in system])


core = Extension(
    "numpush._core",
    sources=["src/_core.c"],
    extra_compile_args=["-std=gnu11", "-Wall", "-Wno-unused-parameter"],
    **_library(),
)

setup(ext_modules=[core,
                   # numpush.shm's robust locks (np_rwlock, <numpush/shm_lock.h>).
                   Extension("numpush._shm", sources=["src/_shm.c"],
                             extra_compile_args=["-std=gnu11", "-Wall", "-Wno-unused-parameter"],
                             **_library())])
