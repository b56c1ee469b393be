# The harness catches what it exists to catch (test-only broken cpu variants),
# and the correct cpu implementation passes at every smoke shape.
add_executable(test_metrics ${CMAKE_CURRENT_SOURCE_DIR}/test_metrics.c)
target_link_libraries(test_metrics PRIVATE kbcore)
add_test(NAME harness_metrics COMMAND test_metrics)
add_test(NAME harness_catches_broken_kernels
         COMMAND ${KB_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_harness.py $<TARGET_FILE:kbench>)
set_tests_properties(harness_catches_broken_kernels PROPERTIES TIMEOUT 600)
add_test(NAME harness_cpu_smoke_all_pass
         COMMAND $<TARGET_FILE:kbench> --shapes smoke --backend cpu --reps 3 --max-time 0.05 --quiet)
set_tests_properties(harness_cpu_smoke_all_pass PROPERTIES TIMEOUT 600)
# Three ops chained on device buffers (views of one allocation), one enqueue, one wait,
# against the fp64 chain: on cpu, on vulkan when present, on cuda+cublaslt with a GPU.
add_executable(test_chain ${CMAKE_CURRENT_SOURCE_DIR}/test_chain.c)
target_link_libraries(test_chain PRIVATE kbcore)
add_test(NAME harness_chain COMMAND test_chain)
set_tests_properties(harness_chain PROPERTIES TIMEOUT 300)
# kbench forward: synthetic:tiny on every recipe (cpu, and vulkan where a device is),
# the planted bugs named at their layer, --repeat determinism, GGUF files from the gguf
# package's writer, and every corruption class of a GGUF file exiting 2.
add_test(NAME forward_tiny_and_gguf COMMAND ${KB_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_forward.py $<TARGET_FILE:kbench>)
set_tests_properties(forward_tiny_and_gguf PROPERTIES TIMEOUT 900)
# kbench falsify: stages A-E give a verdict; each planted bug confirmed by its stage.
add_test(NAME falsify_stages COMMAND ${KB_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_falsify.py $<TARGET_FILE:kbench>)
set_tests_properties(falsify_stages PROPERTIES TIMEOUT 900)
