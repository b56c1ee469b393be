# tests/fuzz/fuzz.cmake - fuzz targets of kbench's input parsers.
#
# Every target is tests/fuzz/fuzz_<name>.c (LLVMFuzzerTestOneInput) with its seed
# corpus in tests/fuzz/corpus/<name>/; adding one is adding its name to this list
# (gguf: the GGUF reader, from a 2.9 kB file written by the gguf package).
set(KB_FUZZ_TARGETS shape_spec shape_table cli gguf)

# In every build: replay each corpus (seeds, and every input that ever crashed a
# target) through the target without libFuzzer, so a fixed crash stays fixed; in
# the sanitizer build (.ci/run) the replay runs under ASan and UBSan.
foreach(t ${KB_FUZZ_TARGETS})
  add_executable(fuzz_replay_${t} ${CMAKE_CURRENT_LIST_DIR}/replay.c ${CMAKE_CURRENT_LIST_DIR}/fuzz_${t}.c)
  target_link_libraries(fuzz_replay_${t} PRIVATE kbcore)
  target_compile_definitions(fuzz_replay_${t} PRIVATE KB_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  add_test(NAME fuzz_corpus_${t} COMMAND fuzz_replay_${t} ${CMAKE_CURRENT_LIST_DIR}/corpus/${t})
  set_tests_properties(fuzz_corpus_${t} PROPERTIES TIMEOUT 120 LABELS fuzz)
endforeach()

# The libFuzzer binaries themselves: a clang build configured with
#   -DKB_FUZZ=ON -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined ..."
# (tests/fuzz/run_fuzz.sh configures, builds and runs them; .ci/run calls it).
option(KB_FUZZ "Build the libFuzzer targets fuzz_<name> (clang, see tests/fuzz/run_fuzz.sh)" OFF)
if(KB_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "KB_FUZZ needs clang (libFuzzer): configure with CC=clang CXX=clang++")
  endif()
  add_custom_target(fuzz_targets)
  foreach(t ${KB_FUZZ_TARGETS})
    add_executable(fuzz_${t} ${CMAKE_CURRENT_LIST_DIR}/fuzz_${t}.c)
    target_link_libraries(fuzz_${t} PRIVATE kbcore)
    target_compile_definitions(fuzz_${t} PRIVATE KB_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
    add_dependencies(fuzz_targets fuzz_${t})
  endforeach()
endif()
