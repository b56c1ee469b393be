# tests/cuda.cmake - tests of the cuda and cublaslt backends that need no GPU (CI has
# none). Only when the backends were built (the CUDA toolkit was found at configure time).
if(TARGET kbcuda_common)
  # Every module any variant or support step launches, NVRTC, sm_80/sm_89/sm_90: no
  # error, no warning, every entry point present.
  add_executable(test_nvrtc_compile ${CMAKE_CURRENT_SOURCE_DIR}/test_nvrtc_compile.c)
  target_link_libraries(test_nvrtc_compile PRIVATE kbcore Threads::Threads)
  add_test(NAME cuda_nvrtc_compile COMMAND test_nvrtc_compile)
  set_tests_properties(cuda_nvrtc_compile PROPERTIES TIMEOUT 1200)
  # ... and every value of each variant's tunables (--tune), one at a time: a few
  # hundred modules, 2-5 minutes on two cores
  add_test(NAME cuda_nvrtc_compile_tuned COMMAND test_nvrtc_compile --tuned)
  set_tests_properties(cuda_nvrtc_compile_tuned PROPERTIES TIMEOUT 2400)

  # attention decode_v3 as a C model run from its plan against fp64 attention (no GPU).
  add_executable(test_attn_v3_model ${CMAKE_CURRENT_SOURCE_DIR}/test_attn_v3_model.c)
  target_link_libraries(test_attn_v3_model PRIVATE kbcore m)
  add_test(NAME cuda_attn_v3_model COMMAND test_attn_v3_model)
  set_tests_properties(cuda_attn_v3_model PROPERTIES TIMEOUT 300)

  # gemm_fp8 gemv_v4's indexing as a C model run from its plan against ref_gemm_fp8.
  add_executable(test_gemv_v4_model ${CMAKE_CURRENT_SOURCE_DIR}/test_gemv_v4_model.c)
  target_link_libraries(test_gemv_v4_model PRIVATE kbcore m)
  add_test(NAME cuda_gemv_v4_model COMMAND test_gemv_v4_model)
  set_tests_properties(cuda_gemv_v4_model PROPERTIES TIMEOUT 300)

  # TEST ONLY: a CUDA driver on the CPU (tests/fake_libcuda.c) to run the worker, the
  # protocol and both fronts end to end without a GPU.
  add_library(kb_fake_libcuda SHARED ${CMAKE_CURRENT_SOURCE_DIR}/fake_libcuda.c)
  target_include_directories(kb_fake_libcuda PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
  target_link_libraries(kb_fake_libcuda PRIVATE m)

  # Host logic: cache key, include discovery, variants, launch planning of every op,
  # the fp8 encoder against ref/formats.c, the driver loader, the worker.
  add_executable(test_cuda_host ${CMAKE_CURRENT_SOURCE_DIR}/test_cuda_host.c)
  target_link_libraries(test_cuda_host PRIVATE kbcore)
  add_dependencies(test_cuda_host kbcuda_worker kb_fake_libcuda)
  find_file(KBCU_STUB_LIBCUDA libcuda.so PATHS ${CUDAToolkit_LIBRARY_DIR}/stubs NO_DEFAULT_PATH)
  if(KBCU_STUB_LIBCUDA)
    target_compile_definitions(test_cuda_host PRIVATE KB_CUDA_STUB="${KBCU_STUB_LIBCUDA}")
  endif()
  # the cubin cache of these tests stays in the build tree
  set(KBCU_TEST_ENV "KB_CUDA_WORKER=$<TARGET_FILE:kbcuda_worker>;KB_CUDA_FAKE=$<TARGET_FILE:kb_fake_libcuda>;XDG_CACHE_HOME=${CMAKE_CURRENT_BINARY_DIR}/cache")
  add_test(NAME cuda_host COMMAND test_cuda_host)
  set_tests_properties(cuda_host PROPERTIES TIMEOUT 300 ENVIRONMENT "${KBCU_TEST_ENV}")
  if(KBCU_STUB_LIBCUDA)
    # The worker on the stub libcuda (it loads, but cuInit fails): probe says why, and
    # malformed requests are answered with errors.
    add_test(NAME cuda_worker_stub COMMAND test_cuda_host stub)
    set_tests_properties(cuda_worker_stub PROPERTIES TIMEOUT 120 ENVIRONMENT
      "${KBCU_TEST_ENV};KB_CUDA_LIBCUDA=${KBCU_STUB_LIBCUDA}")
  endif()
  add_test(NAME cuda_worker_missing COMMAND test_cuda_host noworker)
  set_tests_properties(cuda_worker_missing PROPERTIES TIMEOUT 60 ENVIRONMENT
    "KB_CUDA_WORKER=${CMAKE_CURRENT_BINARY_DIR}/no-such-worker")
  # The whole path on the fake driver: probe, memory, views, prepare, enqueue, record,
  # run_timed, release order, a sticky fault and reset, a killed worker.
  add_test(NAME cuda_worker_fake COMMAND test_cuda_host fake)
  set_tests_properties(cuda_worker_fake PROPERTIES TIMEOUT 300 ENVIRONMENT
    "${KBCU_TEST_ENV};KB_CUDA_LIBCUDA=$<TARGET_FILE:kb_fake_libcuda>")

  # kbench itself: without a GPU both CUDA backends are listed unavailable with a
  # reason, and every one of their rows is skipped (never pass).
  add_test(NAME cuda_list_backends COMMAND $<TARGET_FILE:kbench> --list-backends)
  set_tests_properties(cuda_list_backends PROPERTIES
    PASS_REGULAR_EXPRESSION "cuda +unavailable +[^\n]*CUDA[^\n]*\ncublaslt +unavailable +[^\n]*CUDA")
  add_test(NAME cuda_rows_skipped COMMAND $<TARGET_FILE:kbench> --op rmsnorm,gemm_fp8 --shapes smoke
    --backend cuda,cublaslt --no-timing)
  set_tests_properties(cuda_rows_skipped PROPERTIES
    PASS_REGULAR_EXPRESSION "rows: 0 pass, 0 fail, 0 error, 0 not_supported, [1-9][0-9]* skipped"
    FAIL_REGULAR_EXPRESSION "cuda +[^ ]+ +pass|cublaslt +[^ ]+ +pass")
  # --tune (tests/test_tune.py): the points --list-axes announces, bad specs, and on
  # the fake driver tuned points through the worker, not_supported ones, --resume
  add_test(NAME cuda_tune_cli COMMAND ${KB_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_tune.py $<TARGET_FILE:kbench>
    ${CMAKE_SOURCE_DIR} $<TARGET_FILE:kb_fake_libcuda>)
  set_tests_properties(cuda_tune_cli PROPERTIES TIMEOUT 600 ENVIRONMENT "${KBCU_TEST_ENV}")
  # kbench's rows on the fake driver: rmsnorm v1 (emulated) passes, every kernel the
  # fake does not run fails on its poisoned output, timing modes go through the worker.
  # A fault on a case's first variant loses the worker and with it the case's tensors the
  # harness keeps on the device (copied to every variant): the next variants must get a
  # fresh set (their rows fail on poison, never error on stale buffers), the next case passes.
  add_test(NAME cuda_fake_kbench_fault COMMAND sh -c
    "f=$(mktemp) && KB_FAKE_CUDA_FAIL=$f $<TARGET_FILE:kbench> --op rmsnorm --shapes smoke --backend cuda --no-timing; rm -f $f")
  set_tests_properties(cuda_fake_kbench_fault PROPERTIES TIMEOUT 300
    ENVIRONMENT "${KBCU_TEST_ENV};KB_CUDA_LIBCUDA=$<TARGET_FILE:kb_fake_libcuda>"
    PASS_REGULAR_EXPRESSION "4x3584 +cuda +v2_b256_i4 +error[^\n]*\n[^\n]*ILLEGAL_ADDRESS[^\n]*\nrmsnorm +4x3584 +cuda +v2_b128_i8 +fail[^\n]*\n[^\n]*unwritten[^\n]*\nrmsnorm +4x3584 +cuda +v2_b256_i4_w +fail[^\n]*\n[^\n]*unwritten[^\n]*\nrmsnorm +1x128 +cuda +v1_b256 +pass"
    FAIL_REGULAR_EXPRESSION "v2_b[0-9]+_i[0-9]+(_w)? +pass|(v1_b256|v2_b128_i8|v2_b256_i4_w) +error")
  # 48 KiB of dynamic shared memory (gemv_v5_w4_r8_t1's rings) beside static shared
  # memory needs the function's opt-in, or the launch fails (its first H200 run did): on
  # the fake driver the row must launch (and fail on its poisoned output, as every kernel
  # the fake does not run), never error
  add_test(NAME cuda_fake_kbench_smem_optin COMMAND $<TARGET_FILE:kbench> --op gemm_fp8 --shape 64x1x256
    --backend cuda --variant gemv_v5_w4_r8_t1 --no-timing)
  set_tests_properties(cuda_fake_kbench_smem_optin PROPERTIES TIMEOUT 300
    ENVIRONMENT "${KBCU_TEST_ENV};KB_CUDA_LIBCUDA=$<TARGET_FILE:kb_fake_libcuda>;KB_FAKE_CUDA_STATIC_SMEM=2048;KB_CUDA_UNVERIFIED=1"
    PASS_REGULAR_EXPRESSION "64x1x256 +cuda +gemv_v5_w4_r8_t1 +fail"
    FAIL_REGULAR_EXPRESSION "gemv_v5_w4_r8_t1 +error|INVALID_VALUE")
  # PDL=1 reaches the driver as the launch attribute (cuLaunchKernelEx), in the rotate
  # graph's capture too, and a variant as written (or PDL=0) launches without it: the fake
  # refuses a launch that breaks KB_FAKE_CUDA_EXPECT_PDL, so a lost attribute errors
  foreach(pdl 0 1)
    set(variants "v1_b256[PDL=1]")
    if(pdl EQUAL 0)
      set(variants "v1_b256,v1_b256[PDL=0]")
    endif()
    add_test(NAME cuda_fake_kbench_pdl${pdl} COMMAND $<TARGET_FILE:kbench> --op rmsnorm --shapes smoke
      --backend cuda --variant "${variants}" --mode rotate --reps 5)
    set_tests_properties(cuda_fake_kbench_pdl${pdl} PROPERTIES TIMEOUT 300
      ENVIRONMENT "${KBCU_TEST_ENV};KB_CUDA_LIBCUDA=$<TARGET_FILE:kb_fake_libcuda>;KB_FAKE_CUDA_EXPECT_PDL=${pdl}"
      PASS_REGULAR_EXPRESSION "7x100 +cuda +v1_b256\\[PDL=${pdl}\\] +pass"
      FAIL_REGULAR_EXPRESSION "cuda +[^ ]+ +error|not recorded")
  endforeach()
  foreach(mode cold hot rotate)
    add_test(NAME cuda_fake_kbench_${mode} COMMAND $<TARGET_FILE:kbench> --op rmsnorm --shapes smoke
      --backend cuda --mode ${mode} --reps 5)
    set_tests_properties(cuda_fake_kbench_${mode} PROPERTIES TIMEOUT 300
      ENVIRONMENT "${KBCU_TEST_ENV};KB_CUDA_LIBCUDA=$<TARGET_FILE:kb_fake_libcuda>"
      PASS_REGULAR_EXPRESSION "rmsnorm +7x100 +cuda +v1_b256 +pass"
      FAIL_REGULAR_EXPRESSION "v2_b256_i4 +pass|cuda +[^ ]+ +error|not recorded")
  endforeach()
endif()
