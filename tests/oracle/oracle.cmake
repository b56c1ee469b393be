# tests/oracle/oracle.cmake - kb_oracle_test(NAME SCRIPT [TIMEOUT s]): a Python oracle
# test, run twice: NAME with numpy's SIMD dispatch as numpy chooses it, and
# NAME_simd_limited with every dispatched SIMD target turned off
# (oracle/run_simd_limited.py). Their bounds are derived to hold for both.
#
# The tests load the references through $<TARGET_FILE:kbref_py> (KB_REF_LIB). In a
# build with AddressSanitizer (-fsanitize=address in CMAKE_C_FLAGS, .ci/run's
# build-asan) that library needs the ASan runtime loaded first: python3 itself is not
# instrumented, so the runtime is preloaded (LD_PRELOAD), and leak detection is off
# for these processes because CPython deliberately leaves its own objects allocated
# at exit, which LeakSanitizer would report as leaks of the interpreter, not ours.
# UBSan's runtime comes in as the library's own dependency.
include_guard(GLOBAL)
set(KB_ORACLE_DIR ${CMAKE_CURRENT_LIST_DIR})

set(KB_ORACLE_ENV "KB_REF_LIB=$<TARGET_FILE:kbref_py>")
if(CMAKE_C_FLAGS MATCHES "-fsanitize=[^ ]*address")
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                  OUTPUT_VARIABLE KB_LIBASAN OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT EXISTS "${KB_LIBASAN}")
    message(FATAL_ERROR "ASan build: '${CMAKE_C_COMPILER} -print-file-name=libasan.so' gave no library "
                        "('${KB_LIBASAN}'); the Python oracle tests need it preloaded")
  endif()
  list(APPEND KB_ORACLE_ENV "LD_PRELOAD=${KB_LIBASAN}" "ASAN_OPTIONS=detect_leaks=0")
endif()

function(kb_oracle_test name script)
  cmake_parse_arguments(ARG "" "TIMEOUT" "" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  add_test(NAME ${name} COMMAND ${KB_PYTHON} ${script})
  add_test(NAME ${name}_simd_limited
           COMMAND ${KB_PYTHON} ${KB_ORACLE_DIR}/run_simd_limited.py ${script})
  set_tests_properties(${name} ${name}_simd_limited PROPERTIES
                       ENVIRONMENT "${KB_ORACLE_ENV}" TIMEOUT ${ARG_TIMEOUT} LABELS oracle)
endfunction()
