# ref.cmake - tests of the fp64 references (ref/, ref/ref.h) and the reference benchmark.

# Hand-checked tiny cases for every reference + thread-count invariance.
add_executable(test_ref_tiny ${CMAKE_CURRENT_SOURCE_DIR}/test_ref_tiny.c)
target_link_libraries(test_ref_tiny PRIVATE kbref)
add_test(NAME ref_tiny COMMAND test_ref_tiny)
set_tests_properties(ref_tiny PROPERTIES TIMEOUT 60)

# The references against independent numpy float64 implementations (ml_dtypes for fp8).
add_test(NAME ref_numpy COMMAND ${KB_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/oracle/test_ref_numpy.py)
set_tests_properties(ref_numpy PROPERTIES ENVIRONMENT "KB_REF_LIB=$<TARGET_FILE:kbref_py>" TIMEOUT 120)

# How fast the GEMM reference is (3584x512x3584 at 1 and all threads) and whether its
# bits depend on the thread count: a tool, not a test (it takes seconds).
add_executable(ref_bench ${CMAKE_SOURCE_DIR}/tools/ref_bench.c)
target_link_libraries(ref_bench PRIVATE kbref)
