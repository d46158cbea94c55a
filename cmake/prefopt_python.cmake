# The Python module (python/, `import prefopt`): found before the floors are
# added, because the module links their static libraries into a shared object,
# so every target is then compiled as position-independent code
# (-fno-semantic-interposition keeps calls inside a library direct, as in an executable).
# Debian's /usr/bin/python3 is the interpreter (and its headers) unless
# -DPYTHON_EXECUTABLE=... says otherwise: its python3-torch uses the same
# libtorch as prefopt. Without the interpreter's headers or pybind11 the
# module is left out (PREFOPT_PYTHON defaults to OFF).
if(NOT DEFINED PYTHON_EXECUTABLE AND EXISTS /usr/bin/python3)
  set(PYTHON_EXECUTABLE /usr/bin/python3 CACHE FILEPATH "Python interpreter of the prefopt module")
endif()
if(DEFINED PYTHON_EXECUTABLE)
  set(Python3_EXECUTABLE ${PYTHON_EXECUTABLE})
endif()
find_package(Python3 QUIET COMPONENTS Interpreter Development.Module)
if(Python3_FOUND)
  if(NOT DEFINED PYTHON_EXECUTABLE)
    set(PYTHON_EXECUTABLE ${Python3_EXECUTABLE} CACHE FILEPATH "Python interpreter of the prefopt module")
  endif()
  find_package(pybind11 CONFIG QUIET)
endif()
option(PREFOPT_PYTHON "Build the Python module build/python/prefopt*.so (pybind11)" ${pybind11_FOUND})
if(PREFOPT_PYTHON)
  if(NOT pybind11_FOUND)
    message(FATAL_ERROR "PREFOPT_PYTHON is ON but pybind11 or the Python headers were not found: "
                        "apt-get install pybind11-dev python3-dev, or configure with -DPREFOPT_PYTHON=OFF")
  endif()
  add_compile_options(-fPIC -fno-semantic-interposition)
  message(STATUS "prefopt: Python module for ${PYTHON_EXECUTABLE} (pybind11 ${pybind11_VERSION})")
endif()
