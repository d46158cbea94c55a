# Shared helpers for prefopt targets.
include(GNUInstallDirs)
set(PREFOPT_WARN -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare)

# prefopt_library(NAME SOURCES ... DEPS ... [TORCH])
# TORCH: the library uses libtorch and gets the precompiled ATen header.
function(prefopt_library name)
  cmake_parse_arguments(A "TORCH" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${A_SOURCES})
  add_library(prefopt::${name} ALIAS ${name})
  target_include_directories(${name} PUBLIC $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/src>
                                            $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/prefopt>)
  install(TARGETS ${name} EXPORT prefoptTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  set_property(GLOBAL APPEND PROPERTY PREFOPT_LIBRARIES ${name})
  target_compile_options(${name} PRIVATE ${PREFOPT_WARN})
  target_link_libraries(${name} PUBLIC ${A_DEPS})
  if(A_TORCH)
    target_link_libraries(${name} PUBLIC ${TORCH_LIBRARIES})
    target_precompile_headers(${name} REUSE_FROM prefopt_pch)
  endif()
endfunction()

# A tiny target whose only job is to own the precompiled <ATen/ATen.h>.
add_library(prefopt_pch STATIC ${CMAKE_SOURCE_DIR}/cmake/pch_dummy.cpp)
target_link_libraries(prefopt_pch PUBLIC ${TORCH_LIBRARIES})
target_precompile_headers(prefopt_pch PRIVATE <ATen/ATen.h> <vector> <string> <map> <memory>)

# preinit object: must be linked into every executable (sets OpenBLAS core,
# flush-to-zero before any shared library constructor runs). See src/core/cpu.h.
# Installed too: a consumer links prefopt::prefopt, which carries it.
add_library(prefopt_preinit OBJECT ${CMAKE_SOURCE_DIR}/src/core/preinit.cpp)
target_include_directories(prefopt_preinit PRIVATE ${CMAKE_SOURCE_DIR}/src)
if(PREFOPT_SANITIZE)  # the sanitizers' defaults (suppressions for libtorch's leaks), docs/fuzzing.md
  target_sources(prefopt_preinit PRIVATE ${CMAKE_SOURCE_DIR}/cmake/sanitizer_defaults.cpp)
endif()
install(TARGETS prefopt_preinit EXPORT prefoptTargets OBJECTS DESTINATION ${CMAKE_INSTALL_LIBDIR}/prefopt)

# prefopt_test(NAME SOURCES ... DEPS ... LABELS ... [TORCH])
function(prefopt_test name)
  cmake_parse_arguments(A "TORCH" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${A_SOURCES} $<TARGET_OBJECTS:prefopt_preinit>)
  target_link_libraries(${name} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main prefopt_core)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_compile_options(${name} PRIVATE ${PREFOPT_WARN})
  target_compile_definitions(${name} PRIVATE PREFOPT_SHARED_DATA="${PREFOPT_SHARED_DATA}"
                             PREFOPT_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
                             PREFOPT_BINARY_DIR="${CMAKE_BINARY_DIR}"
                             PREFOPT_EXE="$<TARGET_FILE:prefopt>")
  # Every test may run the program: it is built first, and a test that needs it fails when it is missing.
  add_dependencies(${name} prefopt)
  if(A_TORCH)
    target_link_libraries(${name} PRIVATE ${TORCH_LIBRARIES})
    target_precompile_headers(${name} REUSE_FROM prefopt_pch)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  if(NOT A_LABELS)
    set(A_LABELS unit)
  endif()
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 600)
  endif()
  if(PREFOPT_SANITIZE)  # sanitized code runs several times slower (docs/fuzzing.md)
    math(EXPR A_TIMEOUT "${A_TIMEOUT} * 4")
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${A_LABELS}" TIMEOUT ${A_TIMEOUT}
                       WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
endfunction()

# After every floor is added: the umbrella target, the headers and the CMake
# package (find_package(prefopt) -> prefopt::prefopt) for `cmake --install`.
function(prefopt_install_package)
  get_property(libs GLOBAL PROPERTY PREFOPT_LIBRARIES)
  add_library(prefopt_all INTERFACE)
  set_target_properties(prefopt_all PROPERTIES EXPORT_NAME prefopt)
  target_link_libraries(prefopt_all INTERFACE ${libs} prefopt_preinit)
  if(PREFOPT_SANITIZE)  # a consumer of sanitized static libraries links the sanitizer runtime too
    target_link_options(prefopt_all INTERFACE -fsanitize=${PREFOPT_SANITIZE})
  endif()
  add_library(prefopt::prefopt ALIAS prefopt_all)
  install(TARGETS prefopt_all EXPORT prefoptTargets)
  install(DIRECTORY ${CMAKE_SOURCE_DIR}/src/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/prefopt
          FILES_MATCHING PATTERN "*.h")
  install(EXPORT prefoptTargets NAMESPACE prefopt:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/prefopt)
  include(CMakePackageConfigHelpers)
  configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/prefoptConfig.cmake.in
                                ${CMAKE_BINARY_DIR}/prefoptConfig.cmake
                                INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/prefopt)
  write_basic_package_version_file(${CMAKE_BINARY_DIR}/prefoptConfigVersion.cmake VERSION ${PROJECT_VERSION}
                                   COMPATIBILITY SameMajorVersion)
  install(FILES ${CMAKE_BINARY_DIR}/prefoptConfig.cmake ${CMAKE_BINARY_DIR}/prefoptConfigVersion.cmake
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/prefopt)
endfunction()
