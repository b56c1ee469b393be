# tests/cublaslt.cmake - tests of the cublaslt backend. Only when the CUDA backends were
# built (the CUDA toolkit was found at configure time).
if(TARGET kbcuda_common)
  # Host-only logic: enum names, identity formatting, variant names, scale buffer
  # sizes and layouts, the checks with their exact messages. No GPU needed.
  add_executable(test_cublaslt_host ${CMAKE_CURRENT_SOURCE_DIR}/test_cublaslt_host.c)
  target_link_libraries(test_cublaslt_host PRIVATE kbcuda_common)
  add_test(NAME cublaslt_host COMMAND test_cublaslt_host)

  # The backend itself, through kbench's fronts and the worker: without a GPU probe()
  # is KB_NOT_SUPPORTED with a reason (the CI path); with one, every variant of small
  # cases is checked against fp64, and a chain quant_fp8 (cuda) -> gemm_fp8 (cublaslt)
  # runs on device buffers (enqueued together, then recorded).
  add_executable(test_cublaslt_probe ${CMAKE_CURRENT_SOURCE_DIR}/test_cublaslt_host.c)
  target_compile_definitions(test_cublaslt_probe PRIVATE KBLT_TEST_BACKEND=1)
  target_link_libraries(test_cublaslt_probe PRIVATE kbcore)
  add_dependencies(test_cublaslt_probe kbcuda_worker)
  add_test(NAME cublaslt_probe COMMAND test_cublaslt_probe)
  set_tests_properties(cublaslt_probe PROPERTIES TIMEOUT 600 ENVIRONMENT "KB_CUDA_WORKER=$<TARGET_FILE:kbcuda_worker>")
endif()
