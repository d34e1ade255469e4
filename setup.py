"""Installs the ``libs`` package and, when a C++ compiler works, the optional NMS extension.

``pip install -e . --no-build-isolation`` always succeeds: if the extension ``libs.ops._C``
cannot be compiled (no compiler, a broken toolchain, ``ACTIONFORMER_NO_EXT=1``, or no
``torch.utils.cpp_extension``), the build prints a warning and the exact pure-PyTorch NMS in
``libs/ops/nms_torch.py`` is used instead. ``python -m libs.collect_env`` reports which
backend is active.
"""
import os
import sys

from setuptools import find_packages, setup

EXT_NAME = "libs.ops._C"
EXT_SOURCES = ["libs/ops/csrc/nms_1d.cpp"]


def _warn(msg):
    print(f"WARNING: {msg}", file=sys.stderr)


def _extension_setup():
    """Returns (ext_modules, cmdclass); both empty when the extension is not to be built."""
    if os.environ.get("ACTIONFORMER_NO_EXT", "0") == "1":
        _warn("ACTIONFORMER_NO_EXT=1: not building the C++ NMS; the PyTorch NMS will be used.")
        return [], {}
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except Exception as err:  # torch missing or broken: the package still installs
        _warn(f"torch.utils.cpp_extension unavailable ({err}); not building the C++ NMS.")
        return [], {}

    class OptionalBuildExtension(BuildExtension):
        """Turns any failure to build the optional extension into a warning.

        setuptools' ``optional=True`` only catches distutils compile errors; torch's build
        path can raise plain exceptions (e.g. a compiler check or ninja failing).
        """

        def run(self):
            try:
                super().run()
            except Exception as err:
                _warn(f"could not build {EXT_NAME} ({err}); the PyTorch NMS will be used.")

        def build_extension(self, ext):
            try:
                super().build_extension(ext)
            except Exception as err:
                _warn(f"could not build {ext.name} ({err}); the PyTorch NMS will be used.")

    ext = CppExtension(EXT_NAME, EXT_SOURCES, extra_compile_args=["-O3"], optional=True)
    return [ext], {"build_ext": OptionalBuildExtension.with_options(use_ninja=False)}


ext_modules, cmdclass = _extension_setup()

setup(
    name="actionformer",
    version="1.0.0",
    description="ActionFormer (ECCV 2022) temporal action localization, re-implemented",
    packages=find_packages(include=["libs", "libs.*"]),
    package_data={"libs.ops": ["csrc/*.cpp"]},
    python_requires=">=3.9",
    install_requires=["torch", "numpy", "pyyaml", "pandas", "h5py", "tensorboard", "av>=18"],
    extras_require={"vis": ["matplotlib"], "flow": ["opencv-contrib-python-headless"],
                    "test": ["pytest"]},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
