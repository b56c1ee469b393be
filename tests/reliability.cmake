# tests/reliability.cmake - kbench under bad input and interruptions:
#   fuzz_corpus_<target>   every fuzz corpus replayed (tests/fuzz/fuzz.cmake)
#   reliability_*          tests/test_reliability.py: signals mid-run leave complete
#                          CSV/JSON Lines files and exit 128+N; identical output hashes
#                          over five runs; sizes that cannot fit exit 2 with one line;
#                          on a GPU, a killed CUDA worker and a kernel that never ends
#                          cost one row each (exit 77 = skipped where there is no GPU)
include(${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz.cmake)

set(KB_RELIABILITY ${KB_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_reliability.py $<TARGET_FILE:kbench>)
add_test(NAME reliability_signals COMMAND ${KB_RELIABILITY} signals)
add_test(NAME reliability_sizes COMMAND ${KB_RELIABILITY} sizes)
add_test(NAME reliability_determinism_cpu COMMAND ${KB_RELIABILITY} determinism cpu)
add_test(NAME reliability_determinism_vulkan COMMAND ${KB_RELIABILITY} determinism vulkan)
set_tests_properties(reliability_signals reliability_sizes reliability_determinism_cpu reliability_determinism_vulkan
                     PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS reliability)
# GPU only (skipped with the reason elsewhere); on the GPU machine:
#   ctest --test-dir build -R reliability_cuda --output-on-failure
foreach(t cuda_fault cuda_hang cuda_worker_kill)
  add_test(NAME reliability_${t} COMMAND ${KB_RELIABILITY} ${t})
  set_tests_properties(reliability_${t} PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77 LABELS "reliability;gpu")
endforeach()
