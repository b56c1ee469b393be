# tests/cublaslt.cmake - tests of the cublaslt backend (kernels/cuda/backend_cublaslt.c).
# Only when the backend was built (the CUDA toolkit was found at configure time).
if(TARGET kb_cublaslt)
  # Host-only logic: enum names, identity formatting, variant names, scale buffer
  # sizes and layouts, the checks with their exact messages. No GPU needed.
  add_executable(test_cublaslt_host ${CMAKE_CURRENT_SOURCE_DIR}/test_cublaslt_host.c)
  target_link_libraries(test_cublaslt_host PRIVATE kb_cublaslt_host)
  add_test(NAME cublaslt_host COMMAND test_cublaslt_host)

  # The backend itself: without a GPU probe() is KB_NOT_SUPPORTED with a reason
  # (the CI path); with one, every variant of small cases is checked against fp64.
  add_executable(test_cublaslt_probe ${CMAKE_CURRENT_SOURCE_DIR}/test_cublaslt_host.c)
  target_compile_definitions(test_cublaslt_probe PRIVATE KBLT_TEST_BACKEND=1)
  target_link_libraries(test_cublaslt_probe PRIVATE kb_cublaslt)
  add_test(NAME cublaslt_probe COMMAND test_cublaslt_probe)
  set_tests_properties(cublaslt_probe PROPERTIES TIMEOUT 300)

  # kbench itself lists cublaslt and, without a GPU, says why it is unavailable.
  add_test(NAME cublaslt_list_backends COMMAND $<TARGET_FILE:kbench> --list-backends)
  set_tests_properties(cublaslt_list_backends PROPERTIES
    PASS_REGULAR_EXPRESSION "cublaslt[^\n]*(CUDA|NVIDIA|sm_)")
endif()
