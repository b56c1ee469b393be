# tests/cuda.cmake - tests of the cuda backend that need no GPU (CI has none).
# Only when the backend was built (the CUDA toolkit was found at configure time).
if(TARGET kbcuda)
  # Every kernel variant x every -D set, NVRTC, sm_80/sm_89/sm_90: no error, no warning.
  add_executable(test_nvrtc_compile ${CMAKE_CURRENT_SOURCE_DIR}/test_nvrtc_compile.c)
  target_link_libraries(test_nvrtc_compile PRIVATE kbcuda Threads::Threads)
  add_test(NAME cuda_nvrtc_compile COMMAND test_nvrtc_compile)
  set_tests_properties(cuda_nvrtc_compile PROPERTIES TIMEOUT 120)

  # Host logic: cache key, include discovery, variants, launch geometry, driver loader.
  add_executable(test_cuda_host ${CMAKE_CURRENT_SOURCE_DIR}/test_cuda_host.c)
  target_link_libraries(test_cuda_host PRIVATE kbcuda)
  find_file(KBCU_STUB_LIBCUDA libcuda.so PATHS ${CUDAToolkit_LIBRARY_DIR}/stubs NO_DEFAULT_PATH)
  if(KBCU_STUB_LIBCUDA)
    target_compile_definitions(test_cuda_host PRIVATE KB_CUDA_STUB="${KBCU_STUB_LIBCUDA}")
  endif()
  add_test(NAME cuda_host COMMAND test_cuda_host)
  set_tests_properties(cuda_host PROPERTIES TIMEOUT 60)
  if(KBCU_STUB_LIBCUDA)
    # The worker process and its socket protocol, end to end, on the stub libcuda.
    add_test(NAME cuda_worker_stub COMMAND test_cuda_host stub)
    set_tests_properties(cuda_worker_stub PROPERTIES TIMEOUT 60 ENVIRONMENT
      "KB_CUDA_LIBCUDA=${KBCU_STUB_LIBCUDA};KB_CUDA_WORKER=$<TARGET_FILE:kbcuda_worker>")
    add_test(NAME cuda_worker_missing COMMAND test_cuda_host noworker)
    set_tests_properties(cuda_worker_missing PROPERTIES TIMEOUT 60 ENVIRONMENT
      "KB_CUDA_LIBCUDA=${KBCU_STUB_LIBCUDA};KB_CUDA_WORKER=${CMAKE_CURRENT_BINARY_DIR}/no-such-worker")
  endif()
endif()
