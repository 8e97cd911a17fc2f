"""Build logic only: the Cython extensions of fastsio._speedups.

FASTSIO_NO_EXTENSIONS=1 at build time gives a pure-Python install. Otherwise
a failed compile fails the build: a silent fall-back to slow code is worse.
"""
import os

from setuptools import Extension, setup

MODULES = ["eio_codec", "ws_frames", "sio_codec", "fanout", "msgpack_codec", "http_fast"]

ext_modules = []
if os.environ.get("FASTSIO_NO_EXTENSIONS", "") in ("", "0"):
    from Cython.Build import cythonize

    debug = os.environ.get("FASTSIO_DEBUG_BUILD", "") not in ("", "0")
    macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")] if debug else []
    directives = {"language_level": "3", "embedsignature": True}
    if debug:
        directives["linetrace"] = True
    ext_modules = cythonize(
        [
            Extension(
                f"fastsio._speedups.{name}",
                [f"fastsio/_speedups/{name}.pyx"],
                define_macros=macros,
                extra_compile_args=["-O2"],
            )
            for name in MODULES
        ],
        compiler_directives=directives,
        annotate=debug,
    )

setup(ext_modules=ext_modules)
