# siptls — which wolfSSL the library links (docs/security.md "The wolfSSL we build").
#
#   -DSIPTLS_WOLFSSL=bundled  (default) Debian 13's source package wolfssl
#                             ${SIPTLS_WOLFSSL_DEBIAN_VERSION}, fetched with
#                             apt-get source and built static + PIC with the
#                             options of cmake/wolfssl/options, at configure
#                             time, once per checkout (cached in SIPTLS_DEPS_DIR)
#   -DSIPTLS_WOLFSSL=system   the distribution's libwolfssl-dev (pkg-config)
#   -DSIPTLS_WOLFSSL_SOURCE=DIR  bundled, built from this unpacked source tree
#                             instead of downloading (offline builds)
#
# Defines:
#   siptls_wolfssl             an INTERFACE target: wolfSSL's include folder and
#                              library, whichever was chosen
#   SIPTLS_WOLFSSL_BUNDLED     ON when bundled
#   SIPTLS_WOLFSSL_LIBRARY     bundled: the path of libwolfssl.a
#   SIPTLS_WOLFSSL_INCLUDE_DIR the folder holding wolfssl/options.h (cached,
#                              INTERNAL: tests read it from CMakeCache.txt)

# The pinned version. To move to a newer one: docs/security.md.
set(SIPTLS_WOLFSSL_DEBIAN_VERSION "5.7.2-0.1+deb13u2")

set(SIPTLS_WOLFSSL "bundled" CACHE STRING "wolfSSL to link: bundled (Debian 13 source, built here) or system (libwolfssl-dev)")
set_property(CACHE SIPTLS_WOLFSSL PROPERTY STRINGS bundled system)
set(SIPTLS_WOLFSSL_SOURCE "" CACHE PATH "bundled: build wolfSSL from this unpacked source tree (no download)")

# Where the bundled build is cached: shared by every build folder of a
# checkout (build/coverage, build/asan, build/fuzz, build/release ...).
if(DEFINED ENV{SIPTLS_BUILD_ROOT} AND NOT "$ENV{SIPTLS_BUILD_ROOT}" STREQUAL "")
  set(_siptls_deps_default "$ENV{SIPTLS_BUILD_ROOT}/deps")
else()
  file(RELATIVE_PATH _siptls_rel "${CMAKE_SOURCE_DIR}/build" "${CMAKE_BINARY_DIR}")
  if(_siptls_rel MATCHES "^\\.\\." OR IS_ABSOLUTE "${_siptls_rel}")
    set(_siptls_deps_default "${CMAKE_BINARY_DIR}/deps")
  else()
    set(_siptls_deps_default "${CMAKE_SOURCE_DIR}/build/deps")
  endif()
endif()
set(SIPTLS_DEPS_DIR "${_siptls_deps_default}" CACHE PATH "bundled wolfSSL: download and build cache (shared between build folders)")
set(SIPTLS_WOLFSSL_CC "cc" CACHE STRING "bundled wolfSSL: the compiler that builds it (one uninstrumented build serves every flavour)")
set(SIPTLS_DEBIAN_MIRROR "http://deb.debian.org/debian" CACHE STRING "bundled wolfSSL: the Debian archive apt-get source uses")

add_library(siptls_wolfssl INTERFACE)

if(SIPTLS_WOLFSSL STREQUAL "bundled")
  set(SIPTLS_WOLFSSL_BUNDLED ON)
  set(_siptls_bundle ${CMAKE_SOURCE_DIR}/cmake/wolfssl/bundle.sh)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
    ${_siptls_bundle} ${CMAKE_SOURCE_DIR}/cmake/wolfssl/options
    ${CMAKE_SOURCE_DIR}/cmake/wolfssl/siptls_wolfssl_shim.c)
  set(_siptls_args --deps ${SIPTLS_DEPS_DIR} --cc ${SIPTLS_WOLFSSL_CC} --mirror ${SIPTLS_DEBIAN_MIRROR})
  if(SIPTLS_WOLFSSL_SOURCE)
    list(APPEND _siptls_args --source ${SIPTLS_WOLFSSL_SOURCE})
  else()
    list(APPEND _siptls_args --version ${SIPTLS_WOLFSSL_DEBIAN_VERSION})
  endif()
  if(DEFINED ENV{JOBS})
    list(APPEND _siptls_args --jobs $ENV{JOBS})
  endif()
  execute_process(COMMAND bash ${_siptls_bundle} ${_siptls_args}
    RESULT_VARIABLE _siptls_rc OUTPUT_VARIABLE _siptls_out OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT _siptls_rc EQUAL 0)
    message(FATAL_ERROR "bundled wolfSSL: cmake/wolfssl/bundle.sh failed (see above). "
      "Offline? -DSIPTLS_WOLFSSL_SOURCE=DIR builds from an unpacked tree; "
      "-DSIPTLS_WOLFSSL=system links Debian's libwolfssl-dev.")
  endif()
  string(REGEX REPLACE ".*\n" "" _siptls_prefix "${_siptls_out}")
  set(_siptls_wolfssl_inc ${_siptls_prefix}/include)
  set(SIPTLS_WOLFSSL_LIBRARY ${_siptls_prefix}/lib/libwolfssl.a)
  set(_siptls_shim ${_siptls_prefix}/lib/libsiptls_wolfshim.a)
  if(NOT EXISTS ${SIPTLS_WOLFSSL_LIBRARY} OR NOT EXISTS ${_siptls_shim})
    message(FATAL_ERROR "bundled wolfSSL: ${SIPTLS_WOLFSSL_LIBRARY} or ${_siptls_shim} missing")
  endif()
  # cmake/wolfssl/siptls_wolfssl_shim.c, built with wolfSSL (bundle.sh):
  # linked before libwolfssl.a, merged into libsiptls.a like it.
  set(SIPTLS_WOLFSSL_LIBRARY ${_siptls_shim} ${SIPTLS_WOLFSSL_LIBRARY})
  target_compile_definitions(siptls_wolfssl INTERFACE SIPTLS_WOLFSSL_SHIM=1)
  # Before any system include folder, so that a libwolfssl-dev installed
  # beside it is never picked up by mistake.
  target_include_directories(siptls_wolfssl BEFORE INTERFACE ${_siptls_wolfssl_inc})
  target_link_libraries(siptls_wolfssl INTERFACE ${SIPTLS_WOLFSSL_LIBRARY} Threads::Threads m)
  if(SIPTLS_WOLFSSL_SOURCE)
    message(STATUS "wolfSSL: bundled, built from ${SIPTLS_WOLFSSL_SOURCE}: ${_siptls_prefix}")
  else()
    message(STATUS "wolfSSL: bundled, Debian ${SIPTLS_WOLFSSL_DEBIAN_VERSION}: ${_siptls_prefix}")
  endif()
elseif(SIPTLS_WOLFSSL STREQUAL "system")
  set(SIPTLS_WOLFSSL_BUNDLED OFF)
  pkg_check_modules(WOLFSSL REQUIRED IMPORTED_TARGET wolfssl)
  find_path(SIPTLS_SYSTEM_WOLFSSL_INCLUDE_DIR wolfssl/options.h HINTS ${WOLFSSL_INCLUDE_DIRS} REQUIRED)
  set(_siptls_wolfssl_inc ${SIPTLS_SYSTEM_WOLFSSL_INCLUDE_DIR})
  target_link_libraries(siptls_wolfssl INTERFACE PkgConfig::WOLFSSL)
  message(STATUS "wolfSSL: system (libwolfssl-dev ${WOLFSSL_VERSION})")
else()
  message(FATAL_ERROR "SIPTLS_WOLFSSL must be bundled or system, not '${SIPTLS_WOLFSSL}'")
endif()
# For tests that look at the linked wolfSSL's options.h (CMakeCache.txt).
set(SIPTLS_WOLFSSL_INCLUDE_DIR ${_siptls_wolfssl_inc} CACHE INTERNAL "the folder holding the linked wolfssl/options.h")
