# ref.cmake - tests of the fp64 references (ref/, ref/ref.h) and the reference benchmark.

# Hand-checked tiny cases for every reference + thread-count invariance.
add_executable(test_ref_tiny ${CMAKE_CURRENT_SOURCE_DIR}/test_ref_tiny.c)
target_link_libraries(test_ref_tiny PRIVATE kbref)
add_test(NAME ref_tiny COMMAND test_ref_tiny)
set_tests_properties(ref_tiny PROPERTIES TIMEOUT 60)

# The references against independent oracles: numpy float64 (rmsnorm, rope, attention,
# gemm_fp8, matmul with gguf-decoded K-quants, add, bias_add, swiglu), ml_dtypes' FP8
# casts and gguf's decoders (quant_fp8, dequant, embed). Each runs twice, with numpy's
# SIMD dispatch on and off (tests/oracle/oracle.cmake, bounds in the scripts).
include(${CMAKE_CURRENT_LIST_DIR}/oracle/oracle.cmake)
kb_oracle_test(ref_numpy ${CMAKE_CURRENT_SOURCE_DIR}/oracle/test_ref_numpy.py)
kb_oracle_test(ref_quant ${CMAKE_CURRENT_SOURCE_DIR}/oracle/test_ref_quant.py)

# How fast the GEMM reference is (3584x512x3584 at 1 and all threads) and whether its
# bits depend on the thread count: a tool, not a test (it takes seconds).
add_executable(ref_bench ${CMAKE_SOURCE_DIR}/tools/ref_bench.c)
target_link_libraries(ref_bench PRIVATE kbref)
