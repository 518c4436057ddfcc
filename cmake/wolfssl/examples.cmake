# siptls — wolfSSL's own example client and server (examples/client/client.c
# and examples/server/server.c of the very Debian source tree the bundled
# libwolfssl.a was built from), compiled against that installed library for
# the interop test tests/interop/test_dtls_wolfssl.sh. Included by
# tests/CMakeLists.txt for the bundled build only (why: tests/CMakeLists.txt
# and docs/dtls.md "Interop").
#
# wolfSSL itself is not built again: bundle.sh configures it with
# --disable-examples (cmake/wolfssl/options); the two files are compiled here
# with wolfSSL's compiler (SIPTLS_WOLFSSL_CC), outside siptls's warning,
# coverage and sanitizer flags (third-party code, not ours to measure), and
# linked with the static library as they are (wolfSSL's -fvisibility=hidden
# only limits what a shared object exports; a static archive links them).
#
# Defines the target wolfssl_examples (part of `all`, so scripts/test.sh and
# .ci/run build it) producing, in ${SIPTLS_WOLFSSL_EXAMPLES_DIR}:
#   wolfssl-client, wolfssl-server   the two programs
#   certs -> <wolfSSL source>/certs  the examples look for ./certs/dh2048.pem
#                                    to find "the wolfSSL home" and refuse to
#                                    start without it; run them from here

if(SIPTLS_WOLFSSL_SOURCE)
  set(_wex_src ${SIPTLS_WOLFSSL_SOURCE})
else()
  # where bundle.sh unpacks the source (cmake/wolfssl/bundle.sh, "the source tree")
  file(GLOB _wex_src LIST_DIRECTORIES true
    ${SIPTLS_DEPS_DIR}/src/wolfssl_${SIPTLS_WOLFSSL_DEBIAN_VERSION}/wolfssl-*)
  list(GET _wex_src 0 _wex_src)
endif()
foreach(_wex_f examples/client/client.c examples/client/client.h
    examples/server/server.c examples/server/server.h certs/dh2048.pem)
  if(NOT EXISTS ${_wex_src}/${_wex_f})
    message(FATAL_ERROR "wolfSSL examples: ${_wex_f} not found in the wolfSSL source "
      "'${_wex_src}' (the bundled build unpacks it there)")
  endif()
endforeach()
if(NOT EXISTS ${SIPTLS_WOLFSSL_INCLUDE_DIR}/wolfssl/test.h)
  message(FATAL_ERROR "wolfSSL examples: no wolfssl/test.h in ${SIPTLS_WOLFSSL_INCLUDE_DIR}")
endif()

set(SIPTLS_WOLFSSL_EXAMPLES_DIR ${CMAKE_CURRENT_BINARY_DIR}/wolfssl-examples)
set(_wex_dir ${SIPTLS_WOLFSSL_EXAMPLES_DIR})
file(MAKE_DIRECTORY ${_wex_dir})
file(CREATE_LINK ${_wex_src}/certs ${_wex_dir}/certs SYMBOLIC)

set(_wex_outputs)
foreach(_wex_side client server)
  # "examples/<side>/<side>.h" is included by that path: a private include
  # folder holds a copy, so that the source tree's own wolfssl/ headers never
  # shadow the installed ones
  configure_file(${_wex_src}/examples/${_wex_side}/${_wex_side}.h
    ${_wex_dir}/include/examples/${_wex_side}/${_wex_side}.h COPYONLY)
  add_custom_command(OUTPUT ${_wex_dir}/wolfssl-${_wex_side}
    COMMAND ${SIPTLS_WOLFSSL_CC} -O1 -g -w -pthread
      -I${_wex_dir}/include -I${SIPTLS_WOLFSSL_INCLUDE_DIR}
      ${_wex_src}/examples/${_wex_side}/${_wex_side}.c
      ${SIPTLS_WOLFSSL_LIBRARY} -lm -o ${_wex_dir}/wolfssl-${_wex_side}
    DEPENDS ${_wex_src}/examples/${_wex_side}/${_wex_side}.c
      ${_wex_dir}/include/examples/${_wex_side}/${_wex_side}.h
      ${SIPTLS_WOLFSSL_LIBRARY} ${SIPTLS_WOLFSSL_INCLUDE_DIR}/wolfssl/options.h
      ${SIPTLS_WOLFSSL_INCLUDE_DIR}/wolfssl/test.h
    COMMENT "wolfSSL example ${_wex_side} (bundled wolfSSL's own source) for the interop test"
    VERBATIM)
  list(APPEND _wex_outputs ${_wex_dir}/wolfssl-${_wex_side})
endforeach()
add_custom_target(wolfssl_examples ALL DEPENDS ${_wex_outputs})
